"""`tcpwave demo [SCENARIO]`: run a scenario on the simulated network and draw its ladder."""

import contextlib
import dataclasses
import sys

from ..core.config import Config
from ..core.trace import Tracer
from ..scenarios import SCENARIOS, configured
from ..scenarios.faults import SpecError, injected
from ..scenarios.faults import build as build_faults
from ..views.files import add_arguments as add_view_arguments
from ..views.files import add_ladder_arguments, ladder_width, write_views
from ..views.infer import ConnectionView
from ..views.ladder import render_ladder, wrap_words
from ..views.record import open_captures
from . import knobs


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="watch a TCP scenario on a simulated network",
                       description="Run a client and a server stack on a simulated network, in virtual time, "
                                   "and print a ladder diagram of every segment and state change.")
    p.add_argument("scenario", nargs="?", default="handshake", help="scenario name (default: handshake)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--seed", type=int, default=1, help="random seed; the same seed replays the same run")
    p.add_argument("--events", metavar="FILE", help="write every event as one JSON object per line")
    p.add_argument("--pcap", metavar="FILE", help="write every packet put on the simulated wire (pcap, RAW)")
    p.add_argument("--pcapng", metavar="FILE",
                   help="the same as pcapng, each packet commented with the state changes it caused")
    add_view_arguments(p)
    add_ladder_arguments(p)
    p.add_argument("--msl", type=float, metavar="S",
                   help="maximum segment lifetime in seconds: TIME_WAIT lasts 2 x S (default 30)")
    p.add_argument("--drop", metavar="SPEC", action="append", default=[],
                   help="drop a segment on the wire: HOST:FLAGS#N as the ladder shows it (client:ACK#1 is the "
                        "client's first ACK, server:FIN its first FIN) or a ladder row number (see --rows); "
                        "may be repeated")
    p.add_argument("--delay", metavar="SPEC=SECONDS", action="append", default=[],
                   help="delay that segment by SECONDS more on the wire (client:ACK#1=1.5)")
    p.add_argument("--dup", metavar="SPEC", action="append", default=[],
                   help="deliver that segment twice")
    p.add_argument("--rows", action="store_true",
                   help="number the ladder's segments (on by default with --drop/--delay/--dup)")
    knobs.add(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.list:
        width = max(map(len, SCENARIOS))
        for name, each in SCENARIOS.items():
            print(f"  {name:<{width}}  {each.summary}")
        return 0
    found = SCENARIOS.get(args.scenario)
    if found is None:
        print(f"tcpwave demo: no scenario {args.scenario!r}; try: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    sc = found
    config = knobs.config(args) if knobs.changes(args) else None
    if args.msl is not None:
        if args.msl <= 0:
            print("tcpwave demo: --msl must be positive", file=sys.stderr)
            return 2
        config = dataclasses.replace(config or Config(), msl=args.msl)
    specs = [(action, text) for action in ("drop", "delay", "dup") for text in getattr(args, action)]
    try:
        with configured(config):
            faults, said = build_faults(specs, lambda: sc.run(args.seed, None, []).events)
    except SpecError as e:
        print(f"tcpwave demo: {e}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        tracer = Tracer()
        taps = open_captures(stack, tracer, pcap=args.pcap, pcapng=args.pcapng, events=args.events)
        with configured(config), injected(faults):
            result = sc.run(args.seed, tracer, taps)
    runs = [*result.before, (result.title, result.events, result.end_time)]
    if args.html or args.svg or args.png:
        views = [ConnectionView("client", "server", events, events[0]["t"] if events else 0.0, end)
                 for _, events, end in runs]
        try:
            written = write_views(args, views, f"tcpwave demo {sc.name} (seed {args.seed})")
        except RuntimeError as e:  # no matplotlib for --png
            print(f"tcpwave demo: {e}", file=sys.stderr)
            return 2
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    columns = ladder_width(args.width)
    head = [f"tcpwave demo {sc.name} (seed {args.seed}): {sc.summary}"]
    head += [f"faults: {'; '.join(said)}"] if said else []
    for line in head:
        print("\n".join(wrap_words(line, columns)) if columns else line)
    print()
    if sc.name == "lossy":
        print(_lossy_summary(result))
    else:
        msl = config.msl if config is not None else Config().msl
        for n, (title, events, _) in enumerate(runs):
            if len(runs) > 1:
                print(f"{chr(10) if n else ''}run {n + 1} of {len(runs)}: {title}\n")
            print(render_ladder(events, color=color, explain=args.explain, msl=msl, width=columns,
                                rows=args.rows or bool(specs)))
        if result.info:
            print()
            for k, v in result.info.items():
                print(f"{k}: {v}")
    print()
    print(f"virtual time {result.end_time:.3f} s; closed: "
          + ", ".join(f"{h} {r}" for h, r in sorted(result.closed.items())))
    for name, ok in result.checks.items():
        print(f"  {'ok ' if ok else 'FAILED'} {name}")
    return 0 if result.ok else 1


def _lossy_summary(result) -> str:
    sends = [e for e in result.events if e["type"] == "send"]
    rtx = sum(1 for e in sends if e.get("note", "").startswith("retransmission"))
    lost = sum(1 for e in result.events if e["type"] == "drop" and e.get("where") == "link")
    states = [e for e in result.events if e["type"] == "state"]
    lines = [f"{len(sends)} segments sent, {lost} lost on the wire, {rtx} retransmissions",
             "state changes:"]
    lines += [f"  {e['t']:10.6f}  {e['host']:<6}  {e['from']} → {e['to']}" for e in states]
    for k, v in result.info.items():
        lines.append(f"{k}: {v}")
    return "\n".join(lines)
