"""IPv4 address objects shared by every packet and call: one object per address, keeping its hash.

Left pure Python in the compiled build (setup.py): mypyc cannot compile a subclass of a class with
__slots__, and IPv4Address has them."""

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Interned4(ipaddress.IPv4Address):
    """An IPv4Address that keeps its hash: demultiplexing hashes addresses on every packet, and
    IPv4Address computes hash(hex(int)) each time (and `packed` each time too: an ISN hashes it).
    Equal to, and hashed like, any IPv4Address."""

    __slots__ = ("_hash", "packed")
    version = 4  # (IPv4Address's are properties: Python calls the compiled code would make per packet)

    def __init__(self, address: int) -> None:  # (only v4() makes these: a 32-bit integer, nothing to check)
        self._ip = address  # (IPv4Address.__init__ would check and convert, a Python call chain per packet:
        self._hash = hash(hex(address))  # a flood from random sources makes a new address for nearly every one)
        self.packed = ipaddress.v4_int_to_packed(address)  # type: ignore[misc]  # (the slot shadows the property)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"IPv4Address('{self}')"


# one address object per address seen (bounded); the packet parser reads it first, then calls v4()
V4_CACHE: dict[int, ipaddress.IPv4Address] = {}
_TEXT_CACHE: dict[str, IPAddress] = {}  # the same, by the text an application gave (connect("192.0.2.1"))


def v4(addr: int) -> ipaddress.IPv4Address:
    obj = V4_CACHE.get(addr)
    if obj is None:
        if len(V4_CACHE) >= 4096:
            V4_CACHE.clear()
        obj = V4_CACHE[addr] = _Interned4(addr)
    return obj


def address_from_text(text: str) -> IPAddress:
    """ipaddress.ip_address(text), interned; parsed once per text (parsing takes microseconds)."""
    obj = _TEXT_CACHE.get(text)
    if obj is None:
        if len(_TEXT_CACHE) >= 4096:
            _TEXT_CACHE.clear()
        obj = _TEXT_CACHE[text] = intern_address(ipaddress.ip_address(text))
    return obj


def intern_address(addr: IPAddress) -> IPAddress:
    """The shared object for an address (IPv4), so that keys built from packets and from calls are
    the same objects and compare by identity."""
    return v4(int(addr)) if addr.version == 4 else addr
