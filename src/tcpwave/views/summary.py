"""`tcpwave trace --summary`: what happened on each connection, in numbers, each direction apart.

The segments are labelled by views.analysis (retransmissions by cause, reordering told apart by the
IPv4 ID, gaps in the capture); this module counts per sender:
- retransmissions, split into those of the retransmission timer (RTO), fast retransmissions (after
  duplicate ACKs or SACK), tail loss probes and those that follow an RTO; spurious ones are those the
  receiver then reported as duplicates in a D-SACK block (RFC 2883);
- out-of-order: late originals (reordering on the path), which carry new data at this point;
- duplicate ACKs received (as Wireshark counts them) and their runs; window-full segments, zero-window
  probes, keep-alives and window updates (as Wireshark names them); zero-window periods;
- RTT from data segments to the ACK that first covers them, sent once only (Karn), and the initial
  RTT (SYN to the ACK that completes the handshake, as Wireshark's);
- what this capture point did not see: sequence space never captured, by its fate (lost before this
  point, reordered, missed by the capture though the peer ACKed it);
- goodput: new bytes acknowledged per second, from the first data segment to the last ACK of data.
See docs/trace-summary.md for each definition and its tshark counterpart.
"""

import dataclasses

from ..wire.seq import seq_diff, seq_gt
from .analysis import analyse, data_span, handshake_rtt

RTX_KINDS = ("rto", "fast", "tlp", "after-rto")


@dataclasses.dataclass
class Direction:
    """What one endpoint sent, and what its peer's segments say about it."""

    segments: int = 0
    data_bytes: int = 0  # sequence space of data sent (first to highest), holes in the capture included
    retransmissions: int = 0
    retransmitted_bytes: int = 0
    by_cause: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(RTX_KINDS, 0))
    rto_waits: list[float] = dataclasses.field(default_factory=list)  # head segment's previous copy to its RTO resend
    spurious: int = 0  # retransmissions the receiver reported as duplicates (D-SACK)
    out_of_order: int = 0  # late originals (IPv4 ID older than one already seen)
    lost_beyond: int = 0  # copies seen here that did not reach the peer (the ladder's X)
    discarded: int = 0  # copies a capture at the receiver holds that its ACKs never covered (e.g. PAWS)
    not_captured: dict[str, int] = dataclasses.field(default_factory=dict)  # fate -> bytes never seen here
    gaps: int = 0  # segments that jumped ahead of what this capture showed ("previous segment not captured")
    acked_unseen: int = 0  # the peer's ACKs of sequence space this capture never showed
    dup_acks: int = 0
    dup_ack_runs: int = 0
    longest_dup_ack_run: int = 0
    window_full: int = 0
    zero_window_probes: int = 0
    keep_alives: int = 0
    window_updates: int = 0
    zero_window: list[float] = dataclasses.field(default_factory=list)  # seconds, each period
    rtt: list[float] = dataclasses.field(default_factory=list)  # samples, seconds
    initial_rtt: float | None = None
    goodput: float | None = None  # bit/s

    @property
    def rto_stalls(self) -> list[float]:  # the name earlier versions used
        return self.rto_waits


def summarize(events: list[dict], left: str, right: str) -> dict[str, Direction]:
    sends = [e for e in events if e["type"] == "send"]
    la, ra = analyse(sends, left, right), analyse(sends, right, left)
    handshake = handshake_rtt(sends)
    out = {left: _direction(sends, left, la, ra), right: _direction(sends, right, ra, la)}
    out[left].initial_rtt = out[right].initial_rtt = handshake
    return out


def rtt_samples(events: list[dict], sender: str) -> list[tuple[float, float]]:
    """(time, RTT) of each sample the summary counts for `sender` (the PNG plots these)."""
    sends = [e for e in events if e["type"] == "send"]
    peer = next((e["host"] for e in sends if e["host"] != sender), "?")
    return analyse(sends, sender, peer).rtt


def _direction(sends: list[dict], me: str, mine, theirs) -> Direction:
    out = Direction(rtt=[s for _, s in mine.rtt], data_bytes=data_span(mine, sends, me),
                    spurious=len(mine.dsacked))
    run = 0
    zero_since = None
    first_data = last_ack_time = acked_from = acked_to = None
    for e in sends:
        if e["host"] == me:
            lab = mine.labels[id(e)]
            out.segments += 1
            if lab.kind == "retransmission":
                out.retransmissions += 1
                out.retransmitted_bytes += e["len"]
                out.by_cause[lab.rtx] += 1
            elif lab.kind == "out-of-order":
                out.out_of_order += 1
            if lab.kind == "new" and e["len"] and first_data is None:
                first_data, acked_from = e["t"], e["seq"]
            out.gaps += "previous-segment-not-captured" in lab.flags
            out.lost_beyond += lab.lost
            out.discarded += "discarded" in lab.flags
            out.window_full += "window-full" in lab.flags
            out.zero_window_probes += "zero-window-probe" in lab.flags
            out.keep_alives += "keep-alive" in lab.flags
            out.window_updates += "window-update" in lab.flags
            continue
        lab = theirs.labels[id(e)]
        flags = e["flags"].split(",")
        if "ACK" in flags and acked_from is not None and seq_gt(e["ack"], acked_from) \
                and (acked_to is None or seq_gt(e["ack"], acked_to)):
            acked_to, last_ack_time = e["ack"], e["t"]
        out.acked_unseen += "acked-unseen-segment" in lab.flags
        if "dup-ack" in lab.flags:
            out.dup_acks += 1
            run += 1
            out.dup_ack_runs += run == 1
            out.longest_dup_ack_run = max(out.longest_dup_ack_run, run)
        else:
            run = 0
        if e["win"] == 0 and "RST" not in flags and zero_since is None:
            zero_since = e["t"]
        elif e["win"] and zero_since is not None:
            out.zero_window.append(e["t"] - zero_since)
            zero_since = None
    if zero_since is not None and sends:
        out.zero_window.append(sends[-1]["t"] - zero_since)
    for h in mine.holes:
        if h.fate == "reordered":  # seen after all, late
            continue
        out.not_captured[h.fate] = out.not_captured.get(h.fate, 0) + seq_diff(h.end, h.start)
    if acked_to is not None and acked_from is not None and last_ack_time is not None and first_data is not None \
            and last_ack_time > first_data:
        out.goodput = seq_diff(acked_to, acked_from) * 8 / (last_ack_time - first_data)
    out.rto_waits = [lab.wait for lab in mine.labels.values() if lab.rtx == "rto" and lab.wait is not None]
    return out


def intervals(events: list[dict], left: str, right: str, step: float, start: float = 0.0) -> list[dict]:
    """I/O statistics per `step` seconds from `start` (as tshark's io,stat): for each direction,
    segments, data bytes (TCP payload) and retransmissions."""
    sends = [e for e in events if e["type"] == "send"]
    if not sends or step <= 0:
        return []
    labels = {**analyse(sends, left, right).labels, **analyse(sends, right, left).labels}
    n = int((sends[-1]["t"] - start) // step) + 1
    rows: list[dict] = [{"start": round(start + i * step, 9), "end": round(start + (i + 1) * step, 9),
             **{who: {"segments": 0, "bytes": 0, "retransmissions": 0} for who in (left, right)}} for i in range(n)]
    for e in sends:
        i = min(n - 1, max(0, int((e["t"] - start) // step)))
        cell: dict = rows[i][e["host"]]
        cell["segments"] += 1
        cell["bytes"] += e["len"]
        cell["retransmissions"] += labels[id(e)].kind == "retransmission"
    return rows


def as_json(summary: dict[str, Direction]) -> dict:
    """The summary as plain data (json.dumps-able), times in seconds."""
    out = {}
    for who, d in summary.items():
        rec: dict = dataclasses.asdict(d)
        rec["rtt"] = ({"min": min(d.rtt), "avg": sum(d.rtt) / len(d.rtt), "max": max(d.rtt), "samples": len(d.rtt)}
                      if d.rtt else None)
        rec["rto"] = d.by_cause["rto"]
        out[who] = rec
    return out


def render(summary: dict[str, Direction]) -> str:
    lines = []
    for who, d in summary.items():
        c = d.by_cause
        lines.append(f"{who} sent {d.segments} segments, {d.data_bytes} data bytes")
        lines.append(f"  retransmissions   {d.retransmissions} ({d.retransmitted_bytes} bytes): {c['rto']} RTO, "
                     f"{c['fast']} fast, {c['tlp']} TLP, {c['after-rto']} after an RTO; "
                     f"{d.spurious} spurious (D-SACK)")
        w = d.rto_waits
        lines.append(f"  RTO               {len(w)}" + (f", longest wait {max(w):.3f} s, {sum(w):.3f} s in all"
                                                        if w else ""))
        lines.append(f"  out-of-order      {d.out_of_order} (late originals, by IPv4 ID)")
        lines.append(f"  lost beyond here  {d.lost_beyond} (seen here, never reached the peer); {d.discarded} "
                     "arrived but were discarded (never ACKed)")
        gaps = ", ".join(f"{n} bytes {fate}" for fate, n in sorted(d.not_captured.items()))
        lines.append(f"  not seen here     {d.gaps} gaps: {gaps or 'none'}; {d.acked_unseen} ACKs of unseen "
                     "segments")
        lines.append(f"  duplicate ACKs    {d.dup_acks} received in {d.dup_ack_runs} runs, "
                     f"longest {d.longest_dup_ack_run}")
        lines.append(f"  window            {d.window_full} window-full, {d.window_updates} updates, "
                     f"{d.zero_window_probes} zero-window probes, {d.keep_alives} keep-alives")
        zw = d.zero_window
        lines.append(f"  zero window       {len(zw)} periods" + (f", {sum(zw):.3f} s in all" if zw else ""))
        rtt = d.rtt
        lines.append("  RTT               " + (
            f"min {min(rtt) * 1000:.3f} ms, avg {sum(rtt) / len(rtt) * 1000:.3f} ms, max {max(rtt) * 1000:.3f} ms "
            f"({len(rtt)} samples)" if rtt else "no samples")
            + (f"; initial {d.initial_rtt * 1000:.3f} ms" if d.initial_rtt is not None else ""))
        lines.append("  goodput           " + (_rate(d.goodput) if d.goodput else "-"))
    return "\n".join(lines) + "\n"


def render_intervals(rows: list[dict], left: str, right: str) -> str:
    head = f"{'interval (s)':>19}  {'segments':>8} {'bytes':>10} {'rtx':>5}  {'segments':>8} {'bytes':>10} {'rtx':>5}"
    out = [f"{'':19}  {left:^25}  {right:^25}", head]
    for r in rows:
        a, b = r[left], r[right]
        out.append(f"{r['start']:9.3f}-{r['end']:<9.3f}  {a['segments']:8} {a['bytes']:10} {a['retransmissions']:5}  "
                   f"{b['segments']:8} {b['bytes']:10} {b['retransmissions']:5}")
    return "\n".join(out) + "\n"


def _rate(bits: float) -> str:
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.2f} {unit}"
    return f"{bits:.0f} bit/s"
