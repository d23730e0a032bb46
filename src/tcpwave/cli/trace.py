"""`tcpwave trace INPUT`: ladders, state timelines and diagrams of a capture or a tcpwave event log."""

import datetime
import sys

from ..views import CaptureError, load, relative
from ..views.diagrams import mermaid, state_dot, timeline
from ..views.files import add_arguments as add_view_arguments
from ..views.files import add_ladder_arguments, ladder_width, write_views
from ..views.ladder import render_ladder
from ..views.live import run_live

FORMATS = ("ladder", "timeline", "mermaid", "dot", "census")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "trace", help="draw the connections in a pcap/pcapng capture or a tcpwave event log",
        description="Read a pcap or pcapng capture (Ethernet, raw IP, Linux SLL/SLL2 or loopback; IPv4 and IPv6; "
                    "any number of connections) or a tcpwave --events log. For a capture, each connection's "
                    "states on both sides are inferred from the segments as RFC 9293 would drive them. Prints a "
                    "ladder diagram and a state timeline per connection, or Mermaid / Graphviz DOT.")
    p.add_argument("input", metavar="INPUT", nargs="?",
                   help="a .pcap/.pcapng file or a tcpwave event log (JSON lines)")
    p.add_argument("--live", metavar="IFACE",
                   help="instead of a file: capture on IFACE (root) and draw as packets arrive, until Ctrl-C")
    p.add_argument("--format", "-f", action="append", choices=FORMATS + ("all",),
                   help="what to print (repeatable): ladder, timeline, mermaid, dot, census (how many endpoints "
                        "are in each state, a line per second, across the connections) or all (default: ladder "
                        "and timeline, and the census when there is more than one connection)")
    p.add_argument("--conn", "-c", type=int, action="append", metavar="N",
                   help="only connection N (1-based, as --list numbers them); repeatable")
    p.add_argument("--list", action="store_true", help="list the connections and exit")
    p.add_argument("--summary", action="store_true",
                   help="per connection and direction: retransmissions (spurious ones by D-SACK), RTO stalls, "
                        "duplicate-ACK runs, zero-window periods, RTT min/avg/max, goodput")
    p.add_argument("--absolute", action="store_true",
                   help="show wall-clock times of day (default: seconds since the first packet, as Wireshark)")
    add_view_arguments(p)
    add_ladder_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.live:
        return run_live(args.live, 30.0)
    if args.input is None:
        print("tcpwave trace: give a capture or event log, or --live IFACE", file=sys.stderr)
        return 2
    try:
        views, skipped = load(args.input)
    except (OSError, CaptureError) as e:
        print(f"tcpwave trace: {e}", file=sys.stderr)
        return 2
    if not views:
        print(f"tcpwave trace: no TCP connections in {args.input}", file=sys.stderr)
        return 1
    absolute = views
    views = relative(views)
    clock = _wall_clock if args.absolute else None
    if args.list:
        for i, v in enumerate(views, 1):
            segments = sum(1 for e in v.events if e["type"] == "send")
            a = absolute[i - 1]
            span = f"{_wall_clock(a.start)}-{_wall_clock(a.end)}" if args.absolute else f"{v.start:.6f}-{v.end:.6f} s"
            print(f"{i:3}  {v.title}  {segments} segments, {span}")
        return 0
    chosen = args.conn or range(1, len(views) + 1)
    bad = [n for n in chosen if not 1 <= n <= len(views)]
    if bad:
        print(f"tcpwave trace: no connection {bad[0]} (there are {len(views)})", file=sys.stderr)
        return 2
    if args.summary:
        from ..views.summary import render, summarize

        for n in chosen:
            v = views[n - 1]
            print(f"# connection {n}: {v.title}\n{render(summarize(v.events, v.left, v.right))}")
        return 0
    files = args.html or args.svg or args.png
    if files:
        import os

        try:
            written = write_views(args, [views[n - 1] for n in chosen], f"tcpwave trace {os.path.basename(args.input)}")
        except RuntimeError as e:  # no matplotlib for --png
            print(f"tcpwave trace: {e}", file=sys.stderr)
            return 2
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
        if not args.format:
            return 0
    formats = set(args.format or ("ladder", "timeline") + (("census",) if len(chosen) > 1 else ()))
    if "all" in formats:
        formats = set(FORMATS)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    for n in chosen:
        v = (absolute if args.absolute else views)[n - 1]
        if formats - {"census"} and (len(chosen) > 1 or "ladder" in formats or "timeline" in formats):
            print(f"# connection {n}: {v.title}\n")
        if "ladder" in formats:
            print(render_ladder(v.events, v.left, v.right, color=color, clock=clock, explain=args.explain,
                                width=ladder_width(args.width)) + "\n")
        if "timeline" in formats:
            print(timeline(v.events, [v.left, v.right], v.end, clock=clock))
        if "mermaid" in formats:
            print(mermaid(v.events, v.left, v.right))
        if "dot" in formats:
            print(state_dot(v.events, [v.left, v.right], v.title))
    if "census" in formats:
        from ..views.census import census, census_lines

        print("# state census: endpoints in each state at the end of each second (TIME_WAIT for 2×MSL, MSL 30 s)")
        print("\n".join(census_lines(census([views[n - 1] for n in chosen]))))
    if skipped:
        print("skipped: " + ", ".join(f"{k} {n}" for k, n in sorted(skipped.items())), file=sys.stderr)
    return 0


def _wall_clock(t: float) -> str:
    """A capture's time as a local time of day, as tcpdump prints it."""
    return datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")
