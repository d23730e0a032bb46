"""Initial sequence numbers per RFC 9293 §3.4.1 and RFC 6528: ISN = M + F(4-tuple, secret).

M is a 4-microsecond clock taken from the injected `now`; F is a keyed BLAKE2s of the connection
identifiers, whose other half is the connection's timestamp offset. The key comes from the stack's
seeded RNG, so a seeded run is reproducible while ISNs stay unguessable to anyone without the seed.
"""

import hashlib
from typing import Protocol

from ..wire.seq import MASK


class IsnSource(Protocol):
    """What a Connection draws its ISN and timestamp offset from: an IsnGenerator, or a stand-in
    (tests fix the ISN to cross the 2**32 wrap)."""

    def start(self, now: float, local_addr, local_port: int, remote_addr, remote_port: int) -> tuple[int, int]: ...


class IsnGenerator:
    """`ticking=False`: a clock that does not tick, so the same 4-tuple always starts at the same number
    (what RFC 9293's clock-driven ISNs exist to prevent; a what-if demo shows why)."""

    def __init__(self, secret: bytes, ticking: bool = True):
        self._secret = secret[:32]
        self._keyed = hashlib.blake2s(key=self._secret, digest_size=8)  # copied per connection: keyed once
        self.ticking = ticking

    def clock(self, now: float) -> int:
        """M: one tick every 4 microseconds."""
        return int(now * 250_000) if self.ticking else 0

    def start(self, now: float, local_addr, local_port: int, remote_addr, remote_port: int) -> tuple[int, int]:
        """(ISN, timestamp offset) of a new connection, from one keyed hash of its 4-tuple: the offset
        (RFC 7323 §5.4) is as unguessable as the ISN, without a draw from the OS per connection."""
        key = b"%b%b%d|%d" % (local_addr.packed, remote_addr.packed, local_port, remote_port)
        h = self._keyed.copy()
        h.update(key)
        f = int.from_bytes(h.digest(), "big")
        return (self.clock(now) + (f >> 32)) & MASK, f & MASK

    def iss(self, now: float, local_addr, local_port: int, remote_addr, remote_port: int) -> int:
        return self.start(now, local_addr, local_port, remote_addr, remote_port)[0]
