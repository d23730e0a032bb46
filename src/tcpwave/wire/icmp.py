"""ICMP and ICMPv6 echo: the only ICMP a host must answer to be pingable."""

from .checksum import checksum, pseudo_header_sum
from .errors import MalformedPacket

PROTO_ICMP = 1
PROTO_ICMPV6 = 58
ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}


def _sum_for(version: int, src, dst, length: int) -> int:
    return 0 if version == 4 else pseudo_header_sum(src, dst, PROTO_ICMPV6, length)


def echo_reply_for(version: int, src, dst, message: memoryview) -> bytes | None:
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
