"""The retransmission queue: one record per segment sent and not yet cumulatively acknowledged.

Positions are unwrapped byte offsets (a counter that never wraps; `una` is SND.UNA's), so no modular
arithmetic is needed inside. Each record knows when it was last sent and whether it is SACKed,
deemed lost, or retransmitted; the queue keeps the byte counts Linux keeps (sacked_out, lost_out,
retrans_out) up to date as records change, so that the bytes in flight, RFC 6675's "pipe", is O(1):

    in_flight = (SND.NXT - SND.UNA) - sacked - lost + retrans_out

A SACK block or a cumulative ACK that covers part of a record splits it (after Linux's skb splitting), so a
record is always wholly SACKed or not.
"""

import bisect

from ..wire.seq import seq_diff


class Record:
    __slots__ = ("start", "end", "xmit", "fin", "sacked", "lost", "retrans", "ever_retrans")

    def __init__(self, start: int, end: int, xmit: float, fin: bool) -> None:
        self.start = start
        self.end = end  # exclusive; a FIN occupies the last position
        self.xmit = xmit  # when it was last sent
        self.fin = fin
        self.sacked = False
        self.lost = False  # deemed lost and not (since) retransmitted... or retransmitted: see retrans
        self.retrans = False  # a retransmission is in flight (counted in retrans_out)
        self.ever_retrans = False  # sent more than once (RTT samples from it are ambiguous)

    def __len__(self) -> int:
        return self.end - self.start

    def __repr__(self) -> str:
        marks = "".join(m for m, on in (("S", self.sacked), ("L", self.lost), ("R", self.retrans)) if on)
        return f"<Record {self.start}-{self.end} {marks or '-'} @{self.xmit:.6f}>"


def _start(r: Record) -> int:
    return r.start


class RetransmitQueue:
    __slots__ = ("_recs", "_head", "una", "nxt", "sacked", "lost", "retrans_out", "highest_sacked", "acked_sent")

    def __init__(self) -> None:
        self._recs: list[Record] = []
        self._head = 0  # records before this index are gone (compacted from time to time)
        self.una = 0  # unwrapped SND.UNA
        self.nxt = 0  # unwrapped SND.NXT
        self.sacked = 0
        self.lost = 0
        self.retrans_out = 0
        self.highest_sacked = 0  # end of the highest SACKed byte (RACK.fack), unwrapped
        self.acked_sent: tuple[float, float] | None = None  # see acknowledge()

    # ---------------------------------------------------------------- views
    def __len__(self) -> int:
        return len(self._recs) - self._head

    def __iter__(self):
        recs = self._recs
        for i in range(self._head, len(recs)):
            yield recs[i]

    @property
    def flight(self) -> int:
        return self.nxt - self.una

    @property
    def in_flight(self) -> int:
        """RFC 6675 pipe / Linux tcp_packets_in_flight, in bytes."""
        return self.nxt - self.una - self.sacked - self.lost + self.retrans_out

    def head(self) -> Record | None:
        return self._recs[self._head] if self._head < len(self._recs) else None

    def last(self) -> Record | None:
        return self._recs[-1] if self._head < len(self._recs) else None

    def unwrap(self, seq: int, snd_una: int) -> int:
        """The unwrapped position of sequence number `seq`, given SND.UNA's wrapped value."""
        return self.una + seq_diff(seq, snd_una)

    # ------------------------------------------------------------- changes
    def reset(self, position: int) -> None:
        self._recs.clear()
        self._head = 0
        self.una = self.nxt = self.highest_sacked = position
        self.sacked = self.lost = self.retrans_out = 0

    def sent(self, n: int, fin: bool, now: float) -> Record:
        """New data (and/or the FIN) went out at SND.NXT."""
        rec = Record(self.nxt, self.nxt + n + fin, now, fin)
        self._recs.append(rec)
        self.nxt = rec.end
        return rec

    def retransmitted(self, rec: Record, now: float) -> None:
        rec.xmit = now
        rec.ever_retrans = True
        if not rec.retrans:
            rec.retrans = True
            self.retrans_out += len(rec)

    def probed(self, rec: Record, now: float) -> None:
        """A tail loss probe resent `rec`, which is not deemed lost: the copy is not counted in
        retrans_out, or the pipe would count the one segment twice (Linux sends the probe with
        __tcp_retransmit_skb, which leaves retrans_out alone)."""
        rec.xmit = now
        rec.ever_retrans = True

    def mark_lost(self, rec: Record) -> None:
        """Deem `rec` lost; a retransmission of it in flight is lost too."""
        n = len(rec)
        if rec.retrans:
            rec.retrans = False
            self.retrans_out -= n
        if not rec.lost:
            rec.lost = True
            self.lost += n

    def split(self, rec: Record, at: int) -> Record:
        """Cut `rec` at position `at` (start < at < end); return the upper part, now in the queue."""
        upper = Record(at, rec.end, rec.xmit, rec.fin)
        upper.sacked, upper.lost = rec.sacked, rec.lost
        upper.retrans, upper.ever_retrans = rec.retrans, rec.ever_retrans
        rec.end, rec.fin = at, False
        i = self._index(rec.start)
        self._recs.insert(i + 1, upper)
        return upper

    def acknowledge(self, ack: int) -> list[Record]:
        """The cumulative ACK moved to unwrapped `ack`: drop what it covers, return the records newly
        delivered (not SACKed before), whole or in part. `acked_sent` is then when the oldest and the
        newest of those were sent, or None if there are none or any record it covers was sent twice
        (Karn: which transmission the ACK answers is unknown)."""
        delivered: list[Record] = []
        recs, i = self._recs, self._head
        resent = False
        while i < len(recs) and recs[i].start < ack:
            rec = recs[i]
            if rec.end > ack:
                self.split(rec, ack)
            n = len(rec)
            resent = resent or rec.ever_retrans
            if rec.sacked:
                self.sacked -= n
            else:
                delivered.append(rec)
                if rec.lost:
                    self.lost -= n
                if rec.retrans:
                    self.retrans_out -= n
            i += 1
        self._head = i
        self.acked_sent = None if resent or not delivered else (delivered[0].xmit, delivered[-1].xmit)
        self.una = max(self.una, ack)
        if self.highest_sacked < self.una:
            self.highest_sacked = self.una
        if i > 64 and i * 2 > len(recs):
            del recs[:i]
            self._head = 0
        return delivered

    def sack(self, lo: int, hi: int) -> list[Record]:
        """The peer holds [lo, hi): mark the records inside it SACKed; return the newly SACKed ones."""
        lo, hi = max(lo, self.una), min(hi, self.nxt)
        if hi <= lo:
            return []
        recs = self._recs
        i = max(self._head, self._index(lo))
        newly: list[Record] = []
        while i < len(recs) and recs[i].start < hi:
            rec = recs[i]
            if rec.sacked or rec.end <= lo:
                i += 1
                continue
            if rec.start < lo:
                i += 1
                self.split(rec, lo)
                continue
            if rec.end > hi:
                self.split(rec, hi)
            n = len(rec)
            rec.sacked = True
            self.sacked += n
            if rec.lost:
                rec.lost = False
                self.lost -= n
            if rec.retrans:
                rec.retrans = False
                self.retrans_out -= n
            newly.append(rec)
            i += 1
        if newly and newly[-1].end > self.highest_sacked:
            self.highest_sacked = newly[-1].end
        return newly

    def is_sacked(self, lo: int, hi: int) -> bool:
        """Is all of [lo, hi) SACKed (or below SND.UNA)? (a D-SACK test)"""
        if hi <= self.una:
            return True
        recs = self._recs
        i = max(self._head, self._index(max(lo, self.una)))
        pos = max(lo, self.una)
        while i < len(recs) and pos < hi:
            rec = recs[i]
            if rec.start > pos or not rec.sacked:
                return False
            pos = rec.end
            i += 1
        return pos >= hi

    def next_lost(self) -> Record | None:
        """The lowest record deemed lost whose retransmission is not in flight (RFC 6675 NextSeg (1))."""
        if not self.lost:
            return None
        for rec in self:
            if rec.lost and not rec.retrans and not rec.sacked:
                return rec
        return None

    def unsack_all(self) -> None:
        """Clear every SACK mark (the receiver reneged)."""
        for rec in self:
            if rec.sacked:
                rec.sacked = False
        self.sacked = 0
        self.highest_sacked = self.una

    def _index(self, pos: int) -> int:
        """Index of the record holding `pos` (or of the one before it)."""
        recs = self._recs
        i = bisect.bisect_right(recs, pos, lo=self._head, key=_start) - 1
        return max(i, self._head)
