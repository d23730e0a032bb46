"""Captures in and out: read pcap and pcapng files of any common link type; write pcapng with comments.

Reading yields (time, IP packet) pairs: the link-layer header is stripped for Ethernet (with VLAN
tags), Linux cooked capture v1 and v2, BSD loopback/null and raw IP. Frames that do not carry IPv4 or
IPv6 are skipped. Writing produces pcapng (link type RAW) with an optional comment per packet.
"""

import struct
from collections.abc import Iterator
from typing import BinaryIO

LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP = 0, 1, 101, 108
LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 113, 276
_RAW_ALIASES = {12, 14, LINKTYPE_RAW, 228, 229}  # DLT_RAW on some systems, IPV4, IPV6
_ETH_IP = {0x0800, 0x86DD}
_VLAN = {0x8100, 0x88A8, 0x9100}
_AF_INET6 = {10, 24, 28, 30}  # Linux, BSDs, macOS

_SHB, _IDB, _EPB, _SPB = 0x0A0D0D0A, 1, 6, 3
_BYTE_ORDER_MAGIC = 0x1A2B3C4D


class CaptureError(ValueError):
    pass


def strip_link(linktype: int, frame: bytes) -> bytes | None:
    """The IP packet inside a frame, or None if the frame carries something else."""
    if linktype in _RAW_ALIASES:
        ip = frame
    elif linktype == LINKTYPE_ETHERNET:
        off, ethertype = 12, None
        while off + 2 <= len(frame):
            ethertype = int.from_bytes(frame[off:off + 2], "big")
            if ethertype not in _VLAN:
                break
            off += 4
        if ethertype not in _ETH_IP:
            return None
        ip = frame[off + 2:]
    elif linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16 or int.from_bytes(frame[14:16], "big") not in _ETH_IP:
            return None
        ip = frame[16:]
    elif linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20 or int.from_bytes(frame[0:2], "big") not in _ETH_IP:
            return None
        ip = frame[20:]
    elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 4:
            return None
        family = int.from_bytes(frame[:4], "big" if linktype == LINKTYPE_LOOP else "little")
        if family not in _AF_INET6 | {2} and linktype == LINKTYPE_NULL:
            family = int.from_bytes(frame[:4], "big")  # written on a big-endian host
        if family != 2 and family not in _AF_INET6:
            return None
        ip = frame[4:]
    else:
        raise CaptureError(f"link type {linktype} is not supported (Ethernet, raw IP, Linux SLL/SLL2, "
                           "loopback are)")
    return ip if ip and ip[0] >> 4 in (4, 6) else None


def _restore(ip: bytes, missing: int, report: dict | None = None) -> bytes:
    """A packet the capture cut short (tcpdump -s 128): if its IP and TCP headers are complete, the
    missing payload comes back as zeros, so lengths and sequence numbers add up (as Wireshark reads
    such captures); the bytes themselves were never captured. `report` counts the packets whose TCP
    header was cut ("headers_cut") or whose TCP options were ("options_cut": SACK blocks lost)."""
    if missing <= 0 or not ip:
        return ip
    if ip[0] >> 4 == 4:
        ip_len = (ip[0] & 0x0F) * 4
        tcp = len(ip) > 9 and ip[9] == 6
    else:
        ip_len = 40
        tcp = len(ip) > 6 and ip[6] == 6
    headers = ip_len + 20
    if report is not None and tcp:
        if len(ip) < headers:
            report["headers_cut"] = report.get("headers_cut", 0) + 1
        elif len(ip) < ip_len + (ip[ip_len + 12] >> 4) * 4:
            report["options_cut"] = report.get("options_cut", 0) + 1
    return ip + bytes(missing) if len(ip) >= headers else ip


def read_capture(path: str, report: dict | None = None) -> list[tuple[float, bytes]]:
    """(time, IP packet) pairs. `report`, if given, receives what the file lacks: "cut_short" (the file
    ends in the middle of a packet, as a capture stopped abruptly or copied early leaves it),
    "snaplen" (the file's), "cut_at" (the most any cut packet kept), "headers_cut" and "options_cut"
    (packets the snap length cut inside the TCP header)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise CaptureError(f"{path}: too short to be a capture")
    if report is None:
        report = {}
    if int.from_bytes(data[:4], "little") == _SHB:
        return list(_read_pcapng(data, report))
    return list(_read_pcap(data, path, report))


def _read_pcap(data: bytes, path: str, report: dict) -> Iterator[tuple[float, bytes]]:
    magic = data[:4]
    for endian in "<>":
        m = struct.unpack(endian + "I", magic)[0]
        if m in (0xA1B2C3D4, 0xA1B23C4D):
            scale = 1e-6 if m == 0xA1B2C3D4 else 1e-9
            break
    else:
        raise CaptureError(f"{path}: not a pcap or pcapng file")
    if len(data) < 24:
        report["cut_short"] = True
        return
    report["snaplen"], linktype = struct.unpack_from(endian + "II", data, 16)
    linktype &= 0x0FFFFFFF
    off, rec = 24, struct.Struct(endian + "IIII")
    while off + 16 <= len(data):
        sec, frac, incl, orig = rec.unpack_from(data, off)
        if off + 16 + incl > len(data):
            break
        frame = data[off + 16: off + 16 + incl]
        off += 16 + incl
        if incl < orig:
            report["cut_at"] = max(report.get("cut_at", 0), incl)
        ip = strip_link(linktype, frame)
        if ip is not None:
            yield sec + frac * scale, _restore(ip, orig - len(frame), report)
    if off != len(data):
        report["cut_short"] = True


def _read_pcapng(data: bytes, report: dict) -> Iterator[tuple[float, bytes]]:
    off, endian = 0, "<"
    interfaces: list[tuple[int, float]] = []  # (linktype, seconds per tick)
    while off + 12 <= len(data):
        btype = struct.unpack_from(endian + "I", data, off)[0]
        if btype == _SHB:
            endian = "<" if struct.unpack_from("<I", data, off + 8)[0] == _BYTE_ORDER_MAGIC else ">"
            interfaces = []
        blen = struct.unpack_from(endian + "I", data, off + 4)[0]
        if blen >= 12 and off + blen > len(data):
            break  # the file ends inside this block: cut short
        if blen < 12:
            raise CaptureError(f"pcapng block at byte {off} has a bad length {blen}")
        body = data[off + 8: off + blen - 4]
        if btype == _IDB:
            linktype, _, snaplen = struct.unpack_from(endian + "HHI", body, 0)
            interfaces.append((linktype, _tsresol(body[8:], endian)))
            if snaplen:
                report["snaplen"] = snaplen
        elif btype == _EPB:
            ifid, hi, lo, incl, orig = struct.unpack_from(endian + "IIIII", body, 0)
            linktype, tick = interfaces[ifid]
            frame = body[20:20 + incl]
            if incl < orig:
                report["cut_at"] = max(report.get("cut_at", 0), incl)
            ip = strip_link(linktype, frame)
            if ip is not None:
                yield ((hi << 32) | lo) * tick, _restore(ip, orig - len(frame), report)
        elif btype == _SPB and interfaces:
            orig = struct.unpack_from(endian + "I", body, 0)[0]
            frame = body[4:4 + orig]
            ip = strip_link(interfaces[0][0], frame)
            if ip is not None:
                yield 0.0, _restore(ip, orig - len(frame), report)
        off += blen
    if off != len(data):
        report["cut_short"] = True


def _tsresol(options: bytes, endian: str) -> float:
    off = 0
    while off + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, off)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = options[off + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        off += 4 + (length + 3) // 4 * 4
    return 1e-6


def _option(code: int, value: bytes) -> bytes:
    pad = (4 - len(value) % 4) % 4
    return struct.pack("<HH", code, len(value)) + value + bytes(pad)


def _block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


class PcapngWriter:
    """pcapng, link type RAW, nanosecond timestamps; `write(t, packet, comment)`."""

    def __init__(self, stream: BinaryIO, snaplen: int = 262144, application: str = "tcpwave"):
        self._stream = stream
        self.name = getattr(stream, "name", "capture")
        shb = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + _option(4, application.encode()) + _option(0, b"")
        stream.write(_block(_SHB, shb))
        idb = struct.pack("<HHI", LINKTYPE_RAW, 0, snaplen) + _option(9, bytes([9])) + _option(0, b"")
        stream.write(_block(_IDB, idb))
        self.count = 0

    def write(self, t: float, packet: bytes, comment: str | None = None) -> None:
        ns = round(t * 1e9)
        body = struct.pack("<IIIII", 0, ns >> 32, ns & 0xFFFFFFFF, len(packet), len(packet))
        body += packet + bytes((4 - len(packet) % 4) % 4)
        if comment:
            body += _option(1, comment.encode()) + _option(0, b"")
        self._stream.write(_block(_EPB, body))
        self.count += 1

    def sync(self) -> None:
        """Hand what is buffered to the file (a live capture can then be read while it grows)."""
        self._stream.flush()
