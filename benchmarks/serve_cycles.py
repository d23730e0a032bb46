"""The per-connection cost of `tcpwave serve discard`, without the kernel, the device or the client.

    .venv/bin/python benchmarks/serve_cycles.py [--cycles 20000] [--profile FILE]

The server side exactly as `serve` runs it (a Runtime, create_server with the Discard protocol, the
stack with checksum offload as on TUN) is fed the packets a Linux client sends for a connect and a
close: SYN (mss, sackOK, timestamps, wscale), then the ACK and FIN together, then the last ACK, each
answering what the server sent. Prints the server's CPU microseconds per cycle (the client's
packet building is not counted); asserts no speed. Every
cycle is checked: the SYN,ACK, the server's FIN, and the connection gone at the end.
--profile FILE writes a cProfile of the run (pstats format; `python -m pstats FILE`).
"""

import argparse
import asyncio
import ipaddress
import time

from tcpwave.aio import Runtime, create_server
from tcpwave.aio.services import Discard
from tcpwave.stack import Stack
from tcpwave.wire.ip import build_ip, parse_ip
from tcpwave.wire.options import Options
from tcpwave.wire.tcp import ACK, FIN, PROTO_TCP, SYN, Segment, build_tcp, parse_tcp

CLIENT, SERVER = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")


class Link:
    """The runtime's link: what the server sends is kept for the client to answer."""

    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.callback = None

    def attach(self, callback) -> None:
        self.callback = callback

    def detach(self) -> None:
        self.callback = None

    def send(self, packet, gso_size: int = 0, partial: bool = False) -> None:
        self.out.append(bytes(packet))


def packet(sport: int, seq: int, ack: int, flags: int, options: Options) -> bytes:
    seg = Segment(sport, 9, seq, ack, flags, 502, b"", options)
    return build_ip(CLIENT, SERVER, PROTO_TCP, build_tcp(seg, CLIENT, SERVER, partial=True))


def run(n: int) -> tuple[float, int]:
    loop = asyncio.new_event_loop()
    link = Link()
    runtime = Runtime(Stack([str(SERVER)], checksum_offload=True, segment_max=65415), link, loop)
    loop.run_until_complete(create_server(Discard, str(SERVER), 9, runtime=runtime))

    def take() -> Segment:
        assert len(link.out) == 1, link.out
        pkt = parse_ip(link.out.pop())
        return parse_tcp(pkt.payload)

    def server(packets) -> float:
        """The server's CPU time for taking `packets` and running what they scheduled (the protocol's
        close() after an EOF, the runtime's flush) until the loop is idle."""
        c0 = time.process_time()
        assert link.callback is not None
        loop.call_soon(link.callback, packets, [True] * len(packets))  # (inside the loop, as a reader runs)
        while True:  # one pass per round of callbacks
            loop.call_soon(loop.stop)
            loop.run_forever()
            if not loop._ready:  # type: ignore[attr-defined]
                break
        return time.process_time() - c0

    done, cpu = 0, 0.0
    for i in range(n):
        sport, iss, ts = 20000 + i % 40000, (i * 7919) & 0xFFFFFFFF, 1000 + i
        cpu += server([packet(sport, iss, 0, SYN, Options(mss=1460, sack_permitted=True, ts=(ts, 0), wscale=10))])
        synack = take()
        assert synack.flags == SYN | ACK and synack.ack == iss + 1
        their = synack.options.ts[0] if synack.options.ts else 0
        opts = Options(ts=(ts + 1, their))
        cpu += server([packet(sport, iss + 1, synack.seq + 1, ACK, opts),
                       packet(sport, iss + 1, synack.seq + 1, FIN | ACK, opts)])
        fin = take()
        assert fin.flags & FIN and fin.ack == iss + 2
        cpu += server([packet(sport, iss + 2, fin.seq + 1, ACK, Options(ts=(ts + 2, fin.options.ts[0])))])
        assert not link.out
        done += 1
    left = len(runtime.connections())
    assert left == 0, f"{left} connections left behind"
    runtime.close()
    loop.close()
    return cpu / done * 1e6, done


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=20000)
    p.add_argument("--profile", metavar="FILE")
    args = p.parse_args()
    if args.profile:
        import cProfile

        cProfile.runctx("run(args.cycles)", globals(), {"run": run, "args": args}, args.profile)
    us, done = run(args.cycles)
    print(f"serve discard, server side only: {us:6.1f} us CPU per connect+close ({1e6 / us:,.0f} cycles/s "
          f"on one core), {done} cycles checked")


if __name__ == "__main__":
    main()
