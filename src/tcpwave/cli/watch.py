"""`tcpwave watch -- COMMAND` and `tcpwave trace --live IFACE`: see a real program's connections live.

watch runs COMMAND in a network namespace of its own (with `lo` up), made by unsharing this process's
network namespace: it disappears when the last process in it ends, so nothing is left behind. An
AF_PACKET socket captures every packet there; as they arrive, the ladder with both endpoints'
inferred states is printed. When COMMAND ends, each connection's state timeline follows (time in
each state, what is left of TIME_WAIT's 2 x MSL), and the HTML report and pcapng if asked.
"""

import argparse
import collections
import select
import signal
import socket
import subprocess
import sys
import time

from ..drivers.netns import unshare_net
from ..ladder import render_ladder
from ..views.capture import PcapngWriter
from ..views.diagrams import timeline
from ..views.files import write_views
from ..views.infer import infer_connections
from .tun_options import end_child

ETH_P_ALL, ETH_P_IP, ETH_P_IPV6 = 0x0003, 0x0800, 0x86DD
PACKET_OUTGOING = 4
REDRAW = 0.2  # seconds between live redraws (each re-infers the states from every packet so far)
SETTLE = 0.5  # a line is printed once it is this old: a receiver's state change waits for its ACK


def add_parser(sub) -> None:
    p = sub.add_parser("watch", help="run a command in a throwaway network namespace and watch its TCP live (root)",
                       description="Runs COMMAND in a network namespace of its own with lo up, captures every "
                                   "packet there (AF_PACKET; no tcpdump needed), prints the ladder with both "
                                   "endpoints' inferred states as packets arrive, then each connection's state "
                                   "timeline. Needs root. Example: tcpwave watch -- python3 my_echo.py")
    p.add_argument("--html", metavar="FILE", help="write the HTML report when the command ends")
    p.add_argument("--pcapng", metavar="FILE", help="write every packet captured")
    p.add_argument("--msl", type=float, default=30.0,
                   help="MSL for the TIME_WAIT countdown (default 30: Linux's TIME_WAIT lasts 60 s)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the program to run and watch")
    p.set_defaults(func=run)


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


def _catch_signals() -> tuple[dict, dict]:
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


def run(args) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("tcpwave watch: no command to run (tcpwave watch -- COMMAND ...)", file=sys.stderr)
        return 2
    try:
        unshare_net("tcpwave watch")  # this process's namespace from here on: it goes away with us and COMMAND
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
        sock = capture_socket("lo")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"tcpwave watch: {e}", file=sys.stderr)
        return 1
    live = Live()
    stop, old = _catch_signals()
    try:
        try:
            proc = subprocess.Popen(command)
        except OSError as e:
            print(f"tcpwave watch: cannot run {command[0]}: {e.strerror}", file=sys.stderr)
            return 127
        waiting = False
        while proc.poll() is None and not stop["signal"]:
            select.select([sock], [], [], REDRAW)
            if drain(sock, live, True) or waiting:
                waiting = live.redraw()
        if stop["signal"]:
            end_child(proc, 3)
        time.sleep(0.05)  # (the last packets the command's exit caused)
        drain(sock, live, True)
        live.redraw(final=True)
        views = live.summary(args.msl)
        _write_files(args, live, views)
        if stop["signal"]:
            print("tcpwave watch: interrupted", file=sys.stderr)
            return 130
        return proc.returncode
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        sock.close()


def _write_files(args, live: Live, views: list) -> None:
    if args.pcapng:
        with open(args.pcapng, "wb") as f:
            w = PcapngWriter(f, application="tcpwave watch")
            for t, p in live.packets:
                w.write(t, p)
        print(f"wrote {args.pcapng}", file=sys.stderr)
    if args.html and views:
        from .trace import relative

        for path in write_views(args, relative(views), "tcpwave watch"):
            print(f"wrote {path}", file=sys.stderr)


def run_live(iface: str, msl: float) -> int:
    """`tcpwave trace --live IFACE`: the same live ladder for an existing interface, until Ctrl-C."""
    try:
        sock = capture_socket(iface)
    except OSError as e:
        print(f"tcpwave trace: capturing on {iface}: {e.strerror} (needs root)", file=sys.stderr)
        return 1
    live = Live()
    stop, old = _catch_signals()
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
