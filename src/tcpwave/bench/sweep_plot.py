"""The sweep's plot: goodput against loss, one panel per RTT, one line per congestion control (and per
value of any other axis that varies), the mean over seeds with the seeds' range shaded, and the
Mathis model's curve for the panel's RTT."""

from collections import defaultdict

from ..views.plots import _matplotlib
from .sim import mathis_bps
from .sweep import KNOB_PREFIX

_NUMBERS = ("loss", "rtt_ms", "rate_mbit", "queue_bdp", "goodput_bps")


def _num(row: dict) -> dict:
    """A row with its numeric columns as numbers (CSV reads them back as strings)."""
    return {**row, **{k: float(row[k]) for k in _NUMBERS}}


def plot(rows: list[dict], path: str) -> list[str]:
    """Write the PNG; returns the panels' titles."""
    plt = _matplotlib()
    rows = [_num(r) for r in rows]
    rtts = sorted({r["rtt_ms"] for r in rows})
    # the line a row belongs to: its cc plus every other axis that takes more than one value
    others = [k for k in ("rate_mbit", "queue_bdp", *sorted({k for r in rows for k in r if k.startswith(KNOB_PREFIX)}))
              if len({str(r.get(k)) for r in rows}) > 1]
    fig, axes = plt.subplots(1, len(rtts), figsize=(5.5 * len(rtts), 4.5), dpi=100, squeeze=False, sharey=True)
    titles = []
    top = max(r["rate_mbit"] for r in rows)
    for ax, rtt in zip(axes[0], rtts, strict=True):
        lines: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            if r["rtt_ms"] == rtt:
                label = " ".join([str(r["cc"]), *(f"{k.removeprefix(KNOB_PREFIX)}={r[k]}" for k in others)])
                lines[label][r["loss"]].append(r["goodput_bps"] / 1e6)
        for label, by_loss in sorted(lines.items()):
            losses = sorted(by_loss)
            means = [sum(by_loss[x]) / len(by_loss[x]) for x in losses]
            (line,) = ax.plot(losses, means, marker="o", label=label)
            ax.fill_between(losses, [min(by_loss[x]) for x in losses], [max(by_loss[x]) for x in losses],
                            color=line.get_color(), alpha=0.15)
        lossy = sorted({r["loss"] for r in rows if r["loss"] > 0})
        if lossy:
            xs = [lossy[0] + (lossy[-1] - lossy[0]) * i / 200 for i in range(201)]
            ax.plot(xs, [mathis_bps(x / 100, rtt / 1000) / 1e6 for x in xs], "k--", linewidth=1,
                    label="Mathis model")
        ax.set_ylim(0, top * 1.1)
        ax.set_xlabel("random loss each way (%)")
        titles.append(f"RTT {rtt:g} ms")
        ax.set_title(titles[-1])
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("goodput (Mbit/s)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return titles
