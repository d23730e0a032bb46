"""The receive buffer: in-order bytes for the user, plus out-of-order reassembly.

Out-of-order data is kept as disjoint, non-adjacent ranges [start, end) of an unwrapped 64-bit offset
(no modular comparisons inside), in three parallel sorted lists; a new piece is merged with the
ranges it overlaps or touches, so finding its place, testing for a duplicate or draining is a binary
search, whatever the number of ranges. A byte is stored at most once and delivered at most once.

The out-of-order queue is charged its bytes plus OVERHEAD per range against `capacity`; over that,
the highest ranges are dropped first (after Linux's tcp_prune_ofo_queue): a peer that sends one-byte
pieces at alternate offsets cannot make the queue cost more memory than the window it was offered,
or more CPU per segment than a binary search and a bounded copy. (Dropped data is data we had only
SACKed: RFC 2018 §8 allows it, and the sender resends it.)
"""

import bisect
from typing import Final

OVERHEAD: Final = 64  # bytes charged per out-of-order range for its bookkeeping


class ReceiveBuffer:
    __slots__ = (
        "capacity", "_ready", "next_offset", "_starts", "_ends", "_data", "ooo_bytes", "pruned",
        "fin_offset"
    )

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._ready = bytearray()  # in order, not yet read by the user
        self.next_offset = 0  # unwrapped offset of RCV.NXT
        self._starts: list[int] = []  # out-of-order ranges: sorted, disjoint, never adjacent
        self._ends: list[int] = []
        self._data: list[bytearray] = []
        self.ooo_bytes = 0
        self.pruned = 0  # bytes dropped from the out-of-order queue to stay within capacity
        self.fin_offset: int | None = None  # where the peer's FIN sits, once seen

    @property
    def readable(self) -> int:
        return len(self._ready)

    @property
    def has_gaps(self) -> bool:
        """Is any data held out of order? (cheap: no list is built)"""
        return bool(self._starts)

    @property
    def charged(self) -> int:
        """What the out-of-order queue costs against the capacity."""
        return self.ooo_bytes + OVERHEAD * len(self._starts)

    @property
    def held(self) -> int:
        """What it holds against the stack's memory budget: unread bytes and the out-of-order charge."""
        return len(self._ready) + self.ooo_bytes + OVERHEAD * len(self._starts)

    def prune(self) -> int:
        """Drop the whole out-of-order queue (under memory pressure); return the bytes dropped."""
        n = self.ooo_bytes
        self._starts.clear()
        self._ends.clear()
        self._data.clear()
        self.ooo_bytes = 0
        self.pruned += n
        return n

    def ranges(self) -> list[tuple[int, int]]:
        """Out-of-order ranges as (start, end) offsets, ascending."""
        return list(zip(self._starts, self._ends, strict=True))

    def last_ranges(self, k: int) -> list[tuple[int, int]]:
        """The k highest out-of-order ranges, highest first."""
        n = len(self._starts)
        return [(self._starts[i], self._ends[i]) for i in range(n - 1, max(-1, n - 1 - k), -1)]

    def range_at(self, offset: int) -> tuple[int, int] | None:
        """The out-of-order range holding `offset`, if any."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0 and offset < self._ends[i]:
            return self._starts[i], self._ends[i]
        return None

    def holds(self, start: int, end: int) -> bool:
        """Is [start, end) already here: delivered in order, or held out of order?"""
        if end <= self.next_offset:
            return True
        start = max(start, self.next_offset)
        i = bisect.bisect_right(self._starts, start) - 1
        return i >= 0 and end <= self._ends[i]

    def read(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Up to max_bytes of the in-order bytes. Everything that is ready is handed over as it is, a
        bytearray the caller now owns, without a copy (the hot path of bulk receiving)."""
        ready = self._ready
        if max_bytes is None or max_bytes >= len(ready):
            self._ready = bytearray()
            return ready
        out = bytes(memoryview(ready)[:max_bytes])
        del ready[:max_bytes]
        return out

    def insert(self, offset: int, data) -> int:
        """Store data that starts at `offset`; return how many bytes became in-order."""
        end = offset + len(data)
        if end <= self.next_offset or not data:
            return 0
        if offset < self.next_offset:
            data = memoryview(data)[self.next_offset - offset :]
            offset = self.next_offset
        if offset == self.next_offset and not self._starts:
            self._ready += data
            self.next_offset = end
            return len(data)
        self._store(offset, data)
        moved = self._drain()
        if self.charged > self.capacity:
            self._prune()
        return moved

    def _store(self, offset: int, data) -> None:
        """Merge [offset, end) with the ranges it overlaps or touches; bytes already held are kept."""
        view = memoryview(data)
        end = offset + len(view)
        starts, ends, pieces = self._starts, self._ends, self._data
        i = bisect.bisect_left(ends, offset)  # first range ending at or after offset (may touch it)
        j = bisect.bisect_right(starts, end)  # ranges before j start at or before end
        if i == j:  # touches nothing: a new range
            starts.insert(i, offset)
            ends.insert(i, end)
            pieces.insert(i, bytearray(view))
            self.ooo_bytes += len(view)
            return
        new_start, new_end = min(offset, starts[i]), max(end, ends[j - 1])
        if starts[i] <= offset:  # grow the first range in place (appending is amortized O(1))
            merged = pieces[i]
            pos = ends[i]
        else:
            merged = bytearray(view[: starts[i] - offset])
            merged += pieces[i]
            pos = ends[i]
        added = len(merged) - len(pieces[i])
        for k in range(i + 1, j):  # fill the gap before each further range, then take the range
            gap = view[pos - offset : starts[k] - offset]
            merged += gap
            merged += pieces[k]
            added += len(gap)
            pos = ends[k]
        if pos < end:
            merged += view[pos - offset :]
            added += end - pos
        starts[i:j], ends[i:j], pieces[i:j] = [new_start], [new_end], [merged]
        self.ooo_bytes += added

    def _drain(self) -> int:
        starts = self._starts
        if not starts or starts[0] > self.next_offset:
            return 0
        piece, start = self._data[0], starts[0]
        del starts[0], self._ends[0], self._data[0]  # ranges never touch: only the first can join
        self.ooo_bytes -= len(piece)
        tail = start + len(piece) - self.next_offset
        if tail <= 0:
            return 0
        self._ready += memoryview(piece)[len(piece) - tail :]
        self.next_offset += tail
        return tail

    def _prune(self) -> None:
        """Drop the highest out-of-order ranges until the queue is within capacity again."""
        while self._starts and self.charged > self.capacity:
            piece = self._data.pop()
            self._starts.pop()
            self._ends.pop()
            self.ooo_bytes -= len(piece)
            self.pruned += len(piece)
