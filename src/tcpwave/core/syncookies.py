"""SYN cookies (RFC 4987 §3.6): answer a SYN without keeping state, and rebuild the connection from
the ACK that completes the handshake.

The SYN,ACK's sequence number carries what the listener must remember:

    bits 31-27  a 64-second counter (mod 32): the cookie is good for the counter and the one before
    bits 26-24  the MSS, as an index into MSS_TABLE (the largest entry not above the peer's MSS)
    bits 23-0   a keyed hash (BLAKE2s, the stack's secret) of the counter, the 4-tuple and the
                peer's ISN, so a cookie cannot be forged or replayed for another connection

With timestamps, the low 6 bits of our TSval carry the options a SYN cannot otherwise leave behind
(after Linux's cookie_init_timestamp): the peer's window scale (4 bits, 0xF for none) and
SACK-permitted (1 bit). The peer echoes the TSval in every TSecr, so they come back with the ACK.
Without timestamps the connection runs without window scaling and SACK.
"""

import bisect
import hashlib
import struct
from typing import Final

MSS_TABLE: Final = (536, 1300, 1440, 1460, 4312, 8960)
PERIOD: Final = 64.0  # seconds per counter step
LIFETIME: Final = 2 * PERIOD  # the longest a cookie stays good (its counter and the next)
_NO_WSCALE: Final = 0xF
_OPT_BITS: Final = 0x3F
_V4: Final = struct.Struct("!QIHIHI")  # counter, local address and port, remote address and port, peer's ISN
_PORTS_ISN: Final = struct.Struct("!HHI")
# secret -> a keyed BLAKE2s state, copied per cookie (a flood's hot path)
_KEYED: Final[dict[bytes, "hashlib.blake2s"]] = {}


def _hash(secret: bytes, count: int, local, remote, peer_isn: int) -> int:
    keyed = _KEYED.get(secret)
    if keyed is None:
        if len(_KEYED) >= 64:
            _KEYED.clear()
        keyed = _KEYED[secret] = hashlib.blake2s(key=secret, digest_size=3)
    h = keyed.copy()
    la, ra = local[0], remote[0]
    if la.version == 4:
        h.update(_V4.pack(count, la._ip, local[1], ra._ip, remote[1], peer_isn))  # (_ip: int() is a Python call)
    else:
        h.update(count.to_bytes(8, "big") + la.packed + ra.packed + _PORTS_ISN.pack(local[1], remote[1], peer_isn))
    return int.from_bytes(h.digest(), "big")


def mss_index(mss: int) -> int:
    """The largest entry of MSS_TABLE not above mss (the first for less than all)."""
    return max(0, bisect.bisect_right(MSS_TABLE, mss) - 1)


def make(secret: bytes, now: float, local, remote, peer_isn: int, mss: int) -> int:
    """The ISN of a cookie SYN,ACK for this SYN."""
    count = int(now // PERIOD)
    idx = mss_index(mss)
    return ((count & 0x1F) << 27) | (idx << 24) | _hash(secret, count, local, remote, peer_isn)


def check(secret: bytes, now: float, local, remote, peer_isn: int, cookie: int) -> int | None:
    """The MSS the cookie encodes if it is ours, for this connection, and fresh; else None."""
    count = int(now // PERIOD)
    age = (count - (cookie >> 27)) & 0x1F
    if age > 1 or age > count:  # (no period before the stack's first)
        return None
    idx = (cookie >> 24) & 0x7
    if idx >= len(MSS_TABLE) or _hash(secret, count - age, local, remote, peer_isn) != cookie & 0xFFFFFF:
        return None
    return MSS_TABLE[idx]


def options_tsval(tsval: int, wscale: int | None, sack: bool) -> int:
    """Our TSval with the peer's window scale and SACK-permitted in its low 6 bits."""
    bits = (_NO_WSCALE if wscale is None else min(wscale, 14)) | (0x10 if sack else 0)
    value = ((tsval & ~_OPT_BITS) | bits) & 0xFFFFFFFF
    if value != tsval and (value - tsval) & 0xFFFFFFFF < 1 << 31:
        # never ahead of the clock: the connection's later TSvals must not go backwards (PAWS)
        value = (value - (_OPT_BITS + 1)) & 0xFFFFFFFF
    return value


def options_from_tsecr(tsecr: int) -> tuple[int | None, bool]:
    """(peer's window scale or None, SACK-permitted) from the TSecr that echoes a cookie TSval."""
    ws = tsecr & 0xF
    return (None if ws == _NO_WSCALE else ws), bool(tsecr & 0x10)
