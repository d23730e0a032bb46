"""`tcpwave sweep`: the simulated bulk transfer over a grid, on every local core or a Dask cluster."""

import argparse
import os
import pathlib
import signal
import sys
import time
import types

from ..bench import sweep as sw
from . import knobs


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run the simulated bulk transfer over a grid of points, in parallel",
                       description="Every combination of the axes is one deterministic simulated bulk transfer "
                                   "(in virtual time), run on every local core, or on a Dask cluster with "
                                   "--scheduler. Rows go to --output as they finish; a rerun skips the points "
                                   "the file already has.")
    p.add_argument("--cc", nargs="+", default=["cubic", "reno", "bbr-lite"], metavar="NAME",
                   help="congestion controls (default: cubic reno bbr-lite)")
    p.add_argument("--loss", nargs="+", type=float, default=[0.0, 0.1, 0.5, 1.0, 2.0], metavar="PCT",
                   help="random loss each way, percent (default: 0 0.1 0.5 1 2)")
    p.add_argument("--rtt", nargs="+", type=float, default=[20.0], metavar="MS",
                   help="round-trip times, ms (default 20)")
    p.add_argument("--rate", nargs="+", type=float, default=[10.0], metavar="MBIT",
                   help="link rates, Mbit/s (default 10)")
    p.add_argument("--queue", nargs="+", type=float, default=[1.0], metavar="BDP",
                   help="drop-tail queue sizes in bandwidth-delay products (default 1)")
    p.add_argument("--seeds", type=int, default=1, metavar="N", help="seeds 1..N per point (default 1)")
    p.add_argument("--seconds", type=float, default=5.0, help="virtual seconds per run (default 5)")
    p.add_argument("--set", dest="knobs", action="append", default=[], metavar="KNOB=V[,V...]",
                   help="any tcpwave.Config field; several comma-separated values make it an axis "
                        "(e.g. --set sack=on,off --set rto_min=0.2,1)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="local worker processes (default: one per core; 1 runs in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on the Dask distributed cluster at ADDRESS (tcp://HOST:8786) instead")
    p.add_argument("-o", "--output", default="sweep.csv", metavar="FILE",
                   help="rows, one per run, .csv or .json (default sweep.csv); points already in it are skipped")
    p.add_argument("--plot", metavar="FILE.png", help="goodput vs loss per cc with the Mathis model, per-RTT panels")
    p.set_defaults(func=run)


def grid(args) -> sw.Grid:
    """The grid the command line asks for, every value checked (SweepError names the bad one)."""
    from ..cc import REGISTRY

    unknown = [c for c in args.cc if c not in REGISTRY]
    if unknown:
        raise sw.SweepError(f"unknown congestion control {unknown[0]!r}; known: {', '.join(sorted(REGISTRY))}")
    for name, values, ok, what in (("--loss", args.loss, lambda v: 0 <= v < 100, "in 0..100 (percent, below 100)"),
                                   ("--rtt", args.rtt, lambda v: 0 < v <= 10_000, "in (0, 10000] ms"),
                                   ("--rate", args.rate, lambda v: 0 < v <= 100_000, "in (0, 100000] Mbit/s"),
                                   ("--queue", args.queue, lambda v: 0 < v <= 1000, "in (0, 1000] BDPs")):
        bad = [v for v in values if not ok(v)]
        if bad:
            raise sw.SweepError(f"{name} {bad[0]:g}: must be {what}")
    if not 1 <= args.seeds <= 100_000:
        raise sw.SweepError(f"--seeds {args.seeds}: must be in 1..100000")
    if not 0 < args.seconds <= 3600:
        raise sw.SweepError(f"--seconds {args.seconds:g}: must be in (0, 3600]")
    smallest = min(q * r * 1e6 * t / 1000 / 8 for q in args.queue for r in args.rate for t in args.rtt)
    if smallest < 1500:
        raise sw.SweepError(f"a queue of {smallest:.0f} bytes (--queue x --rate x --rtt) holds no full packet; "
                            "raise --queue")
    axes: dict[str, list] = {"cc": list(dict.fromkeys(args.cc)), "loss": _unique(args.loss),
                             "rtt_ms": _unique(args.rtt), "rate_mbit": _unique(args.rate),
                             "queue_bdp": _unique(args.queue), "seed": list(range(1, args.seeds + 1))}
    for item in args.knobs:
        name, sep, values = item.partition("=")
        if name.strip() in ("congestion_control", "congestion-control"):
            raise sw.SweepError("congestion control is the --cc axis")
        parsed = [knobs.changes(types.SimpleNamespace(knobs=[f"{name}={v}"])) for v in values.split(",")] \
            if sep else [knobs.changes(types.SimpleNamespace(knobs=[item]))]
        key = sw.KNOB_PREFIX + next(iter(parsed[0]))
        axes[key] = list(dict.fromkeys(next(iter(p.values())) for p in parsed))
    return sw.Grid(axes, args.seconds)


def _unique(values: list[float]) -> list[float]:
    return list(dict.fromkeys(float(v) for v in values))


def run(args) -> int:
    try:
        g = grid(args)
        output = pathlib.Path(args.output)
        sw.check_output(output)
    except (sw.SweepError, argparse.ArgumentTypeError) as e:
        print(f"tcpwave sweep: {e}", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"tcpwave sweep: --jobs {args.jobs}: must be at least 1", file=sys.stderr)
        return 2
    if args.scheduler:
        def runner(points):
            return sw.run_dask(points, args.scheduler)
        where = f"the Dask cluster at {args.scheduler}"
    elif args.jobs == 1:
        runner, where = sw.run_serial, "1 process"
    else:
        def runner(points):
            return sw.run_pool(points, args.jobs)
        where = f"{args.jobs} processes"

    def terminated(signum, frame):
        raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the workers end the same way

    previous = signal.signal(signal.SIGTERM, terminated)
    progress = sw.Progress()
    start = time.monotonic()
    try:
        ran, skipped = sw.sweep(g, output, runner, progress)
    except KeyboardInterrupt:
        progress.interrupted()
        print(f"tcpwave sweep: interrupted after {progress.done} points; {output} keeps them, rerun to go on",
              file=sys.stderr)
        return 130
    except sw.SweepError as e:
        print(f"tcpwave sweep: {e}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    rows = sw.load(output)
    print(f"tcpwave sweep: {len(g.points())} points, {skipped} already in {output}, ran {ran} on {where} "
          f"in {time.monotonic() - start:.1f} s", file=sys.stderr)
    if args.plot:
        from ..bench.sweep_plot import plot

        mine = {g.key(p) for p in g.points()}
        try:
            plot([r for r in rows if g.key(r) in mine], args.plot)
        except RuntimeError as e:  # no matplotlib
            print(f"tcpwave sweep: {e}", file=sys.stderr)
            return 2
        print(f"tcpwave sweep: wrote {args.plot}", file=sys.stderr)
    unverified = [r for r in rows if str(r.get("verified")) != "True"]
    if unverified:
        print(f"tcpwave sweep: {len(unverified)} runs delivered no data or data that differs from what was sent",
              file=sys.stderr)
        return 1
    return 0
