"""`tcpwave bench --sim`: bulk-transfer goodput on the simulated network, in virtual time."""

import json

from ..bench_sim import run_one, table


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure bulk-transfer goodput",
                       description="Without --sim: tcpwave over TUN against the Linux kernel next to two Linux "
                                   "kernels over veth (root). With --sim: bulk goodput on the simulated "
                                   "network in virtual time at several loss rates, with SACK and without.")
    p.add_argument("--sim", action="store_true", help="run on the simulated network, in virtual time")
    p.add_argument("--bytes", type=int, default=200_000_000, help="TUN mode: bytes per bulk transfer")
    p.add_argument("--cycles", type=int, default=2000, help="TUN mode: connect+close cycles per run")
    p.add_argument("--rate", type=float, default=100.0, help="link rate in Mbit/s (default 100)")
    p.add_argument("--rtt", type=float, default=20.0, help="round-trip time in ms (default 20)")
    p.add_argument("--seconds", type=float, default=20.0, help="virtual seconds per row (default 20)")
    p.add_argument("--loss", type=float, nargs="+", default=[0.0, 0.1, 1.0, 5.0],
                   help="loss rates in percent (default 0 0.1 1 5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    if not args.sim:
        from ..bench_tun import run as run_tun

        return run_tun(args.bytes, args.cycles, args.json)
    rate, rtt = args.rate * 1e6, args.rtt / 1000
    rows = [run_one(loss / 100, sack, rate_bps=rate, rtt=rtt, seconds=args.seconds, seed=args.seed)
            for loss in args.loss for sack in (True, False)]
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(table(rows, rate, rtt, args.seconds))
    return 0 if all(r.verified for r in rows) else 1
