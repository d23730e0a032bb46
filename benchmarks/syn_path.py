"""Where a SYN's time goes in the stack: a flood of SYNs from random sources (as `hping3 --flood
--rand-source -S`) at a listener whose SYN queue is full, so every one is answered with a cookie.

    .venv/bin/python benchmarks/syn_path.py [--syns 50000] [--profile]

Prints the cost per SYN of each step, measured on its own (parse, the full input path, building the
reply, the cookie hash) and in all; with --profile, cProfile's top functions. Asserts no speed.
"""

import argparse
import cProfile
import ipaddress
import pstats
import random
import struct
import time

from tcpwave.core import syncookies
from tcpwave.stack import Stack
from tcpwave.wire.checksum import checksum
from tcpwave.wire.packet import parse_ipv4_tcp

ME = ipaddress.ip_address("192.0.2.2")


def flood(n: int, seed: int = 1) -> list[bytes]:
    """n SYNs as hping3 sends them: random source address and port, no options, window 512."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        src = rng.getrandbits(32) & 0x7FFFFFFF | 0x01000000  # (unicast: 1.0.0.0 - 127.255.255.255 less 127/8)
        if src >> 24 == 127:
            src ^= 0x02000000
        sport, seq = rng.randrange(1024, 65536), rng.getrandbits(32)
        tcp = struct.pack("!HHIIBBHHH", sport, 80, seq, 0, 5 << 4, 0x02, 512, 0, 0)
        pseudo = struct.pack("!IIBBH", src, int(ME), 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, int(ME))
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        out.append(ip + tcp)
    return out


def server() -> Stack:
    stack = Stack([ME], seed=2, networks=[ipaddress.ip_network("192.0.2.0/24")], checksum_offload=True)  # (as serve)
    stack.listen(80, 0.0)
    return stack


def per_syn(label: str, n: int, fn) -> float:
    t0 = time.perf_counter()
    fn()
    us = (time.perf_counter() - t0) / n * 1e6
    print(f"{label:<44} {us:6.2f} us/SYN ({1e6 / us:,.0f} SYN/s)")
    return us


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--syns", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=256, help="SYNs per receive_packets call (a TUN read batch)")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    packets = flood(args.syns)
    n, b = len(packets), args.batch
    per_syn("parse only (parse_ipv4_tcp)", n, lambda: [parse_ipv4_tcp(p, False) for p in packets])
    secret = bytes(32)
    local, remote = (ME, 80), (ipaddress.ip_address("198.51.100.7"), 40000)
    per_syn("cookie only (syncookies.make)", n, lambda: [syncookies.make(secret, 1.0, local, remote, i, 536)
                                                         for i in range(n)])

    def run(stack: Stack) -> None:
        for i in range(0, n, b):
            stack.receive_packets(packets[i:i + b], 1.0)
            stack.packets_to_send_offload()

    stack = server()
    run(stack)  # fills the SYN queue, warms caches
    stack = server()
    stack.receive_packets(packets[:300], 0.5)  # the SYN queue full: every later SYN gets a cookie
    stack.packets_to_send_offload()
    total = per_syn("whole input path, a cookie SYN,ACK each", n, lambda: run(stack))
    print(f"  cookies sent {stack.counters.get('syn_cookies_sent', 0):,}, "
          f"drops {dict((k, v) for k, v in stack.counters.items() if not k.startswith('syn_cookies'))}")
    print(f"  = {1e6 / total:,.0f} SYN/s on one core (shared, loaded machine: compare runs, not machines)")
    if args.profile:
        stack = server()
        stack.receive_packets(packets[:300], 0.5)
        prof = cProfile.Profile()
        prof.runcall(run, stack)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
