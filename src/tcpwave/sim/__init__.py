"""A simulated network in virtual time: hosts running tcpwave stacks, joined by seeded links."""

from .faults import Fault
from .link import DEFAULT_LINK, LinkParams
from .network import Host, Simulator

__all__ = ["DEFAULT_LINK", "Fault", "Host", "LinkParams", "Simulator"]
