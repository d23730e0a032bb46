"""PNG plots with matplotlib: a tcptrace-style time-sequence graph, and cwnd / RTT / RTO over time.

Both work from trace events, so from a tcpwave event log (which records cwnd, ssthresh, RTT samples
and the RTO) or from a capture (where bytes in flight stand in for cwnd and RTT samples are taken
from data segments and the first ACK that covers them, skipping retransmitted ones, as Karn says).
Each function returns the names of the series it drew.
"""

import re

from ..wire.seq import seq_diff, seq_ge
from .summary import rtt_samples

_SACK = re.compile(r"sack ((?:\d+:\d+ ?)+)")
_WSCALE = re.compile(r"wscale (\d+)")


def _matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - matplotlib is a dependency of tcpwave[plots]
        raise RuntimeError("PNG plots need matplotlib: pip install 'tcpwave[plots]'") from e
    return plt


def data_sender(events: list[dict], left: str, right: str) -> str:
    """The endpoint that sent more payload (the direction worth plotting)."""
    sent = {left: 0, right: 0}
    for e in events:
        if e["type"] == "send" and e["host"] in sent:
            sent[e["host"]] += e["len"]
    return left if sent[left] >= sent[right] else right


def _wscale(events: list[dict], host: str) -> int:
    """Window scale `host` applies to its windows (only if both SYNs offered it)."""
    offered = {}
    for e in events:
        if e["type"] == "send" and "SYN" in e["flags"].split(",") and e["host"] not in offered:
            m = _WSCALE.search(e.get("opts", ""))
            offered[e["host"]] = int(m.group(1)) if m else None
    if len(offered) == 2 and None not in offered.values():
        return offered.get(host) or 0
    return 0


def time_sequence(events: list[dict], left: str, right: str, path: str, sender: str | None = None) -> list[str]:
    """The time-sequence graph of one direction: each segment a vertical bar from seq to seq+len
    (retransmissions red), the receiver's ACK line and receive-window line, SACK blocks."""
    plt = _matplotlib()
    sender = sender or data_sender(events, left, right)
    receiver = right if sender == left else left
    segs = [e for e in events if e["type"] == "send" and e["host"] == sender]
    acks = [e for e in events if e["type"] == "send" and e["host"] == receiver and "ACK" in e["flags"].split(",")]
    base = next((e["seq"] for e in segs if "SYN" in e["flags"].split(",")), segs[0]["seq"] if segs else 0)
    scale = 1 << _wscale(events, receiver)
    fig, ax = plt.subplots(figsize=(11, 6), dpi=100)
    series = []
    first = [(e["t"], seq_diff(e["seq"], base), e["len"]) for e in segs if e["len"] and "note" not in e]
    rtx = [(e["t"], seq_diff(e["seq"], base), e["len"]) for e in segs if e["len"] and "note" in e]
    for points, color, name in ((first, "black", "segments"), (rtx, "red", "retransmissions")):
        if points:
            ax.vlines([p[0] for p in points], [p[1] for p in points], [p[1] + p[2] for p in points],
                      colors=color, linewidth=1.2, label=name)
            ax.plot([p[0] for p in points], [p[1] + p[2] for p in points], linestyle="none", marker="_",
                    color=color, markersize=4)
            series.append(name)
    if acks:
        times = [e["t"] for e in acks]
        ack = [seq_diff(e["ack"], base) for e in acks]
        ax.step(times, ack, where="post", color="green", linewidth=1, label="ACK")
        ax.step(times, [a + e["win"] * (1 if "SYN" in e["flags"] else scale) for a, e in zip(ack, acks, strict=True)],
                where="post", color="goldenrod", linewidth=1, label="receive window")
        series += ["ACK", "receive window"]
    blocks = []
    for e in acks:
        m = _SACK.search(e.get("opts", ""))
        if m:
            for pair in m.group(1).split():
                a, b = (int(x) for x in pair.split(":"))
                blocks.append((e["t"], seq_diff(a, base), seq_diff(b, base)))
    if blocks:
        ax.vlines([b[0] for b in blocks], [b[1] for b in blocks], [b[2] for b in blocks], colors="purple",
                  linewidth=2.5, alpha=0.6, label="SACK blocks")
        series.append("SACK blocks")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"sequence number (relative, bytes) {sender} → {receiver}")
    ax.set_title(f"time-sequence graph: {sender} → {receiver}")
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return series


def capture_rtt_samples(events: list[dict], sender: str) -> list[tuple[float, float]]:
    """(time, RTT): the samples `trace --summary` counts (views.summary.rtt_samples), so the plot and
    the summary agree."""
    return rtt_samples(events, sender)


def cc_plots(events: list[dict], host: str, path: str) -> list[str]:
    """cwnd and ssthresh (or bytes in flight, from a capture), RTT samples and SRTT, and the RTO."""
    plt = _matplotlib()
    cc = [e for e in events if e["type"] == "cc" and e["host"] == host]
    rtt = [e for e in events if e["type"] == "rtt" and e["host"] == host]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 8), dpi=100, sharex=True)
    series = []
    if cc:
        ax1.step([e["t"] for e in cc], [e["cwnd"] for e in cc], where="post", label="cwnd")
        ss = [(e["t"], e["ssthresh"]) for e in cc if e["ssthresh"] < 1 << 30]
        if ss:
            ax1.step([s[0] for s in ss], [s[1] for s in ss], where="post", linestyle="--", label="ssthresh")
            series.append("ssthresh")
        series.insert(0, "cwnd")
    else:
        flight = _flight_from_capture(events, host)
        if flight:
            ax1.step([f[0] for f in flight], [f[1] for f in flight], where="post", label="bytes in flight")
            series.append("bytes in flight")
    ax1.set_ylabel("bytes")
    losses = [e for e in events if e["type"] == "loss" and e["host"] == host]
    if losses:  # which rule found each loss, along the window it cut
        top = max((e["cwnd"] for e in cc), default=1)
        for rule, marker in (("dupack", "v"), ("rack", "o"), ("tlp", "s"), ("rto", "X")):
            ts = [e["t"] for e in losses if e["rule"] == rule]
            if ts:
                ax1.plot(ts, [top * 1.02] * len(ts), marker, markersize=5, linestyle="none",
                         label=f"loss found by {rule}")
                series.append(f"loss found by {rule}")
    recovering = [e for e in events if e["type"] == "recovery" and e["host"] == host]
    start = None
    for e in recovering:  # shade the time spent in fast recovery or after a timeout
        if e["to"] in ("recovery", "loss") and start is None:
            start = e["t"]
        elif e["to"] not in ("recovery", "loss") and start is not None:
            ax1.axvspan(start, e["t"], color="orange", alpha=0.15, linewidth=0)
            start = None
    if recovering:
        series.append("recovery periods")
    if rtt:
        ax2.plot([e["t"] for e in rtt], [e["sample"] * 1000 for e in rtt], ".", label="RTT sample")
        ax2.plot([e["t"] for e in rtt], [e["srtt"] * 1000 for e in rtt], "-", label="SRTT")
        ax3.step([e["t"] for e in rtt], [e["rto"] * 1000 for e in rtt], where="post", color="red", label="RTO")
        series += ["RTT sample", "SRTT", "RTO"]
        armed = [e for e in events if e["type"] == "timer" and e["host"] == host and e["name"] == "retransmit"
                 and e["action"] == "arm"]
        if armed:  # with exponential backoff after timeouts
            ax3.plot([e["t"] for e in armed], [e["delay"] * 1000 for e in armed], "x", color="black",
                     markersize=4, label="retransmit timer armed for")
            series.append("retransmit timer armed for")
    else:
        samples = capture_rtt_samples(events, host)
        if samples:
            ax2.plot([s[0] for s in samples], [s[1] * 1000 for s in samples], ".", label="RTT sample")
            series.append("RTT sample")
        ax3.text(0.5, 0.5, "RTO: not visible in a capture (use a tcpwave --events log)", ha="center",
                 va="center", transform=ax3.transAxes, color="#777")
    ax2.set_ylabel("RTT (ms)")
    ax3.set_ylabel("RTO (ms)")
    ax3.set_xlabel("time (s)")
    for ax in (ax1, ax2, ax3):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"{host}: congestion window, RTT and RTO")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return series


def _flight_from_capture(events: list[dict], host: str) -> list[tuple[float, int]]:
    snd_max = snd_una = None
    out = []
    for e in events:
        if e["type"] != "send":
            continue
        if e["host"] == host:
            end = (e["seq"] + e["len"]) & 0xFFFFFFFF
            if snd_max is None or seq_ge(end, snd_max):
                snd_max = end
        elif "ACK" in e["flags"].split(","):
            snd_una = e["ack"] if snd_una is None or seq_ge(e["ack"], snd_una) else snd_una
        else:
            continue
        if snd_max is not None and snd_una is not None:
            out.append((e["t"], max(0, seq_diff(snd_max, snd_una))))
    return out
