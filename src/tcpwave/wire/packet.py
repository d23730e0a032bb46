"""One IPv4 packet carrying one TCP segment, parsed or built in one step: both headers in one struct
call, checksums from integer sums, no intermediate packet objects. That is nearly every packet a
stack handles; wire/ip.py and wire/tcp.py handle everything else (IPv6, IP options, other
protocols, and every malformed packet, so that each is dropped with its reason)."""

import struct
from typing import Final

from .address import V4_CACHE, IPAddress, v4
from .checksum import checksum, ones_complement_sum
from .errors import MalformedPacket
from .options import NO_OPTIONS, Options, build_options, parse_options
from .tcp import PROTO_TCP, Segment

_HEADERS: Final = struct.Struct("!BBHHHBBHIIHHIIBBHHH")  # IPv4 (20 bytes, no options) + TCP (20 bytes)
# the same followed by 0, 4, ... 40 bytes of options (always a multiple of 4: build_options pads them)
_WITH_OPTIONS: Final = [struct.Struct(f"!BBHHHBBHIIHHIIBBHHH{4 * k}s") for k in range(11)]
_TTL_PROTO: Final = (64 << 8) | PROTO_TCP
_DF: Final = 0x4000
_NOP_NOP_TS: Final = struct.Struct("!III")  # NOP, NOP, kind 8, length 10; TSval; TSecr
_TS_HEAD: Final = 0x0101080A


def _fold(total: int) -> int:
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def build_ipv4_tcp(seg: Segment, src: int, dst: int, ident: int, partial: bool) -> bytes:
    """src, dst: the addresses as integers. partial: the TCP checksum holds only the folded
    pseudo-header sum, for the device to finish (checksum offload)."""
    return build_ipv4_tcp_fields(src, dst, seg.src_port, seg.dst_port, seg.seq, seg.ack, seg.flags, seg.window,
                                 build_options(seg.options) if seg.options else b"", seg.payload, seg.urgent, ident,
                                 partial)


def build_ipv4_tcp_fields(src: int, dst: int, sport: int, dport: int, seq: int, ack: int, flags: int, window: int,
                          opts: bytes, payload: bytes | memoryview, urgent: int, ident: int, partial: bool) -> bytes:
    """The same from the header's fields and the options already encoded, with no Segment: what a
    stack answers without keeping state (a SYN cookie's SYN,ACK) needs no object per packet."""
    hlen = 20 + len(opts)
    tcp_len = hlen + len(payload)
    total = 20 + tcp_len
    addrs = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
    ip_sum = ~_fold(0x4500 + total + ident + _DF + _TTL_PROTO + addrs) & 0xFFFF
    pseudo = _fold(addrs + PROTO_TCP + tcp_len)
    if partial:
        tcp_sum = pseudo
    else:  # the TCP header's words from its fields, then the options' and the data's: no bytes to sum twice
        words = (pseudo + sport + dport + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
                 + ((hlen >> 2) << 12 | flags) + window + urgent)
        if opts:
            words += ones_complement_sum(opts)
        if payload:
            words += ones_complement_sum(payload)
        tcp_sum = ~_fold(words) & 0xFFFF  # (words > 0: the protocol is in it; a multiple of 0xFFFF folds to it)
    # the options packed with the headers: one bytes object, not two and their concatenation
    head = _WITH_OPTIONS[len(opts) >> 2].pack(0x45, 0, total, ident, _DF, 64, PROTO_TCP, ip_sum, src, dst, sport,
                                             dport, seq, ack, (hlen >> 2) << 4, flags, window, tcp_sum, urgent, opts)
    return head + payload if payload else head


def parse_ipv4_tcp(data: bytes | bytearray | memoryview,
                   trusted: bool) -> tuple[IPAddress, IPAddress, Segment] | None:
    """(source, destination, segment) of a well-formed IPv4 packet without IP options carrying TCP;
    None for anything else, which the layered parsers then take (and name what is wrong).
    trusted: made by the local kernel (checksum offload): neither checksum is checked."""
    view = memoryview(data)
    n = len(view)
    if n < 40:
        return None
    (vihl, tos, total, ident, frag, ttl, proto, ip_sum, src, dst, sport, dport, seq, ack, off, flags, window,
     _tcp_sum, urgent) = _HEADERS.unpack_from(view)
    hlen = (off >> 4) << 2
    if vihl != 0x45 or proto != PROTO_TCP or total > n or frag & 0x3FFF or hlen < 20 or 20 + hlen > total:
        return None
    if not trusted:
        addrs = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF)
        # the IP header's sum from its fields, as checksum(view[:20]) would make it (no slice): good
        # when the words' one's-complement sum is 0xFFFF, i.e. their sum is a non-zero multiple of it
        words = (vihl << 8 | tos) + total + ident + frag + (ttl << 8 | proto) + ip_sum + addrs
        if words % 0xFFFF or not words:
            return None
        # the TCP checksum: the whole packet's sum (no slice copied out of a bytes packet) less the IP
        # header's words, plus the pseudo-header's; good when that is 0 modulo 0xFFFF (it cannot be a
        # plain 0: the pseudo-header's protocol is 6)
        if total == n:
            if ones_complement_sum(data) % 0xFFFF != (words - addrs - PROTO_TCP - total + 20) % 0xFFFF:
                return None
        elif checksum(view[20:total], _fold(addrs + PROTO_TCP + total - 20)) != 0:
            return None
    options: Options | None = None
    if hlen == 32:  # NOP, NOP, timestamps: nearly every segment after a handshake, read in place
        head, tsval, tsecr = _NOP_NOP_TS.unpack_from(view, 40)
        if head == _TS_HEAD:
            options = Options(None, None, False, (), (tsval, tsecr))
    if options is None:
        try:
            options = parse_options(view[40 : 20 + hlen]) if hlen > 20 else NO_OPTIONS
        except MalformedPacket:
            return None
    # (a segment without data, a flood's SYN among them, holds no view of the packet)
    payload = view[20 + hlen : total] if total > 20 + hlen else b""
    cached = V4_CACHE.get  # (v4() is Python: the common case without calling it)
    return (cached(src) or v4(src), cached(dst) or v4(dst),
            Segment(sport, dport, seq, ack, flags, window, payload, options, urgent))
