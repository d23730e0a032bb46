"""IPv4 and IPv6 headers: parse a packet into addresses, protocol and payload; build one back.

Only what a host needs: no fragmentation reassembly (fragments are dropped with
a reason), IPv6 extension headers are walked past, IPv4 options are skipped.
"""

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

from .address import IPAddress, v4
from .checksum import checksum
from .errors import MalformedPacket

_V4: Final = struct.Struct("!BBHHHBBHII")  # addresses as integers: no bytes objects per packet


_V6: Final = struct.Struct("!IHBB16s16s")
_V6_EXT: Final = {0, 43, 60}  # hop-by-hop, routing, destination options (skippable)
_V6_FRAGMENT: Final = 44


@dataclass(slots=True)
class IPPacket:
    src: IPAddress
    dst: IPAddress
    proto: int
    payload: memoryview | bytes  # (a Union: a compiled dataclass cannot look up the memoryview builtin, mypyc)
    ttl: int = 64


def parse_ip(data: bytes | bytearray | memoryview) -> IPPacket:
    view = memoryview(data)
    if not view:
        raise MalformedPacket("truncated", "empty packet")
    version = view[0] >> 4
    if version == 4:
        return _parsev4(view)
    if version == 6:
        return _parse_v6(view)
    raise MalformedPacket("bad_ip_version", str(version))


def _parsev4(view: memoryview) -> IPPacket:
    if len(view) < 20:
        raise MalformedPacket("truncated", f"IPv4 header needs 20 bytes, got {len(view)}")
    vihl, _tos, total, _ident, frag, ttl, proto, _csum, src, dst = _V4.unpack_from(view)
    ihl = (vihl & 0x0F) * 4
    if total > len(view):
        raise MalformedPacket("truncated", f"IPv4 total length {total}, {len(view)} bytes present")
    if ihl < 20 or total < ihl:
        raise MalformedPacket("bad_ip_length", f"ihl {ihl}, total length {total}")
    if checksum(view[:ihl]) != 0:
        raise MalformedPacket("bad_ip_checksum")
    if frag & 0x3FFF:  # MF set or a fragment offset: we do not reassemble
        raise MalformedPacket("ip_fragment")
    return IPPacket(v4(src), v4(dst), proto, view[ihl:total], ttl)


def _parse_v6(view: memoryview) -> IPPacket:
    if len(view) < 40:
        raise MalformedPacket("truncated", f"IPv6 header needs 40 bytes, got {len(view)}")
    _vtf, plen, nxt, hlim, src, dst = _V6.unpack_from(view)
    if 40 + plen > len(view):
        raise MalformedPacket("truncated", f"IPv6 payload length {plen}, {len(view) - 40} bytes present")
    off, end = 40, 40 + plen
    while nxt in _V6_EXT or nxt == _V6_FRAGMENT:
        if nxt == _V6_FRAGMENT:
            raise MalformedPacket("ip_fragment")
        if off + 8 > end:
            raise MalformedPacket("truncated", "IPv6 extension header")
        nxt, hdr_len = view[off], (view[off + 1] + 1) * 8
        off += hdr_len
        if off > end:
            raise MalformedPacket("truncated", "IPv6 extension header")
    return IPPacket(ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst), nxt, view[off:end], hlim)


def build_ip(src: IPAddress, dst: IPAddress, proto: int, payload: bytes, ttl: int = 64, ident: int = 0) -> bytes:
    if src.version == 4:
        header = bytearray(_V4.pack(0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, ttl, proto, 0,
                                    int(src), int(dst)))
        header[10:12] = checksum(header).to_bytes(2, "big")
        return bytes(header) + payload
    return _V6.pack(6 << 28, len(payload), proto, ttl, src.packed, dst.packed) + payload
