"""Deterministic networks for testing applications: tcpwave stacks on one virtual-clock asyncio loop
(tcpwave.aio.loop's TcpwaveLoop, so applications' own asyncio calls use them),
joined by seeded lossy links (network.py), and a pytest plugin with the `tcpwave_network` fixture that
saves a failing test's packets as a pcap (pytest_plugin.py, registered as a pytest11 entry point).
Names are imported on first use: pytest loads the plugin in every run, and it stays cheap."""

from typing import TYPE_CHECKING

__all__ = ["Host", "Network"]
_LAZY = {"Host": "tcpwave.testing.network", "Network": "tcpwave.testing.network"}

if TYPE_CHECKING:
    from .network import Host, Network


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tcpwave.testing' has no attribute {name!r}")
