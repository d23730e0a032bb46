"""`tcpwave watch -- COMMAND` and `tcpwave trace --live IFACE`: see a real program's connections live.

watch runs COMMAND in a network namespace of its own (with `lo` up), made by unsharing this process's
network namespace: it disappears when the last process in it ends, so nothing is left behind. An
AF_PACKET socket captures every packet there; as they arrive, the ladder with both endpoints'
inferred states is printed. When COMMAND ends, each connection's state timeline follows (time in
each state, what is left of TIME_WAIT's 2 x MSL), and the HTML report and pcapng if asked.
"""

import argparse
import select
import signal
import subprocess
import sys
import time

from ..drivers.netns import unshare_net
from ..views import relative
from ..views.capture import PcapngWriter
from ..views.files import write_views
from ..views.live import REDRAW, Live, capture_socket, catch_signals, drain
from ..views.live_census import CensusLive, explained
from .tun_options import end_child


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
    p.add_argument("--explain", action="store_true",
                   help="when COMMAND ends, each connection's ladder again with the reasons and notes of "
                        "`trace --explain`, computed from the whole connection")
    p.add_argument("--census", action="store_true",
                   help="instead of the live ladder, a line a second: how many endpoints are in each state "
                        "(a CLOSE_WAIT or TIME_WAIT pile-up shows at a glance)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the program to run and watch")
    p.set_defaults(func=run)


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
    live = CensusLive(args.msl) if args.census else Live()
    stop, old = catch_signals()
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
        if args.explain:
            print(explained(relative(views), args.msl), end="")
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
        for path in write_views(args, relative(views), "tcpwave watch"):
            print(f"wrote {path}", file=sys.stderr)
