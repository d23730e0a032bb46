"""The sender's SACK scoreboard (RFC 2018) and the RFC 6675 quantities built on it.

Ranges are kept as byte offsets from SND.UNA (so no modular arithmetic inside), sorted, merged and
non-overlapping; `advance()` rebases them when the cumulative ACK moves. SACKed data stays in the
send buffer until it is cumulatively acknowledged: a receiver may renege (RFC 2018 §8).
"""

import bisect

from ..seq import seq_diff

DUP_THRESH = 3


class Scoreboard:
    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __bool__(self) -> bool:
        return bool(self._starts)

    def clear(self) -> None:
        self._starts.clear()
        self._ends.clear()

    def sacked_bytes(self) -> int:
        return sum(self._ends) - sum(self._starts)

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    def update(self, blocks, snd_una: int, snd_nxt: int) -> int:
        """Add the peer's SACK blocks; return how many bytes were newly SACKed. Blocks below SND.UNA
        (D-SACK, RFC 2883) or beyond SND.NXT are ignored."""
        flight = seq_diff(snd_nxt, snd_una)
        added = 0
        for left, right in blocks:
            lo, hi = seq_diff(left, snd_una), seq_diff(right, snd_una)
            if lo < 0 or hi <= lo or hi > flight:
                continue  # a D-SACK below the cumulative ACK, or nonsense: not for the scoreboard
            added += self._add(lo, hi)
        return added

    def _add(self, lo: int, hi: int) -> int:
        starts, ends = self._starts, self._ends
        i = bisect.bisect_left(ends, lo)  # first range that ends at or after lo
        j = i
        covered = 0
        new_lo, new_hi = lo, hi
        while j < len(starts) and starts[j] <= hi:
            covered += min(ends[j], hi) - max(starts[j], lo) if ends[j] > lo and starts[j] < hi else 0
            new_lo, new_hi = min(new_lo, starts[j]), max(new_hi, ends[j])
            j += 1
        starts[i:j] = [new_lo]
        ends[i:j] = [new_hi]
        return (hi - lo) - covered

    def advance(self, acked: int) -> None:
        """SND.UNA moved forward by `acked` bytes: rebase, dropping what is now cumulatively ACKed."""
        starts, ends = self._starts, self._ends
        keep = [(max(s - acked, 0), e - acked) for s, e in zip(starts, ends, strict=True) if e - acked > 0]
        self._starts = [s for s, _ in keep]
        self._ends = [e for _, e in keep]

    def lost_below(self, mss: int) -> int:
        """The offset L such that every un-SACKed byte below it counts as lost (RFC 6675 IsLost):
        more than (DupThresh - 1) * MSS bytes, or DupThresh separate ranges, are SACKed above it."""
        limit = (DUP_THRESH - 1) * mss
        total = 0
        count = 0
        for s, e in zip(reversed(self._starts), reversed(self._ends), strict=True):
            count += 1
            if total + (e - s) > limit:
                return e - (limit - total)  # the point with exactly `limit` SACKed bytes above it
            total += e - s
            if count >= DUP_THRESH:
                return s
        return 0

    def holes(self, flight: int):
        """Un-SACKed byte ranges [a, b) in [0, flight)."""
        pos = 0
        for s, e in zip(self._starts, self._ends, strict=True):
            if s > pos:
                yield pos, min(s, flight)
            pos = max(pos, e)
            if pos >= flight:
                return
        if pos < flight:
            yield pos, flight

    def pipe(self, flight: int, lost_edge: int, high_rxt: int) -> int:
        """RFC 6675 SetPipe: un-SACKed bytes not deemed lost (at or above `lost_edge`), plus lost
        ones already retransmitted (below `high_rxt`)."""
        total = 0
        for a, b in self.holes(flight):
            lost_end = min(b, max(a, lost_edge))
            total += b - lost_end  # not (yet) lost: presumed in flight
            total += max(0, min(lost_end, high_rxt) - a)  # lost but retransmitted
        return total

    def next_lost(self, flight: int, lost_edge: int, high_rxt: int, mss: int) -> tuple[int, int] | None:
        """RFC 6675 NextSeg (1): the first lost, un-SACKed, not yet retransmitted bytes, up to an MSS."""
        for a, b in self.holes(flight):
            a = max(a, high_rxt)
            b = min(b, lost_edge)
            if a < b:
                return a, min(b, a + mss)
            if a >= lost_edge:
                return None
        return None
