"""The RST that answers a segment for which no connection exists (RFC 9293 §3.10.7.1)."""

from ..wire.seq import seq_add
from ..wire.tcp import ACK, RST, Segment


def reset_for(seg: Segment) -> Segment | None:
    if seg.flags & RST:
        return None  # never answer a RST
    if seg.flags & ACK:
        return Segment(seg.dst_port, seg.src_port, seg.ack, 0, RST, 0)
    return Segment(seg.dst_port, seg.src_port, 0, seq_add(seg.seq, seg.seg_len), RST | ACK, 0)
