"""ICMP and ICMPv6: echo (the only ICMP a host must answer to be pingable), and the errors TCP
listens to: "fragmentation needed" / "packet too big" (path MTU discovery, RFC 1191 / RFC 8201) and
destination unreachable (soft errors, RFC 1122 §4.2.3.9)."""

import errno as _e
import struct
from dataclasses import dataclass
from typing import Final

from .checksum import checksum, pseudo_header_sum
from .errors import MalformedPacket

PROTO_ICMP: Final = 1
PROTO_ICMPV6: Final = 58
ECHO_REQUEST: Final = {4: 8, 6: 128}
ECHO_REPLY: Final = {4: 0, 6: 129}


def _sum_for(version: int, src, dst, length: int) -> int:
    return 0 if version == 4 else pseudo_header_sum(src, dst, PROTO_ICMPV6, length)


def echo_reply_for(version: int, src, dst, message: bytes | memoryview) -> bytes | None:
    """Given an ICMP message from src to dst, return the reply body, or None if it is no echo request."""
    if len(message) < 8:
        raise MalformedPacket("truncated", "ICMP message under 8 bytes")
    if checksum(message, _sum_for(version, src, dst, len(message))) != 0:
        raise MalformedPacket("bad_checksum", "ICMP")
    if message[0] != ECHO_REQUEST[version] or message[1] != 0:
        return None
    reply = bytearray(message)
    reply[0] = ECHO_REPLY[version]
    reply[2:4] = b"\x00\x00"
    reply[2:4] = checksum(reply, _sum_for(version, dst, src, len(reply))).to_bytes(2, "big")
    return bytes(reply)


def build_echo_request(version: int, src, dst, ident: int, seqno: int, data: bytes = b"") -> bytes:
    msg = bytearray((ECHO_REQUEST[version], 0, 0, 0)) + ident.to_bytes(2, "big") + seqno.to_bytes(2, "big") + data
    msg[2:4] = checksum(msg, _sum_for(version, src, dst, len(msg))).to_bytes(2, "big")
    return bytes(msg)


# The errno an ICMP error stands for, as Linux converts them (icmp_err_convert, icmpv6_err_convert).
# IPv4 destination unreachable, by code:
_V4_UNREACH: Final = (_e.ENETUNREACH, _e.EHOSTUNREACH, _e.ENOPROTOOPT, _e.ECONNREFUSED, _e.EMSGSIZE, _e.EOPNOTSUPP,
               _e.ENETUNREACH, _e.EHOSTDOWN, _e.ENONET, _e.ENETUNREACH, _e.EHOSTUNREACH, _e.ENETUNREACH,
               _e.EHOSTUNREACH, _e.EHOSTUNREACH, _e.EHOSTUNREACH, _e.EHOSTUNREACH)
# IPv6 destination unreachable, by code (no route, prohibited, beyond scope, address, port, policy, reject):
_V6_UNREACH: Final = (_e.ENETUNREACH, _e.EACCES, _e.EHOSTUNREACH, _e.EHOSTUNREACH, _e.ECONNREFUSED, _e.EACCES,
               _e.EACCES)
_V4_TYPES: Final = {3: "unreachable", 11: "time_exceeded", 12: "parameter_problem"}
_V6_TYPES: Final = {1: "unreachable", 2: "too_big", 3: "time_exceeded", 4: "parameter_problem"}


def _errno_for(version: int, kind: str, code: int) -> int:
    if kind == "time_exceeded":
        return _e.EHOSTUNREACH
    if kind == "parameter_problem":
        return _e.EPROTO
    if kind == "too_big":
        return _e.EMSGSIZE
    table = _V4_UNREACH if version == 4 else _V6_UNREACH
    return table[code] if code < len(table) else _e.EHOSTUNREACH


@dataclass(frozen=True, slots=True)
class IcmpError:
    """An ICMP error about a TCP segment we sent: what went wrong, and the segment it quotes."""

    kind: str  # "too_big", "unreachable", "time_exceeded" or "parameter_problem"
    mtu: int  # the next-hop MTU for too_big (0 if the router did not say)
    code: int
    src: bytes  # the quoted packet's source (ours) and destination, as on the wire
    dst: bytes
    sport: int
    dport: int
    seq: int
    errno: int = 0  # what it means to a socket (EHOSTUNREACH, ECONNREFUSED, ...), as Linux converts it


def parse_error(version: int, src, dst, message: bytes | memoryview) -> IcmpError | None:
    """An ICMP(v6) error that quotes a TCP segment, or None for anything else."""
    if len(message) < 8:
        raise MalformedPacket("truncated", "ICMP message under 8 bytes")
    if checksum(message, _sum_for(version, src, dst, len(message))) != 0:
        raise MalformedPacket("bad_checksum", "ICMP")
    typ, code = message[0], message[1]
    inner = message[8:]
    if version == 4:
        kind = _V4_TYPES.get(typ)
        if kind is None:
            return None
        mtu = 0
        if kind == "unreachable" and code == 4:
            kind, mtu = "too_big", int.from_bytes(message[6:8], "big")
        if len(inner) < 20 or inner[0] >> 4 != 4:
            return None
        ihl = (inner[0] & 0x0F) * 4
        if inner[9] != 6 or len(inner) < ihl + 8:
            return None
        qsrc, qdst, tcp = bytes(inner[12:16]), bytes(inner[16:20]), inner[ihl:]
    else:
        kind = _V6_TYPES.get(typ)
        if kind is None:
            return None
        mtu = int.from_bytes(message[4:8], "big") if kind == "too_big" else 0
        if len(inner) < 48 or inner[0] >> 4 != 6 or inner[6] != 6:
            return None
        qsrc, qdst, tcp = bytes(inner[8:24]), bytes(inner[24:40]), inner[40:]
    sport, dport, seq = struct.unpack_from("!HHI", tcp)
    return IcmpError(kind, mtu, code, qsrc, qdst, sport, dport, seq, _errno_for(version, kind, code))
