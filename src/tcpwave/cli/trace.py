"""`tcpwave trace INPUT`: ladders, state timelines and diagrams of a capture or a tcpwave event log."""

import datetime
import sys

from ..views import CaptureError, load, relative
from ..views.diagrams import mermaid, state_dot, timeline
from ..views.files import add_arguments as add_view_arguments
from ..views.files import add_ladder_arguments, ladder_width, write_views
from ..views.ladder import render_ladder
from . import live_session

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
                   help="instead of a file: capture on IFACE (root) and draw as packets arrive, until Ctrl-C; "
                        "with --pcapng, --msl, --width, --color, --html, --buffer-mb, --no-kernel")
    p.add_argument("--format", "-f", action="append", choices=FORMATS + ("all",),
                   help="what to print (repeatable): ladder, timeline, mermaid, dot, census (how many endpoints "
                        "are in each state, a line per second, across the connections) or all (default: ladder "
                        "and timeline, and the census when there is more than one connection)")
    p.add_argument("--conn", "-c", type=int, action="append", metavar="N",
                   help="only connection N (1-based, as --list numbers them); repeatable")
    p.add_argument("--list", action="store_true", help="list the connections and exit")
    p.add_argument("--summary", action="store_true",
                   help="per connection and direction: retransmissions by cause (RTO, fast, TLP; spurious by "
                        "D-SACK), reordering, what this capture point did not see, duplicate ACKs, window events, "
                        "RTT, goodput (docs/trace-summary.md)")
    p.add_argument("--json", action="store_true",
                   help="with --summary: print the figures as one JSON document (times in seconds; wall-clock "
                        "times as Unix seconds and ISO 8601)")
    p.add_argument("--interval", type=float, metavar="S",
                   help="with --summary: also segments, data bytes and retransmissions per S seconds and "
                        "direction (as tshark -z io,stat)")
    p.add_argument("--absolute", action="store_true",
                   help="show wall-clock times of day (default: seconds since the first packet, as Wireshark)")
    add_view_arguments(p)
    add_ladder_arguments(p)
    live_session.add_arguments(p)  # for --live
    p.set_defaults(func=run)


def run(args) -> int:
    if args.live:
        return live_session.run_live(args)
    if args.input is None:
        print("tcpwave trace: give a capture or event log, or --live IFACE", file=sys.stderr)
        return 2
    if (args.json or args.interval is not None) and not args.summary:
        print("tcpwave trace: --json and --interval go with --summary", file=sys.stderr)
        return 2
    if args.interval is not None and args.interval <= 0:
        print("tcpwave trace: --interval takes a positive number of seconds", file=sys.stderr)
        return 2
    report: dict = {}
    try:
        views, skipped = load(args.input, report)
    except (OSError, CaptureError) as e:
        print(f"tcpwave trace: {e}", file=sys.stderr)
        return 2
    warnings = capture_warnings(args.input, report)
    for w in warnings:
        print(f"tcpwave trace: warning: {w}", file=sys.stderr)
    if not views:
        print(f"tcpwave trace: no TCP connections in {args.input}", file=sys.stderr)
        return 1
    rc = 1 if report.get("cut_short") else 0
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
        from .trace_summary import print_summary

        print_summary(args, views, absolute, chosen, warnings)
        return rc
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
    return rc


def capture_warnings(path: str, report: dict) -> list[str]:
    """What the file itself lacks, in words (tshark's "cut short in the middle of a packet")."""
    out = []
    if report.get("cut_short"):
        out.append(f"{path} appears to have been cut short in the middle of a packet; what follows covers the "
                   "packets before the cut")
    snap = report.get("cut_at") or report.get("snaplen")  # editcap -s leaves the header's snap length
    if report.get("headers_cut"):
        out.append(f"the snap length ({snap} bytes) cut the TCP header of {report['headers_cut']} packets: they "
                   "cannot be analysed (capture with -s 128 or more)")
    if report.get("options_cut"):
        out.append(f"the snap length ({snap} bytes) cut the TCP options of {report['options_cut']} packets: their "
                   "SACK and D-SACK blocks and timestamps are missing, so spurious retransmissions and loss "
                   "evidence are undercounted (capture with -s 128 or more)")
    return out


def _wall_clock(t: float) -> str:
    """A capture's time as a local time of day, as tcpdump prints it."""
    return datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")
