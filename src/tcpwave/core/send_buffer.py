"""The send buffer: bytes accepted from the user and not yet acknowledged.

Byte 0 of the buffer has sequence number `start_seq`; bytes up to SND.NXT have
been sent at least once, the rest are waiting. Acknowledged bytes are cut from
the front (a bytearray front-delete is amortized O(1) in CPython).
"""

from ..wire.seq import seq_add, seq_diff


class SendBuffer:
    __slots__ = (
        "capacity", "start_seq", "_buf"
    )

    def __init__(self, capacity: int, start_seq: int):
        self.capacity = capacity
        self.start_seq = start_seq
        self._buf = bytearray()

    def __len__(self) -> int:
        return len(self._buf)

    @property
    def space(self) -> int:
        return max(0, self.capacity - len(self._buf))

    @property
    def end_seq(self) -> int:
        return seq_add(self.start_seq, len(self._buf))

    def append(self, data) -> int:
        """Accept as much of data as fits; return how many bytes were taken."""
        n = min(len(data), self.space)
        if n:
            self._buf += memoryview(data)[:n]
        return n

    def copy(self, seq: int, n: int) -> bytes:
        """Up to n bytes from sequence number seq (inside the buffer), as bytes the caller owns:
        a segment may outlive the buffer's current layout."""
        off = seq_diff(seq, self.start_seq)
        with memoryview(self._buf) as view:  # one copy, and no export left behind
            return bytes(view[off : off + n])

    def bytes_from(self, seq: int) -> int:
        """How many buffered bytes lie at or after seq."""
        return max(0, len(self._buf) - seq_diff(seq, self.start_seq))

    def discard(self) -> None:
        """Drop everything (the connection is CLOSED: nothing more will be sent or resent)."""
        self._buf = bytearray()

    def acknowledge(self, ack: int) -> int:
        """Drop bytes below ack; return how many were dropped."""
        n = min(max(0, seq_diff(ack, self.start_seq)), len(self._buf))
        if n:
            del self._buf[:n]
            self.start_seq = seq_add(self.start_seq, n)
        return n
