"""`tcpwave watch -- COMMAND` and `tcpwave trace --live IFACE`: see a real program's connections live.

watch runs COMMAND in a network namespace of its own (with `lo` up), made by unsharing this process's
network namespace: it disappears when the last process in it ends, so nothing is left behind. A
TPACKET_V3 ring captures every packet there (live_session.py; drops are counted and marked); as
they arrive, the ladder with both endpoints' inferred states is printed. When COMMAND ends, each
connection's state timeline follows (the kernel's states from its tracepoints where root can read
them), and the HTML report, pcapng or JSON lines if asked.
"""

import argparse
import subprocess
import sys
import time

from ..drivers.netns import unshare_net
from ..views import relative
from ..views.live_census import explained
from .live_session import Session, add_arguments, add_ladder_look
from .tun_options import end_child


def add_parser(sub) -> None:
    p = sub.add_parser("watch", help="run a command in a throwaway network namespace and watch its TCP live (root)",
                       description="Runs COMMAND in a network namespace of its own with lo up, captures every "
                                   "packet there (a TPACKET_V3 ring; no tcpdump needed), prints the ladder with both "
                                   "endpoints' inferred states as packets arrive, then each connection's state "
                                   "timeline (the kernel's own states, from its tracepoints, beside the inferred "
                                   "ones), and how many packets the kernel captured and dropped. Needs root. "
                                   "Example: tcpwave watch -- python3 my_echo.py")
    p.add_argument("--html", metavar="FILE", help="write the HTML report when the command ends")
    add_arguments(p, json_help="print every event as a JSON line (inferred from the wire, and the kernel's) "
                               "instead of the ladder")
    add_ladder_look(p)
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
        session = Session("lo", args, "tcpwave watch")
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"tcpwave watch: {e}", file=sys.stderr)
        return 1
    try:
        try:
            proc = subprocess.Popen(command)
        except OSError as e:
            print(f"tcpwave watch: cannot run {command[0]}: {e.strerror}", file=sys.stderr)
            return 127
        session.run(lambda: proc.poll() is None)
        if session.stop["signal"]:
            end_child(proc, 3)
        end = time.time()  # the command's end: TIME_WAIT's countdown is counted to here
        views = session.finish(end)
        if args.explain and views:
            print(explained(relative(views), args.msl), end="")
        if session.stop["signal"]:
            print("tcpwave watch: interrupted", file=sys.stderr)
            return 130
        return proc.returncode
    finally:
        session.close()
