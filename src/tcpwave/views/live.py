"""Live capture: packets from an AF_PACKET socket, drawn as a ladder with both endpoints' inferred
states as they arrive, then each connection's state timeline. `tcpwave watch` (a command in a
namespace of its own) and `tcpwave trace --live IFACE` (an existing interface) both draw with it."""

import collections
import select
import signal
import socket
import sys
import time

from .diagrams import timeline
from .infer import infer_connections
from .ladder import render_ladder

ETH_P_ALL, ETH_P_IP, ETH_P_IPV6 = 0x0003, 0x0800, 0x86DD
PACKET_OUTGOING = 4
REDRAW = 0.2  # seconds between live redraws (each re-infers the states from every packet so far)
SETTLE = 0.5  # a line is printed once it is this old: a receiver's state change waits for its ACK


class Live:
    """Packets as they come, and the ladder lines printed so far (the states are re-inferred from
    every packet at each redraw, so a line placed earlier in time is printed when it is known)."""

    def __init__(self, out=sys.stdout) -> None:
        self.packets: list[tuple[float, bytes]] = []
        self.printed: list[collections.Counter] = []
        self.out = out
        self.t0: float | None = None

    def add(self, t: float, packet: bytes) -> None:
        if self.t0 is None:
            self.t0 = t
        self.packets.append((t, packet))

    def views(self) -> list:
        views, _ = infer_connections(self.packets)
        return views

    def redraw(self, final: bool = False) -> bool:
        """Print the lines not printed yet that are older than SETTLE (all of them if final).
        Returns whether some are still waiting."""
        t0 = self.t0 or 0.0
        cutoff = None if final else time.time() - t0 - SETTLE
        waiting = False
        views = self.views()
        many = len(views) > 1
        for n, v in enumerate(views, 1):
            events = [dict(e, t=e["t"] - t0) for e in v.events]
            lines = render_ladder(events, v.left, v.right).splitlines()
            if n > len(self.printed):
                self.printed.append(collections.Counter())
                print(f"\n# connection {n}: {v.title}\n{lines[0]}", file=self.out)
            seen = collections.Counter(self.printed[n - 1])
            for line in lines[1:]:
                if seen[line]:
                    seen[line] -= 1
                    continue
                if cutoff is not None and float(line.split()[0]) > cutoff:
                    waiting = True
                    break
                self.printed[n - 1][line] += 1
                print(f"[{n}] {line}" if many else line, file=self.out)
        self.out.flush()
        return waiting

    def summary(self, msl: float) -> list:
        t0 = self.t0 or 0.0
        views = self.views()
        end = (self.packets[-1][0] - t0) if self.packets else 0.0
        for n, v in enumerate(views, 1):
            events = [dict(e, t=e["t"] - t0) for e in v.events]
            print(f"\n# connection {n}: {v.title}: states\n" + timeline(events, [v.left, v.right], end, msl),
                  file=self.out, end="")
        if not views:
            print(f"no TCP connections seen ({len(self.packets)} IP packets captured)", file=sys.stderr)
        return views


def catch_signals() -> tuple[dict, dict]:
    """SIGINT and SIGTERM only set a flag (the loops check it and end cleanly); returns the flag and
    the handlers to put back."""
    stop = {"signal": 0}

    def interrupted(signum, _frame):
        stop["signal"] = signum

    return stop, {s: signal.signal(s, interrupted) for s in (signal.SIGINT, signal.SIGTERM)}


def capture_socket(iface: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))  # network layer: no link header
    s.bind((iface, 0))
    s.setblocking(False)
    return s


def drain(sock: socket.socket, live: Live, loopback: bool) -> int:
    n = 0
    while True:
        try:
            data, addr = sock.recvfrom(262144)
        except BlockingIOError:
            return n
        if addr[1] not in (ETH_P_IP, ETH_P_IPV6):
            continue
        if loopback and addr[2] != PACKET_OUTGOING:
            continue  # on lo each packet is seen twice, going out and coming in: keep one
        live.add(time.time(), data)
        n += 1


def run_live(iface: str, msl: float) -> int:
    """`tcpwave trace --live IFACE`: the same live ladder for an existing interface, until Ctrl-C."""
    try:
        sock = capture_socket(iface)
    except OSError as e:
        print(f"tcpwave trace: capturing on {iface}: {e.strerror} (needs root)", file=sys.stderr)
        return 1
    live = Live()
    stop, old = catch_signals()
    try:
        print(f"capturing on {iface}; Ctrl-C ends", file=sys.stderr)
        waiting = False
        while not stop["signal"]:
            select.select([sock], [], [], REDRAW)
            if drain(sock, live, iface == "lo") or waiting:
                waiting = live.redraw()
        live.redraw(final=True)
        live.summary(msl)
        print("tcpwave trace: stopped", file=sys.stderr)
        return 0
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        sock.close()
