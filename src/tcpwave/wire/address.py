"""IPv4 address objects shared by every packet and call: one object per address, keeping its hash.

Left pure Python in the compiled build (setup.py): mypyc cannot compile a subclass of a class with
__slots__, and IPv4Address has them."""

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Interned4(ipaddress.IPv4Address):
    """An IPv4Address that keeps its hash: demultiplexing hashes addresses on every packet, and
    IPv4Address computes hash(hex(int)) each time. Equal to, and hashed like, any IPv4Address."""

    __slots__ = ("_hash",)

    def __init__(self, address: int) -> None:  # (only v4() makes these: a 32-bit integer, nothing to check)
        self._ip = address  # (IPv4Address.__init__ would check and convert, a Python call chain per packet:
        self._hash = hash(hex(address))  # a flood from random sources makes a new address for nearly every one)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"IPv4Address('{self}')"


_V4_CACHE: dict[int, ipaddress.IPv4Address] = {}  # one address object per address seen (bounded)


def v4(addr: int) -> ipaddress.IPv4Address:
    obj = _V4_CACHE.get(addr)
    if obj is None:
        if len(_V4_CACHE) >= 4096:
            _V4_CACHE.clear()
        obj = _V4_CACHE[addr] = _Interned4(addr)
    return obj


def intern_address(addr: IPAddress) -> IPAddress:
    """The shared object for an address (IPv4), so that keys built from packets and from calls are
    the same objects and compare by identity."""
    return v4(int(addr)) if addr.version == 4 else addr
