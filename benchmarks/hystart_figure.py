"""The figure for HyStart (docs/hystart.png): slow start on a path with a one-BDP drop-tail queue.

    .venv/bin/python benchmarks/hystart_figure.py [--out docs/hystart.png]

100 Mbit/s, 20 ms RTT, no random loss, simulated (seeded: the same figure every time). CUBIC's slow
start ends (HyStart++ with Linux's ACK-train exit) before the queue overflows; Reno's standard slow
start doubles past BDP + queue and loses a burst of packets. Prints when each left slow start and
how many packets the queue dropped.
"""

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tcpwave.bench.sim import run_one  # noqa: E402
from tcpwave.core.trace import ListSink, Tracer  # noqa: E402

RATE, RTT, MSS = 100e6, 0.020, 1448


def series(cc: str):
    sink = ListSink()
    run_one(0.0, sack=True, seconds=1.0, tracer=Tracer(sink), cc=cc)
    points = [(e["t"], e["cwnd"] / MSS) for e in sink if e["type"] == "cc" and e["host"] == "sender"]
    exit_at = next((e["t"] for e in sink if e["type"] == "cc" and e["host"] == "sender"
                    and e["ssthresh"] < 1 << 30), None)
    drops = [e["t"] for e in sink if e["type"] == "drop" and e.get("where") == "link"]
    return points, exit_at, drops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/hystart.png")
    args = ap.parse_args()
    bdp = RATE * RTT / 8 / MSS
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=110)
    for cc, color in (("cubic", "tab:blue"), ("reno", "tab:red")):
        points, exit_at, drops = series(cc)
        ax.step([t for t, _ in points], [w for _, w in points], where="post", color=color,
                label=f"{cc}: slow start ends at {exit_at:.3f} s, {len(drops)} packets dropped"
                if exit_at else cc)
        if drops:
            ax.plot(drops, [2 * bdp] * len(drops), "x", color=color, markersize=4)
        print(f"{cc:6} slow start ends at {exit_at:.3f} s; queue drops: {len(drops)}"
              + (f", the first at {drops[0]:.3f} s" if drops else ""))
    ax.axhline(bdp, color="gray", linestyle=":", label=f"BDP ({bdp:.0f} segments)")
    ax.axhline(2 * bdp, color="gray", linestyle="--", label="BDP + queue: above this the queue overflows")
    ax.set_xlim(0, 0.4)
    ax.set_ylim(0, 4 * bdp)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("cwnd (segments)")
    ax.set_title("Slow start into a one-BDP queue (100 Mbit/s, 20 ms RTT); x: packets dropped")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
