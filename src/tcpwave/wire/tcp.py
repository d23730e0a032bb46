"""TCP segments: the header fields, options and payload, parsed and built.

Addresses are not part of a Segment: the IP layer carries them, and the
checksum over the pseudo-header is computed where both are known.
"""

import struct
from dataclasses import dataclass, field
from typing import Final

from .checksum import checksum, ones_complement_sum, pseudo_header_sum
from .errors import MalformedPacket
from .options import NO_OPTIONS, Options, build_options, parse_options

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10
URG: Final = 0x20
ECE: Final = 0x40
CWR: Final = 0x80
FLAG_NAMES: Final = ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"), (URG, "URG"), (ECE, "ECE"),
              (CWR, "CWR"))
PROTO_TCP: Final = 6
HEADER_LEN: Final = 20
_HDR: Final = struct.Struct("!HHIIBBHHH")


def flags_text(flags: int) -> str:
    """'SYN,ACK' style, in a fixed order; '' for no flags."""
    return ",".join(name for bit, name in FLAG_NAMES if flags & bit)


@dataclass(slots=True)
class Segment:
    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int  # the 16-bit field as on the wire (not scaled)
    payload: bytes | memoryview = b""
    options: Options = field(default=NO_OPTIONS)
    urgent: int = 0

    def __init__(self, src_port: int, dst_port: int, seq: int, ack: int, flags: int, window: int,
                 payload: bytes | memoryview = b"", options: Options = NO_OPTIONS, urgent: int = 0) -> None:
        # (an __init__ of its own: mypyc compiles it; the one @dataclass writes runs as Python, per packet)
        self.src_port, self.dst_port, self.seq, self.ack = src_port, dst_port, seq, ack
        self.flags, self.window, self.payload, self.options, self.urgent = flags, window, payload, options, urgent

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload bytes plus one for SYN and one for FIN."""
        return len(self.payload) + (self.flags & SYN != 0) + (self.flags & FIN != 0)

    def has(self, flag: int) -> bool:
        return self.flags & flag != 0

    def __repr__(self) -> str:  # compact, for test failures and debugging
        opts = f" opts={self.options}" if self.options else ""
        return (
            f"<Segment {self.src_port}>{self.dst_port} [{flags_text(self.flags)}] seq={self.seq} "
            f"ack={self.ack} win={self.window} len={len(self.payload)}{opts}>"
        )


def parse_tcp(data: bytes | memoryview, src=None, dst=None) -> Segment:
    """Parse a TCP header and payload; given the IP addresses, verify the checksum."""
    n = len(data)
    if n < HEADER_LEN:
        raise MalformedPacket("truncated", f"TCP header needs 20 bytes, got {n}")
    sport, dport, seq, ack, off, flags, window, _csum, urgent = _HDR.unpack_from(data)
    hlen = (off >> 4) * 4
    if hlen < HEADER_LEN or hlen > n:
        raise MalformedPacket("bad_data_offset", f"data offset {hlen} bytes in a {n}-byte segment")
    if src is not None and checksum(data, pseudo_header_sum(src, dst, PROTO_TCP, n)) != 0:
        raise MalformedPacket("bad_checksum")
    view = memoryview(data)
    options = parse_options(view[HEADER_LEN:hlen]) if hlen > HEADER_LEN else NO_OPTIONS
    return Segment(sport, dport, seq, ack, flags, window, view[hlen:], options, urgent)


def build_tcp(seg: Segment, src=None, dst=None, partial: bool = False) -> bytes:
    """Serialize; given the IP addresses, fill in the checksum. partial=True (checksum offload) puts
    only the folded pseudo-header sum there, for the device to finish."""
    opts = build_options(seg.options) if seg.options else b""
    hlen = HEADER_LEN + len(opts)
    header = bytearray(_HDR.pack(seg.src_port, seg.dst_port, seg.seq, seg.ack, (hlen // 4) << 4,
                                 seg.flags, seg.window, 0, seg.urgent))
    header += opts
    payload = seg.payload
    if src is not None:
        pseudo = pseudo_header_sum(src, dst, PROTO_TCP, hlen + len(payload))
        if partial:
            header[16:18] = pseudo.to_bytes(2, "big")
        else:
            header[16:18] = checksum(payload, ones_complement_sum(header, pseudo)).to_bytes(2, "big")
    if payload:
        header += payload
    return bytes(header)
