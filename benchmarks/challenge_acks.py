"""Challenge ACKs under a blind-injection flood, over a real TUN device (RFC 5961 §7).

A Linux client holds idle connections to `tcpwave serve echo`; an off-path attacker who knows the
4-tuples floods them with RSTs and SYNs carrying random sequence numbers. Every ACK tcpwave sends
on those connections during the flood is a challenge (or out-of-window) ACK, counted with an
AF_PACKET socket on the TUN device. Prints ACKs per second against what the limits allow: one per
connection per `invalid_ratelimit` (0.5 s), and `challenge_ack_limit` per second for the stack.

    sudo .venv/bin/python benchmarks/challenge_acks.py [--connections 200] [--rate 10000] [--seconds 5]

Root only; everything runs in a network namespace made here and removed at the end, with TEST-NET
addresses. Bounded: the attacker stops after `seconds` or rate x seconds segments.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from netns import RAW_TCP, namespace, wait_for_file  # noqa: E402

PORT, FIRST = 7, 41000

CLIENT = r"""
import socket, sys, time
n, ready, hold = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
socks = []
for i in range(n):
    s = socket.socket()
    s.bind(("192.0.2.1", FIRST + i))
    s.connect(("192.0.2.2", PORT))
    socks.append(s)
open(ready, "w").close()
time.sleep(hold)  # idle: any ACK from tcpwave now answers the attacker
""".replace("FIRST", str(FIRST)).replace("PORT", str(PORT))

ATTACK = RAW_TCP + r"""
import random, sys, time
n, seconds, rate = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
src, dst = socket.inet_aton("192.0.2.1"), socket.inet_aton("192.0.2.2")
rng = random.Random(5)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
t0, sent = time.monotonic(), 0
while sent < rate * seconds and time.monotonic() - t0 < seconds:
    port = FIRST + sent % n
    flags = 0x04 if sent % 2 else 0x02  # RST, SYN: random sequence numbers, in window or not
    s.sendto(tcp_packet(src, dst, port, PORT, rng.getrandbits(32), 0, flags), ("192.0.2.2", 0))
    sent += 1
    if sent % 100 == 0:
        ahead = sent / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
print(sent, round(time.monotonic() - t0, 3))
""".replace("FIRST", str(FIRST)).replace("PORT", str(PORT))

COUNTER = r"""
import socket, struct, sys, time
seconds, ready, n = float(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0003))
s.bind(("tcpw0", 0))
s.settimeout(0.2)
open(ready, "w").close()
acks, t0 = 0, time.monotonic()
while time.monotonic() - t0 < seconds:
    try:
        p = s.recv(65535)
    except socket.timeout:
        continue
    if len(p) < 40 or p[9] != 6 or p[12:16] != socket.inet_aton("192.0.2.2"):
        continue
    ihl = (p[0] & 15) * 4
    sport, dport = struct.unpack_from("!HH", p, ihl)
    flags, data = p[ihl + 13], len(p) - ihl - (p[ihl + 12] >> 4) * 4
    if sport == PORT and FIRST <= dport < FIRST + n and flags == 0x10 and data == 0:
        acks += 1
print(acks)
""".replace("FIRST", str(FIRST)).replace("PORT", str(PORT))


def run(connections: int, rate: int, seconds: float, knobs: list[str]) -> dict:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-chack") as ns:
        ready, held, counting = (os.path.join(tmp, f) for f in ("ready", "held", "counting"))
        sets = [a for k in knobs for a in ("--set", k)]
        server = ns.popen(py, "-m", "tcpwave.cli.main", "serve", "echo", "--ready-file", ready, "--control", "none",
                          "--no-offload", "--set", f"backlog={connections + 16}", *sets,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_file(ready, server)
        client = ns.popen(py, "-c", CLIENT, str(connections), held, str(seconds + 10), stdout=subprocess.DEVNULL)
        wait_for_file(held, client, 60)
        time.sleep(0.5)  # (the last handshakes' delayed ACKs are out of the way: nothing else waits on this)
        counter = ns.popen(py, "-c", COUNTER, str(seconds + 1), counting, str(connections),
                           stdout=subprocess.PIPE, text=True)
        wait_for_file(counting, counter)
        attack = ns.popen(py, "-c", ATTACK, str(connections), str(seconds), str(rate), stdout=subprocess.PIPE,
                          text=True)
        sent, took = attack.communicate(timeout=seconds + 30)[0].split()
        acks = int(counter.communicate(timeout=seconds + 30)[0])
    return {"injected": int(sent), "seconds": float(took), "acks": acks}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("challenge_acks.py: needs root (a network namespace and a TUN device)")
    for label, knobs in (("defaults", []), ("invalid_ratelimit=0, the stack budget alone", ["invalid_ratelimit=0"])):
        r = run(a.connections, a.rate, a.seconds, knobs)
        print(f"{label}: {r['injected'] / r['seconds']:.0f} RST/SYN per second over {a.connections} connections "
              f"for {r['seconds']:.1f} s -> {r['acks']} ACKs, {r['acks'] / r['seconds']:.0f}/s")
    print("limits: one ACK per connection per invalid_ratelimit (0.5 s); challenge_ack_limit 1000/s per stack, "
          "each second's budget drawn between 500 and 1500 (as Linux)")

if __name__ == "__main__":
    main()
