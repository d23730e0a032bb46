"""Deterministic networks for testing applications: tcpwave stacks on one virtual-clock asyncio loop,
joined by seeded lossy links (network.py), and a pytest plugin with the `tcpwave_network` fixture that
saves a failing test's packets as a pcap (pytest_plugin.py, registered as a pytest11 entry point)."""

from .clock import VirtualClockLoop
from .network import Host, Network

__all__ = ["Host", "Network", "VirtualClockLoop"]
