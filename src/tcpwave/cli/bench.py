"""`tcpwave bench --sim`: bulk-transfer goodput on the simulated network, in virtual time."""

import contextlib
import json
import sys

from ..bench.sim import run_one, table
from ..core.trace import Tracer
from ..views.files import tagged
from ..views.record import open_captures
from . import knobs


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure bulk-transfer goodput",
                       description="Without --sim: tcpwave over TUN against the Linux kernel next to two Linux "
                                   "kernels over veth (root). With --sim: bulk goodput on the simulated "
                                   "network in virtual time at several loss rates, with SACK and without.")
    p.add_argument("--sim", action="store_true", help="run on the simulated network, in virtual time")
    p.add_argument("--lossy", action="store_true",
                   help="goodput over a real impaired path (root): veth shaped to --rate each way, random loss "
                        "each way, tcpwave (TUN) and Linux as sender and as receiver")
    p.add_argument("--bytes", type=int, help="TUN modes: bytes per bulk transfer (default 200 MB; --lossy 20 MB)")
    p.add_argument("--cycles", type=int, default=200_000,
                   help="TUN mode: at most this many connect+close cycles per row (default 200000)")
    p.add_argument("--churn-seconds", type=float, default=5.0, metavar="S",
                   help="TUN mode: each connect+close row runs S seconds (default 5)")
    p.add_argument("--rate", type=float, help="link rate in Mbit/s (default 100; --lossy 200)")
    p.add_argument("--rtt", type=float, default=20.0, help="round-trip time in ms (default 20)")
    p.add_argument("--seconds", type=float, default=20.0, help="virtual seconds per row (default 20)")
    p.add_argument("--loss", type=float, nargs="+",
                   help="loss rates in percent (default 0 0.1 1 5; --lossy 0.1 1 3)")
    p.add_argument("--seed", type=int, help="--sim: random seed; the same seed replays the same run (default 1)")
    p.add_argument("--cc", nargs="+", metavar="NAME",
                   help="--sim: congestion controls to compare (default: cubic reno bbr-lite; reno runs with "
                        "SACK and without, the others with SACK); --lossy: tcpwave's one (default cubic), which "
                        "every Linux sender then uses too (bbr for bbr-lite)")
    knobs.add(p, cc=False)
    p.add_argument("--runs", type=int, default=1, metavar="N",
                   help="--lossy: N runs per loss rate, each figure their median (default 1)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--pcap", metavar="FILE", help="capture each run (FILE-<run>.pcap); slows the benchmark")
    p.add_argument("--pcapng", metavar="FILE", help="the same as pcapng with state-change comments")
    p.add_argument("--events", metavar="FILE", help="each run's event log (FILE-<run>.jsonl); slows the benchmark")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..cc import REGISTRY

    ccs = args.cc or ["cubic", "reno", "bbr-lite"]
    unknown = [name for name in ccs if name not in REGISTRY]
    if unknown:
        print(f"tcpwave bench: unknown congestion control {unknown[0]!r}; known: {', '.join(sorted(REGISTRY))}",
              file=sys.stderr)
        return 2
    if args.lossy:
        from ..bench.lossy import run as run_lossy

        # the path is real (the kernel's random loss, os.urandom for tcpwave): nothing replays a run, and
        # these runs write no capture or event log of their own
        given = [(flag, where) for flag, value, where in (
            ("--seed", args.seed, "--sim"), ("--pcap", args.pcap, "--sim and the TUN benchmark"),
            ("--pcapng", args.pcapng, "--sim and the TUN benchmark"),
            ("--events", args.events, "--sim and the TUN benchmark")) if value is not None]
        if given:
            print(f"tcpwave bench --lossy: {given[0][0]} applies to {given[0][1]}, not to --lossy "
                  "(its loss is the kernel's, at random)", file=sys.stderr)
            return 2

        if args.runs < 1:
            print(f"tcpwave bench --lossy: --runs must be at least 1, not {args.runs}", file=sys.stderr)
            return 2
        if args.cc and len(args.cc) > 1:
            print("tcpwave bench --lossy: one congestion control at a time (--cc NAME)", file=sys.stderr)
            return 2
        settings = knobs.changes(args)
        if args.cc:
            settings["congestion_control"] = args.cc[0]
        return run_lossy(args.loss or [0.1, 1.0, 3.0], args.bytes or 20_000_000, f"{args.rate or 200:g}mbit",
                         settings, args.json, args.runs)
    if not args.sim:
        from ..bench.tun import run as run_tun

        captures = {"--pcap": args.pcap, "--pcapng": args.pcapng, "--events": args.events}
        return run_tun(args.bytes or 200_000_000, args.cycles, args.json, {k: v for k, v in captures.items() if v},
                       seconds=args.churn_seconds)
    rate, rtt = (args.rate or 100.0) * 1e6, args.rtt / 1000
    rows = []
    for loss in args.loss if args.loss is not None else [0.0, 0.1, 1.0, 5.0]:
        for cc in ccs:
            for sack in (True, False) if cc == "reno" else (True,):
                tag = ("" if cc == "reno" else f"{cc}-") + f"loss{loss:g}-{'sack' if sack else 'nosack'}"
                with _captures(args, tag) as (tracer, taps):
                    rows.append(run_one(loss / 100, sack, rate_bps=rate, rtt=rtt, seconds=args.seconds,
                                        seed=1 if args.seed is None else args.seed, tracer=tracer, taps=taps, cc=cc,
                                        settings=knobs.changes(args)))
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(table(rows, rate, rtt, args.seconds))
    return 0 if all(r.verified for r in rows) else 1


@contextlib.contextmanager
def _captures(args, tag: str):
    """The tracer and taps one simulated run writes its --pcap/--pcapng/--events files through."""
    if not (args.pcap or args.pcapng or args.events):
        yield None, []
        return
    with contextlib.ExitStack() as stack:
        tracer = Tracer()
        yield tracer, open_captures(stack, tracer, pcap=args.pcap and tagged(args.pcap, tag),
                                    pcapng=args.pcapng and tagged(args.pcapng, tag),
                                    events=args.events and tagged(args.events, tag))
        print(f"tcpwave bench: wrote the captures of run {tag}", file=sys.stderr)
