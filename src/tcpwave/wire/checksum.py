"""The Internet checksum (RFC 1071), computed with big-integer arithmetic.

Reading the whole buffer as one big integer and reducing it modulo 0xFFFF is the
fastest pure Python way: no per-byte or per-word loop runs in the interpreter.
"""

import ipaddress

_CHUNK = 4096  # even, so every chunk starts on a 16-bit word
_IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def ones_complement_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """16-bit one's-complement sum of data (padded with a zero byte if odd)."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    if len(data) <= _CHUNK:
        total = int.from_bytes(data, "big") + initial
    else:
        # Big-integer modulo grows faster than linearly: sum 4 KiB chunks first.
        view = memoryview(data)
        from_bytes = int.from_bytes
        total = initial + sum(from_bytes(view[i : i + _CHUNK], "big") for i in range(0, len(view), _CHUNK))
    # 2**16 is 1 modulo 0xFFFF, so the end-around-carry sum of 16-bit words is
    # the big integer modulo 0xFFFF, with 0xFFFF standing for a non-zero zero.
    folded = total % 0xFFFF
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
