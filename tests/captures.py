"""Small hand-made captures for the analysis tests: one IPv4 connection, segment by segment, with the
IPv4 ID each packet carries (Linux numbers a connection's packets in order) and SACK blocks."""

import struct

A, B = ("198.51.100.1", 40000), ("203.0.113.1", 80)
FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def _addr(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def _checksum(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


class Conversation:
    """seg(t, "A" or "B", seq, ack, ...) in capture order; pcap() the file (link type raw IP)."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.ids = {"A": 100, "B": 500}

    def seg(self, t: float, who: str, seq: int, ack: int = 0, flags: str = "A", n: int = 0, win: int = 60000,
            sack: tuple = (), ipid: int | None = None) -> None:
        src, dst = (A, B) if who == "A" else (B, A)
        if ipid is None:
            ipid = self.ids[who] + 1
        self.ids[who] = max(self.ids[who], ipid)
        opts = b""
        if sack:
            opts = b"\x01\x01" + bytes([5, 2 + 8 * len(sack)]) + b"".join(struct.pack("!II", a, b) for a, b in sack)
        tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq, ack, (20 + len(opts)) // 4 << 4,
                          sum(FLAGS[f] for f in flags), win, 0, 0) + opts + b"x" * n
        head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ipid, 0x4000, 64, 6, 0, _addr(src[0]),
                           _addr(dst[0]))
        ip = head[:10] + struct.pack("!H", _checksum(head)) + head[12:] + tcp
        self.frames.append((t, ip))

    def pcap(self, snaplen: int = 65535) -> bytes:
        out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 101)
        for t, frame in self.frames:
            kept = frame[:snaplen]
            out += struct.pack("<IIII", 1_700_000_000 + int(t), round((t - int(t)) * 1e6), len(kept), len(frame))
            out += kept
        return out

    def handshake(self, rtt: float = 0.003, at_client: bool = True) -> None:
        """SYN, SYN-ACK, ACK: ISNs 1000 (A) and 5000 (B); the capture is at A or at B."""
        self.seg(0.0, "A", 1000, 0, "S")
        self.seg(rtt if at_client else 0.0001, "B", 5000, 1001, "SA")
        self.seg(rtt if at_client else rtt + 0.0001, "A", 1001, 5001)
