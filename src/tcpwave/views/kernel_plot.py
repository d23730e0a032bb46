"""The kernel's own cwnd, ssthresh and srtt (tracepoint tcp:tcp_probe, one sample per segment the
socket received) over time, for the HTML report and PNGs of `watch` and `trace --live`."""

from .plots import _matplotlib


def kernel_hosts(events: list[dict]) -> list[str]:
    """The endpoints with tcp_probe samples, in order of appearance."""
    return list(dict.fromkeys(e["host"] for e in events if e["type"] == "kprobe"))


def kernel_cc_plot(events: list[dict], host: str, path: str) -> list[str]:
    """Two panels: cwnd and ssthresh in segments, srtt in ms. Returns the series drawn."""
    plt = _matplotlib()
    probes = [e for e in events if e["type"] == "kprobe" and e["host"] == host]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), dpi=100, sharex=True)
    ts = [e["t"] for e in probes]
    ax1.step(ts, [e["cwnd"] for e in probes], where="post", label="cwnd (kernel)")
    series = ["cwnd"]
    ss = [(e["t"], e["ssthresh"]) for e in probes if e["ssthresh"] < 1 << 30]
    if ss:
        ax1.step([s[0] for s in ss], [s[1] for s in ss], where="post", linestyle="--", label="ssthresh (kernel)")
        series.append("ssthresh")
    ax2.plot(ts, [e["srtt"] * 1000 for e in probes], "-", label="srtt (kernel)")
    series.append("srtt")
    ax1.set_ylabel("segments")
    ax2.set_ylabel("srtt (ms)")
    ax2.set_xlabel("time (s)")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"{host}: the kernel's cwnd and srtt (tcp:tcp_probe)")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return series
