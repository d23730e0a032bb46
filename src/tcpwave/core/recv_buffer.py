"""The receive buffer: in-order bytes for the user, plus out-of-order reassembly.

Out-of-order pieces are kept as non-overlapping [start, end) ranges in offsets
relative to an unwrapped 64-bit counter, so no modular comparison is needed
inside the buffer. Overlaps and duplicates are trimmed on insert: a byte is
stored at most once and delivered at most once.
"""

import bisect


class ReceiveBuffer:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._ready = bytearray()  # in order, not yet read by the user
        self.next_offset = 0  # unwrapped offset of RCV.NXT
        self._starts: list[int] = []  # out-of-order ranges, sorted by start
        self._pieces: dict[int, bytes] = {}
        self.fin_offset: int | None = None  # where the peer's FIN sits, once seen

    @property
    def readable(self) -> int:
        return len(self._ready)

    @property
    def has_gaps(self) -> bool:
        """Is any data held out of order? (cheap: no list is built)"""
        return bool(self._starts)

    def ranges(self) -> list[tuple[int, int]]:
        """Out-of-order ranges as (start, end) offsets, ascending, adjacent ones merged."""
        merged: list[tuple[int, int]] = []
        for s in self._starts:
            e = s + len(self._pieces[s])
            if merged and merged[-1][1] == s:
                merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        return merged

    def holds(self, start: int, end: int) -> bool:
        """Is [start, end) already here: delivered in order, or held out of order?"""
        if end <= self.next_offset:
            return True
        return any(s <= max(start, self.next_offset) and end <= e for s, e in self.ranges())

    def read(self, max_bytes: int | None = None) -> bytes:
        n = len(self._ready) if max_bytes is None else min(max_bytes, len(self._ready))
        out = bytes(self._ready[:n])
        del self._ready[:n]
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
        return self._drain()

    def _store(self, offset: int, data) -> None:
        """Keep only the parts of [offset, end) that no stored piece holds yet."""
        view = memoryview(data)
        end = offset + len(view)
        starts, pieces = self._starts, self._pieces
        pos = offset
        gaps = []
        for s in starts[max(0, bisect.bisect_right(starts, offset) - 1) :]:
            if s >= end:
                break
            e = s + len(pieces[s])
            if e <= pos:
                continue
            if s > pos:
                gaps.append((pos, s))
            pos = e
        if pos < end:
            gaps.append((pos, end))
        for a, b in gaps:
            bisect.insort(starts, a)
            pieces[a] = bytes(view[a - offset : b - offset])

    def _drain(self) -> int:
        moved = 0
        starts, pieces = self._starts, self._pieces
        while starts and starts[0] <= self.next_offset:
            s = starts.pop(0)
            piece = pieces.pop(s)
            tail = s + len(piece) - self.next_offset
            if tail > 0:
                self._ready += piece[len(piece) - tail :]
                self.next_offset += tail
                moved += tail
        return moved
