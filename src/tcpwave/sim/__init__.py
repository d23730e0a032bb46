"""A simulated network in virtual time: hosts running tcpwave stacks, joined by seeded links."""

from .faults import Fault
from .link import LinkParams
from .network import Host, Simulator

__all__ = ["Fault", "Host", "LinkParams", "Simulator"]
