"""A pcap writer, link type RAW (101): packets are bare IPv4/IPv6, as on a TUN device."""

import struct
from typing import BinaryIO

LINKTYPE_RAW = 101
_MAGIC_NS = 0xA1B23C4D  # nanosecond timestamps


class PcapWriter:
    def __init__(self, stream: BinaryIO, snaplen: int = 262144):
        self._stream = stream
        self.name = getattr(stream, "name", "capture")
        stream.write(struct.pack("<IHHiIII", _MAGIC_NS, 2, 4, 0, 0, snaplen, LINKTYPE_RAW))
        self.count = 0

    def write(self, t: float, packet: bytes) -> None:
        ns = round(t * 1e9)
        sec, frac = divmod(ns, 1_000_000_000)
        self._stream.write(struct.pack("<IIII", sec, frac, len(packet), len(packet)))
        self._stream.write(packet)
        self.count += 1

    def sync(self) -> None:
        """Hand what is buffered to the file (a live capture can then be read while it grows)."""
        self._stream.flush()

    def __call__(self, t: float, packet: bytes) -> None:
        self.write(t, packet)
