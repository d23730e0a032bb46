"""The Internet checksum (RFC 1071), computed with big-integer arithmetic.

Reading the whole buffer as one big integer and reducing it modulo 0xFFFF is the
fastest pure Python way: no per-byte or per-word loop runs in the interpreter.
"""

import ipaddress
from typing import Final

_CHUNK: Final = 4096  # even, so every chunk starts on a 16-bit word
_IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
# (width, mask) from 32,768 bits down to 512: folding a number at a multiple of 16 bits keeps it
# modulo 0xFFFF (2**16 is 1 modulo 0xFFFF), and ends with one division of about 500 bits
_FOLDS: Final = [(16 << i, (1 << (16 << i)) - 1) for i in range(11, 4, -1)]


def mod_ffff(x: int) -> int:
    """x % 0xFFFF for x >= 0, faster on a big x: CPython divides a big integer by a small one a 30-bit
    digit at a time, each a hardware division (1.4 µs of the 2.4 µs a 1,460-byte segment's checksum
    took); halving it by shifts and an addition until about 500 bits are left costs about 60% of that
    (and half of the division for a 64 KB packet)."""
    n = x.bit_length()
    while n > 65536:  # beyond the widest fold's reach (a 64 KB packet): halved first, at a multiple of 16
        half = (n >> 5) << 4
        x = (x >> half) + (x & ((1 << half) - 1))
        n = x.bit_length()
    for width, mask in _FOLDS:
        if n > width:
            x = (x >> width) + (x & mask)
            n = x.bit_length()
    return x % 0xFFFF


def ones_complement_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """16-bit one's-complement sum of data (padded with a zero byte if odd)."""
    n = len(data)
    if n <= _CHUNK:  # (an odd length: the integer shifted by a byte is the padded data's, no copy)
        total = int.from_bytes(data, "big") << 8 if n & 1 else int.from_bytes(data, "big")
        if initial:  # (adding 0 to a big integer would copy it)
            total += initial
    else:
        if n & 1:
            data = bytes(data) + b"\x00"
        # Big-integer modulo grows faster than linearly: sum 4 KiB chunks first.
        view = memoryview(data)
        from_bytes = int.from_bytes
        total = initial + sum(from_bytes(view[i : i + _CHUNK], "big") for i in range(0, len(view), _CHUNK))
    # 2**16 is 1 modulo 0xFFFF, so the end-around-carry sum of 16-bit words is
    # the big integer modulo 0xFFFF, with 0xFFFF standing for a non-zero zero.
    folded = mod_ffff(total)
    return 0xFFFF if folded == 0 and total else folded


def checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    return ~ones_complement_sum(data, initial) & 0xFFFF


def pseudo_header_sum(src: _IPAddr, dst: _IPAddr, proto: int, length: int) -> int:
    """Partial sum of the IPv4 or IPv6 pseudo-header used by TCP and ICMPv6."""
    if src.version == 4:  # the 16-bit words of both addresses, the protocol and the length
        s, d = int(src), int(dst)
        total = (s >> 16) + (s & 0xFFFF) + (d >> 16) + (d & 0xFFFF) + proto + length
        while total > 0xFFFF:
            total = (total & 0xFFFF) + (total >> 16)
        return total
    else:
        ph = src.packed + dst.packed + length.to_bytes(4, "big") + bytes((0, 0, 0, proto))
    return ones_complement_sum(ph)
