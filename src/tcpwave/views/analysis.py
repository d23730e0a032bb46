"""What each segment of one direction was, judged from the evidence a capture holds.

`analyse(sends, me, peer)` walks one connection's segments in capture order and labels what `me`
sent, the way Wireshark's TCP analysis does where it has a name for it, and more carefully where the
evidence allows:

- a segment carrying sequence space already seen is a retransmission, unless it fills a gap and its
  IPv4 ID is older than that of the segment that showed the gap (Linux numbers the packets of a
  connection in order, and sends originals in sequence order): then it is the original, arriving
  late (reordering), and it carries new data at this point;
- a retransmission of the segment at the cumulative ACK, sent at least RTO_MIN after that segment's
  previous transmission and not right after a duplicate ACK or SACK, is the retransmission timer's
  (Linux times the RTO from the head segment's transmission, whatever the sender did meanwhile); one
  of the highest segment otherwise not triggered is a tail loss probe; the others are fast
  retransmissions (after duplicate ACKs or SACK), or follow an RTO (the rest of the flight resent);
- an earlier copy of a retransmitted segment is lost beyond this capture point only if the peer had
  not acknowledged or SACKed it before the resend, and no D-SACK shows the resend was needless;
- a jump in sequence numbers is a segment not seen at this capture point: lost before it if a
  retransmission fills it later, reordered if the late original does (IPv4 ID), and missed by the
  capture if the peer acknowledges it without it ever being seen ("ACKed unseen segment").
"""

import dataclasses

from ..wire.seq import seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt

RTO_MIN = 0.2  # Linux's smallest retransmission timeout
RTO_SLACK = 0.9  # timers never fire early; a capture point's queueing can shorten what it sees a little
TRIGGER = 0.01  # a retransmission this soon after a duplicate ACK or SACK was triggered by it


@dataclasses.dataclass
class Label:
    kind: str = ""  # "new", "retransmission", "out-of-order" (a late original); "" for a bare ACK
    rtx: str = ""  # for retransmissions: "rto", "fast", "tlp", "after-rto"
    flags: set[str] = dataclasses.field(default_factory=set)  # window-full, zero-window-probe, keep-alive,
    # window-update, dup-ack, previous-segment-not-captured, acked-unseen-segment
    lost: bool = False  # this copy did not reach the peer (evidence above), at a capture before the peer
    wait: float | None = None  # for a retransmission: since the previous copy (seen, or due at a hole)


@dataclasses.dataclass
class Hole:
    """Sequence space the sender must have sent that this capture did not show when it was due."""
    start: int
    end: int
    t: float  # when the segment after it was seen
    id_after: int | None = None  # that segment's IPv4 ID: an original of the gap was sent before it
    fate: str = "unknown"  # "lost before this point", "reordered", "not captured (ACKed)", "unknown"


def _sack_blocks(opts: str) -> list[tuple[int, int]]:
    for part in opts.split(","):
        if part.startswith("sack "):
            return [(int(a), int(b)) for a, b in (blk.split(":") for blk in part[5:].split())]
    return []


def _wscale(opts: str) -> int | None:
    for part in opts.split(","):
        if part.startswith("wscale "):
            return int(part[7:])
    return None


def ip_id_in_order(sends: list[dict], me: str) -> bool:
    """Whether `me` numbers its IPv4 packets in order (Linux does, per connection): nine steps in ten
    are small (reordering makes some go back), and more go forward than back."""
    ids = [e["ipid"] for e in sends if e["host"] == me and e.get("ipid") is not None]
    if len(ids) < 4 or len(set(ids)) < 2:
        return False
    steps = [(b - a) & 0xFFFF for a, b in zip(ids, ids[1:], strict=False)]
    forward = sum(1 for s in steps if 0 < s < 1024)
    back = sum(1 for s in steps if s > 0x10000 - 1024)
    return forward + back >= 0.9 * len(steps) - 1 and forward > back


class _Direction:
    def __init__(self, sends: list[dict], me: str):
        self.use_id = ip_id_in_order(sends, me)
        self.labels: dict[int, Label] = {}
        self.holes: list[Hole] = []
        self.dsacked: list[dict] = []  # retransmissions a D-SACK proved needless
        self.dsack_ranges: dict[int, int] = {}  # every D-SACK block, start -> end: that data arrived twice
        self.snd_max: int | None = None  # end of the highest sequence space seen from me
        self.una: int | None = None  # the peer's highest ACK
        self.last_tx: dict[int, tuple[float, dict | None]] = {}  # seq -> (time, event) of its latest copy
        self.sacked: list[tuple[int, int]] = []  # blocks the peer reported (bounded)
        self.resent: list[dict] = []  # retransmissions not yet D-SACKed (bounded by the flight)
        self.candidates: list[tuple[dict, dict]] = []  # (earlier copy, its resend)
        self.loss_point: int | None = None  # snd_max when the last RTO fired
        self.srtt: float | None = None
        self.pending: list[tuple[int, float]] = []  # (end, time) of data sent once, not yet ACKed
        self.rtt: list[tuple[float, float]] = []  # (time, sample)
        self.my_last: dict | None = None  # my previous segment (window updates, keep-alives, dup ACKs)
        self.my_scale = self.peer_scale = 0
        self.peer_last: dict | None = None
        self.peer_nxt: int | None = None
        self.nxt: int | None = None  # end of the highest sequence number seen from me, bare ACKs included
        self.last_dup: float | None = None  # when the peer last sent a duplicate ACK or a SACK
        self.at_receiver = False  # the capture was taken at the peer: what it holds of mine arrived
        self.rtt_full: float | None = None  # the handshake's round trip, whole at any capture point


def analyse(sends: list[dict], me: str, peer: str) -> "_Direction":
    """Label `me`'s segments (see the module's text). `sends`: the connection's send events, in order."""
    d = _Direction(sends, me)
    d.rtt_full = handshake_rtt(sends)
    scales = {}
    for e in sends:
        if "SYN" in e["flags"].split(","):
            scales[e["host"]] = _wscale(e.get("opts", ""))
    if scales.get(me) is not None and scales.get(peer) is not None:  # both offered: both apply (RFC 7323)
        d.my_scale, d.peer_scale = scales[me] or 0, scales[peer] or 0
    for e in sends:
        if e["host"] == me:
            _mine(d, e)
        else:
            _theirs(d, e)
    d.at_receiver = at_receiver(sends, me, peer)
    needless = {id(r) for r in d.dsacked}
    for copy, resend in d.candidates:
        twice = d.dsack_ranges.get(copy["seq"])
        if id(resend) not in needless and not (twice is not None and _within(copy, copy["seq"], twice)):
            if d.at_receiver:  # it arrived: the receiver's TCP threw it away (PAWS, a full buffer...)
                d.labels[id(copy)].flags.add("discarded")
            else:
                d.labels[id(copy)].lost = True
    for h in d.holes:
        if h.fate == "unknown" and d.una is not None and seq_ge(d.una, h.end):
            h.fate = "not captured (ACKed)"
    return d


def _mine(d: _Direction, e: dict) -> None:
    flags = e["flags"].split(",")
    lab = d.labels[id(e)] = Label()
    n = e["len"] + ("SYN" in flags) + ("FIN" in flags)
    end = seq_add(e["seq"], n)
    ipid = e.get("ipid") if d.use_id else None
    peer_win = d.peer_last["win"] << d.peer_scale if d.peer_last is not None else None
    bare = not {"SYN", "FIN", "RST"} & set(flags)
    if bare and e["len"] <= 1 and d.una is not None and peer_win == 0 and e["seq"] in (d.una, seq_add(d.una, -1)):
        lab.flags.add("zero-window-probe")  # Linux probes with one old byte's number and no data
        n = 0
    elif bare and e["len"] <= 1 and d.snd_max is not None and seq_add(e["seq"], 1) == d.snd_max:
        lab.flags.add("keep-alive")
        n = 0
    if n:
        if d.snd_max is not None and seq_le(end, d.snd_max):
            hole = _hole(d, e["seq"], end)
            if hole is not None and ipid is not None and hole.id_after is not None \
                    and 0 < (hole.id_after - ipid) & 0xFFFF < 0x8000:
                lab.kind = "out-of-order"
                _fill(d, hole, e["seq"], end, "reordered")
            else:
                lab.kind = "retransmission"
                if hole is not None and hole.fate == "unknown":
                    _fill(d, hole, e["seq"], end, "lost before this point")
                    if e["seq"] not in d.last_tx:  # its original went just before the segment that
                        d.last_tx[e["seq"]] = (hole.t, None)  # showed the gap (no copy seen here)
                _retransmission(d, e, lab, end)
        else:
            lab.kind = "new"
            if d.snd_max is not None and seq_gt(e["seq"], d.snd_max) and e["len"]:
                lab.flags.add("previous-segment-not-captured")
                d.holes.append(Hole(d.snd_max, e["seq"], e["t"], ipid))
                if len(d.holes) > 4096:
                    d.holes.pop(0)
            if e["len"]:
                d.pending.append((end, e["t"]))
            d.snd_max = end
        d.last_tx[e["seq"]] = (e["t"], e)
        if len(d.last_tx) > 65536:
            d.last_tx.pop(next(iter(d.last_tx)))
        if e["len"] and peer_win and d.una is not None and end == seq_add(d.una, peer_win):
            lab.flags.add("window-full")
    last = d.my_last
    if (last is not None and not lab.flags and e["len"] == 0 and bare and "ACK" in flags
            and e["ack"] == last["ack"] and e["seq"] == d.nxt):
        if e["win"] != last["win"]:
            lab.flags.add("window-update")
        elif e["win"]:
            lab.flags.add("dup-ack")
    if "ACK" in flags and d.peer_nxt is not None and seq_gt(e["ack"], d.peer_nxt):
        lab.flags.add("acked-unseen-segment")
    if d.nxt is None or seq_gt(end, d.nxt):
        d.nxt = end
    d.my_last = e


def _hole(d: _Direction, start: int, end: int) -> Hole | None:
    """The gap (or a part of one already filled) that [start, end) falls in, unknown parts first."""
    found = None
    for h in d.holes:
        if seq_lt(start, h.end) and seq_gt(end, h.start):
            if h.fate == "unknown":
                return h
            found = found or h
    return found


def _fill(d: _Direction, h: Hole, start: int, end: int, fate: str) -> None:
    """Mark [start, end) of gap h with its fate, splitting off what stays unknown."""
    a = start if seq_gt(start, h.start) else h.start
    b = end if seq_lt(end, h.end) else h.end
    if h.fate != "unknown" or (a == h.start and b == h.end):
        h.fate = fate  # a late original shows that the resend which filled it first was needless
        return
    i = d.holes.index(h)
    parts = [Hole(h.start, a, h.t, h.id_after)] if a != h.start else []
    parts.append(Hole(a, b, h.t, h.id_after, fate))
    if b != h.end:
        parts.append(Hole(b, h.end, h.t, h.id_after))
    d.holes[i:i + 1] = parts


def _retransmission(d: _Direction, e: dict, lab: Label, end: int) -> None:
    seq = e["seq"]
    d.pending = [p for p in d.pending if not seq_gt(p[0], seq)]  # Karn: no samples from these
    prev = d.last_tx.get(seq)
    gap = lab.wait = e["t"] - prev[0] if prev else None
    head = d.una is not None and seq_le(seq, d.una) and seq_gt(end, d.una)
    # triggered: a duplicate ACK or SACK came after the previous copy, within about a round trip
    rtt = max(d.rtt_full or 0.0, d.srtt or 0.0)
    triggered = (d.last_dup is not None and (prev is None or d.last_dup > prev[0])
                 and e["t"] - d.last_dup <= max(TRIGGER, 1.5 * rtt))
    floor = RTO_MIN * RTO_SLACK
    if head and gap is not None and gap >= floor and not triggered:
        lab.rtx = "rto"
        d.loss_point = d.snd_max
    elif d.loss_point is not None and d.una is not None and seq_lt(d.una, d.loss_point):
        lab.rtx = "after-rto"
    elif not triggered and end == d.snd_max:
        lab.rtx = "tlp"
    else:
        lab.rtx = "fast"
    if prev is not None and prev[1] is not None:
        covered = d.una is not None and seq_le(end, d.una) or any(
            seq_le(a, seq) and seq_le(end, b) for a, b in d.sacked)
        if not covered:
            d.candidates.append((prev[1], e))
    d.resent.append(e)
    if len(d.resent) > 4096:
        d.resent.pop(0)


def _theirs(d: _Direction, e: dict) -> None:
    flags = e["flags"].split(",")
    if "ACK" in flags:
        ack = e["ack"]
        while d.pending and seq_le(d.pending[0][0], ack):
            sample = e["t"] - d.pending.pop(0)[1]
            d.rtt.append((e["t"], sample))
            d.srtt = sample if d.srtt is None else 0.875 * d.srtt + 0.125 * sample
        if d.una is None or seq_gt(ack, d.una):
            d.una = ack
        blocks = _sack_blocks(e.get("opts", ""))
        if blocks:
            a, b = blocks[0]
            dsack = seq_le(b, ack) or (len(blocks) > 1 and seq_ge(a, blocks[1][0]) and seq_le(b, blocks[1][1]))
            if dsack:
                d.dsack_ranges[a] = b
                if len(d.dsack_ranges) > 65536:
                    d.dsack_ranges.pop(next(iter(d.dsack_ranges)))
                hit = [r for r in d.resent if _within(r, a, b)]
                if hit:  # the duplicate that arrived last: the latest copy sent
                    d.dsacked.append(hit[-1])
                    d.resent.remove(hit[-1])
                blocks = blocks[1:]
            d.sacked = [blk for blk in d.sacked + blocks if seq_gt(blk[1], ack)][-64:]
    end = seq_add(e["seq"], e["len"] + ("SYN" in flags) + ("FIN" in flags))
    if d.peer_nxt is None or seq_gt(end, d.peer_nxt):
        d.peer_nxt = end
    if "ACK" in flags and e["len"] == 0 and (_sack_blocks(e.get("opts", "")) or
                                             d.peer_last is not None and e["ack"] == d.peer_last["ack"]):
        d.last_dup = e["t"]
    d.peer_last = e


_INITIAL_TTL = (64, 128, 255)


def at_receiver(sends: list[dict], me: str, peer: str) -> bool:
    """Whether this capture was taken where `me`'s segments arrive (so each one it holds arrived): the
    peer's packets carry an initial TTL (64, 128, 255: not routed yet) and mine a smaller one; or,
    failing that, in the handshake the peer answered at least four times faster than `me` did."""
    mine = {e["ttl"] for e in sends if e["host"] == me and "ttl" in e}
    theirs = {e["ttl"] for e in sends if e["host"] == peer and "ttl" in e}
    if mine and theirs and mine.isdisjoint(_INITIAL_TTL) != theirs.isdisjoint(_INITIAL_TTL):
        return theirs <= set(_INITIAL_TTL)
    syn = next((e for e in sends if e["flags"] == "SYN"), None)
    if syn is None:
        return False
    synack = next((e for e in sends if e["host"] != syn["host"] and e["flags"] == "SYN,ACK"), None)
    if synack is None:
        return False
    ack = next((e for e in sends if e["host"] == syn["host"] and e["t"] >= synack["t"] and "SYN" not in e["flags"]),
               None)
    if ack is None:
        return False
    server, client = synack["t"] - syn["t"], ack["t"] - synack["t"]
    mine_t, theirs_t = (client, server) if syn["host"] == me else (server, client)
    return theirs_t * 4 < mine_t


def handshake_rtt(sends: list[dict]) -> float | None:
    """SYN to the ACK that completes the handshake, at this capture point (Wireshark's initial RTT):
    a whole round trip wherever the capture was taken."""
    syn = next((e for e in sends if e["flags"] == "SYN"), None)
    if syn is None:
        return None
    synack = next((e for e in sends if e["host"] != syn["host"] and "SYN" in e["flags"] and "ACK" in e["flags"]
                   and e["t"] >= syn["t"]), None)
    if synack is None:
        return None
    ack = next((e for e in sends if e["host"] == syn["host"] and "SYN" not in e["flags"] and e["t"] >= synack["t"]
                and "ACK" in e["flags"] and e["ack"] == seq_add(synack["seq"], 1)), None)
    return None if ack is None else ack["t"] - syn["t"]


def _within(r: dict, a: int, b: int) -> bool:
    end = seq_add(r["seq"], r["len"])
    return seq_le(a, r["seq"]) and seq_le(end, b) or seq_le(r["seq"], a) and seq_le(b, end)


def data_span(d: _Direction, sends: list[dict], me: str) -> int:
    """Bytes of data sequence space `me` sent, from its first data to its highest (holes included)."""
    first = next((e for e in sends if e["host"] == me and e["len"]), None)
    if first is None or d.snd_max is None:
        return 0
    syn = next((e for e in sends if e["host"] == me and "SYN" in e["flags"]), None)
    start = seq_add(syn["seq"], 1) if syn is not None else first["seq"]  # the first data may be unseen here
    fin = any("FIN" in e["flags"] and e["host"] == me for e in sends)
    return max(0, seq_diff(d.snd_max, start) - fin)
