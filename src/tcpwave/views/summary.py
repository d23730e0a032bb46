"""`tcpwave trace --summary`: what happened on each connection, in numbers, each direction apart.

From a view's segments (a capture's or an event log's), per sender:
- retransmissions: segments carrying sequence space already sent (SYN, FIN or data). Wireshark
  splits the same set into "retransmission" and "out-of-order" (a resend that comes within its
  reordering threshold of the segment before); tshark's two counts add up to ours;
- spurious retransmissions: those the receiver then reported as duplicates in a D-SACK block
  (RFC 2883), so they were not needed;
- RTO stalls: a retransmission after the sender was silent for at least 200 ms (Linux's minimum RTO)
  and three smoothed RTTs, with the stall's length;
- duplicate ACKs, as Wireshark counts them (no data, no SYN/FIN/RST, the same ACK number and
  non-zero window as the previous segment from that side, and the sequence number right after it),
  and their runs;
- zero-window periods advertised by the receiver, with their length;
- RTT from data segments to the ACK that first covers them, sent once only (Karn): min, avg, max;
- goodput: new bytes acknowledged per second, from the first data segment to the last ACK of data.
"""

import dataclasses

from ..wire.seq import seq_diff, seq_ge, seq_gt, seq_le

RTO_FLOOR = 0.2


@dataclasses.dataclass
class Direction:
    """What one endpoint sent, and what its peer's ACKs say about it."""

    segments: int = 0
    data_bytes: int = 0  # new data, first transmissions
    retransmissions: int = 0
    retransmitted_bytes: int = 0
    spurious: int = 0  # retransmissions the receiver reported as duplicates (D-SACK)
    rto_stalls: list[float] = dataclasses.field(default_factory=list)  # seconds of silence before each
    dup_acks: int = 0
    dup_ack_runs: int = 0
    longest_dup_ack_run: int = 0
    zero_window: list[float] = dataclasses.field(default_factory=list)  # seconds, each period
    rtt: list[float] = dataclasses.field(default_factory=list)  # samples, seconds
    goodput: float | None = None  # bit/s


def _sack_blocks(opts: str) -> list[tuple[int, int]]:
    for part in opts.split(","):
        if part.startswith("sack "):
            return [(int(a), int(b)) for a, b in (blk.split(":") for blk in part[5:].split())]
    return []


def summarize(events: list[dict], left: str, right: str) -> dict[str, Direction]:
    sends = [e for e in events if e["type"] == "send"]
    return {left: _direction(sends, left, right), right: _direction(sends, right, left)}


def _direction(sends: list[dict], me: str, peer: str) -> Direction:
    out = Direction()
    pending: list[tuple[int, float]] = []  # (end, sent at) of data sent once, not yet ACKed
    resent: list[tuple[int, int]] = []  # retransmitted ranges, for D-SACK
    snd_max = None
    last_mine = None  # time of my previous segment
    srtt = None
    peer_last: dict | None = None  # the peer's previous segment (for duplicate ACKs)
    peer_nxt: int | None = None  # the end of the highest sequence space the peer has sent
    run = 0
    zero_since = None
    first_data: float | None = None
    last_ack_time: float | None = None
    acked_from: int | None = None
    acked_to: int | None = None
    for e in sends:
        if e["host"] == me:
            n = e["len"] + ("SYN" in e["flags"]) + ("FIN" in e["flags"])
            out.segments += 1
            if n:
                end = (e["seq"] + n) & 0xFFFFFFFF
                if e.get("note", "").startswith("retransmission"):
                    out.retransmissions += 1
                    out.retransmitted_bytes += e["len"]
                    resent.append((e["seq"], end))
                    pending = [p for p in pending if not seq_gt(p[0], e["seq"])]  # Karn: no samples from these
                    floor = max(RTO_FLOOR, 3 * srtt) if srtt else RTO_FLOOR
                    if last_mine is not None and e["t"] - last_mine >= floor:
                        out.rto_stalls.append(e["t"] - last_mine)
                else:
                    if e["len"]:
                        out.data_bytes += e["len"]
                        if first_data is None:
                            first_data, acked_from = e["t"], e["seq"]
                    pending.append((end, e["t"]))
                if snd_max is None or seq_gt(end, snd_max):
                    snd_max = end
            last_mine = e["t"]
            continue
        # the peer's segment: its ACK and window speak about what I sent
        flags = e["flags"].split(",")
        if "ACK" in flags:
            ack = e["ack"]
            while pending and seq_le(pending[0][0], ack):
                sample = e["t"] - pending.pop(0)[1]
                out.rtt.append(sample)
                srtt = sample if srtt is None else 0.875 * srtt + 0.125 * sample
            if acked_from is not None and seq_gt(ack, acked_from) and (acked_to is None or seq_gt(ack, acked_to)):
                acked_to, last_ack_time = ack, e["t"]
            blocks = _sack_blocks(e.get("opts", ""))
            if blocks:  # D-SACK: the first block below the ACK, or inside the second (RFC 2883)
                a, b = blocks[0]
                dsack = seq_le(b, ack) or (len(blocks) > 1 and seq_ge(a, blocks[1][0]) and seq_le(b, blocks[1][1]))
                if dsack:
                    hit = [r for r in resent
                           if seq_le(a, r[0]) and seq_le(r[1], b) or seq_le(r[0], a) and seq_le(b, r[1])]
                    if hit:
                        out.spurious += 1
                        resent.remove(hit[0])
            dup = (peer_last is not None and e["len"] == 0 and not {"SYN", "FIN", "RST"} & set(flags)
                   and ack == peer_last["ack"] and e["win"] == peer_last["win"] != 0
                   and e["seq"] == peer_nxt)
            if dup:
                out.dup_acks += 1
                run += 1
                if run == 1:
                    out.dup_ack_runs += 1
                out.longest_dup_ack_run = max(out.longest_dup_ack_run, run)
            else:
                run = 0
            if e["win"] == 0 and "RST" not in flags and zero_since is None:
                zero_since = e["t"]
            elif e["win"] and zero_since is not None:
                out.zero_window.append(e["t"] - zero_since)
                zero_since = None
        peer_last = e
        end = (e["seq"] + e["len"] + ("SYN" in flags) + ("FIN" in flags)) & 0xFFFFFFFF
        if peer_nxt is None or seq_gt(end, peer_nxt):
            peer_nxt = end
    if zero_since is not None and sends:
        out.zero_window.append(sends[-1]["t"] - zero_since)
    if (acked_to is not None and acked_from is not None and last_ack_time is not None and first_data is not None
            and last_ack_time > first_data):
        out.goodput = seq_diff(acked_to, acked_from) * 8 / (last_ack_time - first_data)
    return out


def render(summary: dict[str, Direction]) -> str:
    lines = []
    for who, d in summary.items():
        lines.append(f"{who} sent {d.segments} segments, {d.data_bytes} new data bytes")
        lines.append(f"  retransmissions   {d.retransmissions} ({d.retransmitted_bytes} bytes), "
                     f"{d.spurious} spurious (D-SACK)")
        stalls = d.rto_stalls
        lines.append(f"  RTO stalls        {len(stalls)}"
                     + (f", {sum(stalls):.3f} s in all, longest {max(stalls):.3f} s" if stalls else ""))
        lines.append(f"  duplicate ACKs    {d.dup_acks} received in {d.dup_ack_runs} runs, "
                     f"longest {d.longest_dup_ack_run}")
        zw = d.zero_window
        lines.append(f"  zero window       {len(zw)} periods" + (f", {sum(zw):.3f} s in all" if zw else ""))
        rtt = d.rtt
        lines.append("  RTT               " + (
            f"min {min(rtt) * 1000:.3f} ms, avg {sum(rtt) / len(rtt) * 1000:.3f} ms, max {max(rtt) * 1000:.3f} ms "
            f"({len(rtt)} samples)" if rtt else "no samples"))
        lines.append("  goodput           " + (_rate(d.goodput) if d.goodput else "-"))
    return "\n".join(lines) + "\n"


def _rate(bits: float) -> str:
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.2f} {unit}"
    return f"{bits:.0f} bit/s"
