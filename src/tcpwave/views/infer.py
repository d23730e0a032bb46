"""Infer each connection's states on both sides from captured segments alone.

The observer drives both endpoints the way RFC 9293 would, from what it sees on the wire: a SYN
opens (the receiver is presumed LISTENing), an ACK of a SYN establishes, a FIN and the ACK of a FIN
walk the close, a RST ends. The output is tcpwave's own trace-event format (`send`, `state`, `drop`
dicts), so the ladder, timeline and diagram renderers draw captures and tcpwave runs alike.
"""

from dataclasses import dataclass, field

from ..wire.errors import MalformedPacket
from ..wire.ip import parse_ip
from ..wire.options import describe_options
from ..wire.seq import seq_add, seq_diff, seq_gt, seq_le
from ..wire.tcp import ACK, FIN, PROTO_TCP, RST, SYN, flags_text, parse_tcp
from .analysis import analyse

_ACK_OF_FIN = {"FIN_WAIT_1": "FIN_WAIT_2", "CLOSING": "TIME_WAIT", "LAST_ACK": "CLOSED"}


@dataclass
class _Side:
    name: str
    state: str = "CLOSED"
    isn: int | None = None
    snd_max: int | None = None  # end of the highest sequence number sent
    fin_seq: int | None = None
    got_fin: bool = False
    # What this side has been sent but not yet shown to have received: (proof ack, segment, time).
    # A SYN or FIN takes effect at the receiver once the receiver's own ACK covers it (its reply is
    # the evidence, and it orders crossing FINs right), or when a later segment in the same direction
    # takes effect (segments arrive in order).
    pending: list = field(default_factory=list)


@dataclass
class ConnectionView:
    """One connection (one incarnation of a 4-tuple) seen in a capture."""

    left: str  # the endpoint that spoke first (normally the one that sent the SYN)
    right: str
    events: list[dict] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0

    @property
    def title(self) -> str:
        return f"{self.left} ↔ {self.right}"


class _Observer:
    def __init__(self, a: str, b: str, t: float):
        self.sides = {a: _Side(a), b: _Side(b)}
        self.view = ConnectionView(a, b, start=t, end=t)

    def closed(self) -> bool:
        return all(s.state in ("CLOSED", "TIME_WAIT") for s in self.sides.values())

    def _set(self, side: _Side, new: str, t: float, why: str) -> None:
        if side.state != new:
            self.view.events.append({"t": t, "host": side.name, "type": "state", "from": side.state,
                                     "to": new, "why": why})
            side.state = new

    # ------------------------------------------------------------ one segment
    def segment(self, t: float, src: str, dst: str, seg, ipid: int | None = None, ttl: int | None = None) -> None:
        x, y = self.sides[src], self.sides[dst]
        f, n = seg.flags, len(seg.payload)
        self.view.end = t
        seg_len = n + bool(f & SYN) + bool(f & FIN)
        event = {"t": t, "host": src, "type": "send", "src": src, "dst": dst, "flags": flags_text(f),
                 "seq": seg.seq, "ack": seg.ack, "len": n, "win": seg.window}
        if seg.options:
            event["opts"] = describe_options(seg.options)
        if ipid is not None:
            event["ipid"] = ipid
        if ttl is not None:
            event["ttl"] = ttl
        end = seq_add(seg.seq, seg_len)
        if seg_len and x.snd_max is not None and seq_le(end, x.snd_max):
            event["note"] = "retransmission"  # or a late original: finish() looks at the IPv4 ID
        elif seg_len and (x.snd_max is None or seq_gt(end, x.snd_max)):
            x.snd_max = end
        # 1. what this segment shows its sender received
        if f & RST:
            x.pending.clear()  # refused: what was pending for x never took effect
        elif f & ACK:
            self._deliver(x, t, upto=seg.ack)
        if x.state == "CLOSED" and not f & (SYN | RST):
            self._set(x, "ESTABLISHED", t, "already open when the capture began")
            if y.state == "CLOSED":
                self._set(y, "ESTABLISHED", t, "already open when the capture began")
        self.view.events.append(event)
        # 2. what sending it does to the sender
        if f & RST:
            if x.state != "CLOSED":
                self._set(x, "CLOSED", t, "send RST")
        elif f & SYN:
            x.isn = seg.seq if x.isn is None else x.isn
            if x.state == "CLOSED":
                self._set(x, "SYN_RCVD" if f & ACK else "SYN_SENT", t,
                          "rcv SYN (before the capture began)" if f & ACK else "active OPEN / send SYN")
        if f & FIN and x.fin_seq is None:
            x.fin_seq = seq_add(seg.seq, n + bool(f & SYN))
            if x.state in ("ESTABLISHED", "SYN_RCVD"):
                self._set(x, "FIN_WAIT_1", t, "CLOSE / send FIN")
            elif x.state == "CLOSE_WAIT":
                self._set(x, "LAST_ACK", t, "CLOSE / send FIN")
        # 3. what receiving it does to the receiver: now, or once the receiver's reply shows it
        if f & (SYN | FIN) and not f & RST:
            y.pending.append((seq_add(seg.seq, seg_len), seg, t))
        else:
            self._deliver(y, t)
            self._arrive(y, seg, t)

    def _deliver(self, side: _Side, t: float, upto: int | None = None) -> None:
        """Apply side's pending arrivals: all of them, or those its ACK `upto` covers."""
        while side.pending and (upto is None or seq_le(side.pending[0][0], upto)):
            _, seg, _ = side.pending.pop(0)
            self._arrive(side, seg, t)  # shown when the evidence is seen

    def finish(self) -> None:
        for side in self.sides.values():
            for _, seg, sent_at in side.pending:
                self._arrive(side, seg, sent_at)
            side.pending.clear()
        self.view.events.sort(key=lambda e: e["t"])
        self._evidence()
        self.view.events.sort(key=lambda e: e["t"])

    def _evidence(self) -> None:
        """Loss marks that agree with the evidence (views.analysis): a copy seen here is marked lost
        only if it never reached the peer; sequence space never seen here is drawn as such."""
        events = self.view.events
        sends = [e for e in events if e["type"] == "send"]
        a, b = self.sides
        for me, peer in ((a, b), (b, a)):
            d = analyse(sends, me, peer)
            for e in sends:
                lab = d.labels.get(id(e))
                if lab is None:
                    continue
                if lab.kind == "out-of-order":
                    e["note"] = "out-of-order: late original"
                if "discarded" in lab.flags:  # e.g. PAWS: a late copy whose timestamp is older than the last
                    e["note"] = (e["note"] + "; " if e.get("note") else "") + "arrived, not ACKed: discarded"
                if lab.lost:
                    events.append({"t": e["t"], "host": me, "type": "drop", "where": "link",
                                   "reason": "not received", "flags": e["flags"], "seq": e["seq"],
                                   "ack": e["ack"], "len": e["len"]})
            for h in d.holes:
                if h.fate != "reordered":
                    events.append({"t": h.t, "host": me, "type": "unseen", "src": me, "dst": peer, "seq": h.start,
                                   "len": seq_diff(h.end, h.start), "fate": h.fate})

    # ------------------------------------------------------------ RFC 9293 at the receiver
    def _arrive(self, y: _Side, seg, t: float) -> None:
        f = seg.flags
        if f & RST:
            if y.state not in ("CLOSED", "LISTEN"):
                self._set(y, "CLOSED", t, "rcv RST")
            return
        if f & SYN and not f & ACK:
            if y.state == "CLOSED":
                self._set(y, "LISTEN", t, "passive OPEN (inferred)")
            if y.state == "LISTEN":
                self._set(y, "SYN_RCVD", t, "rcv SYN / send SYN,ACK")
            elif y.state == "SYN_SENT":
                self._set(y, "SYN_RCVD", t, "rcv SYN (simultaneous open)")
            return
        if not f & ACK:
            return
        acks_syn = y.isn is not None and seq_gt(seg.ack, y.isn)
        acks_fin = y.fin_seq is not None and seq_gt(seg.ack, y.fin_seq)
        if f & SYN:
            if acks_syn and y.state in ("SYN_SENT", "SYN_RCVD"):
                self._set(y, "ESTABLISHED", t, "rcv SYN,ACK / send ACK" if y.state == "SYN_SENT" else "rcv SYN,ACK")
            return
        if y.state == "SYN_RCVD" and acks_syn:
            self._set(y, "ESTABLISHED", t, "rcv ACK of SYN")
        if f & FIN and not y.got_fin:
            y.got_fin = True
            if y.state == "FIN_WAIT_1":
                self._set(y, "TIME_WAIT" if acks_fin else "CLOSING", t,
                          "rcv FIN,ACK of FIN / send ACK" if acks_fin else "rcv FIN / send ACK (simultaneous close)")
                return
            if y.state in ("ESTABLISHED", "SYN_RCVD"):
                self._set(y, "CLOSE_WAIT", t, "rcv FIN / send ACK")
            elif y.state == "FIN_WAIT_2":
                self._set(y, "TIME_WAIT", t, "rcv FIN / send ACK")
        if acks_fin and y.state in _ACK_OF_FIN:
            self._set(y, _ACK_OF_FIN[y.state], t, "rcv ACK of FIN")


def infer_connections(packets: list[tuple[float, bytes]]) -> tuple[list[ConnectionView], dict[str, int]]:
    """Group TCP segments into connections and infer their states. Returns the connections in
    order of first appearance and counts of what was skipped (non-TCP, malformed)."""
    observers: dict[frozenset, _Observer] = {}
    views: list[ConnectionView] = []
    skipped: dict[str, int] = {}
    for t, raw in packets:
        try:
            pkt = parse_ip(raw)
            if pkt.proto != PROTO_TCP:
                skipped["not_tcp"] = skipped.get("not_tcp", 0) + 1
                continue
            seg = parse_tcp(pkt.payload)  # no checksum check: captures with offloads have partial ones
        except MalformedPacket as e:
            skipped[e.reason] = skipped.get(e.reason, 0) + 1
            continue
        src, dst = _endpoint(pkt.src, seg.src_port), _endpoint(pkt.dst, seg.dst_port)
        key = frozenset((src, dst))
        obs = observers.get(key)
        new_syn = seg.flags & (SYN | ACK | RST) == SYN
        if obs is None or (new_syn and obs.closed() and obs.sides[src].isn != seg.seq):
            if obs is not None:
                obs.finish()
            obs = observers[key] = _Observer(src, dst, t)
            views.append(obs.view)
        v4 = pkt.src.version == 4
        obs.segment(t, src, dst, seg, int.from_bytes(raw[4:6], "big") if v4 else None, raw[8] if v4 else raw[7])
    for obs in {id(o): o for o in observers.values()}.values():
        obs.finish()
    return views, skipped


def _endpoint(addr, port: int) -> str:
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"
