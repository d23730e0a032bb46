"""Addresses no packet from a network may come from or go to (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7):
"martians", dropped on arrival before any state or reply, as routers and Linux's input routing do.

IPv4 sources: the zero network 0/8 ("this host", never a real sender), loopback 127/8 (arriving from
outside), multicast 224/4, class E 240/4, the limited broadcast 255.255.255.255, and the directed
broadcast of a network the host is on (which the caller passes in). IPv6 (RFC 4291 §2.5.2, §2.5.3,
§2.7): the unspecified address, loopback and multicast. Destinations: the same, less loopback (a
connect() to them is refused; on arrival only our own addresses are accepted anyway).
"""

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def broadcasts(networks) -> frozenset[int]:
    """The directed broadcast addresses (as integers) of the IPv4 networks a host is on."""
    return frozenset(int(n.broadcast_address) for n in networks if n.version == 4 and n.prefixlen < 31)


def martian_source(addr: IPAddress, directed: frozenset[int], loopback_ok: bool = False) -> str | None:
    """Why addr cannot be the source of a packet that arrived from a network, or None."""
    if isinstance(addr, ipaddress.IPv4Address):  # (not .version: a Python property, on every SYN of a flood)
        a = int(addr)
        top = a >> 24
        if top == 127:
            return None if loopback_ok else "loopback"
        return _v4(a, top, directed)
    if addr.is_loopback and not loopback_ok:
        return "loopback"
    return "unspecified" if addr.is_unspecified else "multicast" if addr.is_multicast else None


def martian_destination(addr: IPAddress, directed: frozenset[int]) -> str | None:
    """Why a connection to addr cannot be: a broadcast, multicast or reserved destination; or None."""
    if addr.version == 4:
        a = int(addr)
        return _v4(a, a >> 24, directed)
    return "unspecified" if addr.is_unspecified else "multicast" if addr.is_multicast else None


def _v4(a: int, top: int, directed: frozenset[int]) -> str | None:
    if top == 0:
        return "zero network"
    if top >= 224:
        return "multicast" if top < 240 else "limited broadcast" if a == 0xFFFFFFFF else "class E"
    return "subnet broadcast" if a in directed else None
