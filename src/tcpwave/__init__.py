"""tcpwave: a user-space TCP/IP stack that shows every handshake, wave and state change.

The public surface is `__all__`: the stack and its configuration, the asyncio entry points
(tcpwave.aio; `create_connection` is asyncio's protocol-level one), the loop and networks that run
unchanged asyncio programs on tcpwave (tcpwave.aio.loop), the blocking socket API
(tcpwave.aio.blocking), tracers and their sinks, pcap and pcapng writers, a packet tap, and the
observation snapshots (`ss`-style connection snapshots and Linux's tcp_info). Names are imported on
first use, so `import tcpwave` stays cheap; type checkers see them all (the package is typed:
py.typed). In-memory test networks for pytest are in tcpwave.testing."""

import os
import sys
from typing import TYPE_CHECKING

__version__ = "0.1.0"


class _PureSources:
    """With TCPWAVE_PURE=1, tcpwave's modules load from their .py sources even where the compiled
    build (setup.py: mypyc) put an extension module beside them: one install runs both builds. This
    file is never compiled, so the switch works before any compiled module loads."""

    def find_spec(self, name: str, path: "Sequence[str] | None", target: object = None) -> "ModuleSpec | None":
        if not name.startswith("tcpwave.") or not path:
            return None
        from importlib.machinery import SOURCE_SUFFIXES, FileFinder, SourceFileLoader

        for entry in path:
            spec = FileFinder(entry, (SourceFileLoader, SOURCE_SUFFIXES)).find_spec(name)
            if spec is not None:
                return spec
        return None


if os.environ.get("TCPWAVE_PURE") == "1" and not any(isinstance(f, _PureSources) for f in sys.meta_path):
    sys.meta_path.insert(0, _PureSources())

_LAZY = {
    "Stack": "tcpwave.stack", "Config": "tcpwave.core.config",
    # asyncio
    "open_connection": "tcpwave.aio", "start_server": "tcpwave.aio", "create_server": "tcpwave.aio",
    "Server": "tcpwave.aio", "TcpTransport": "tcpwave.aio", "Runtime": "tcpwave.aio", "MemoryLink": "tcpwave.aio",
    "TunLink": "tcpwave.aio", "FaultyLink": "tcpwave.aio", "create_connection": "tcpwave.aio",
    # unchanged asyncio programs on tcpwave (asyncio.Runner(loop_factory=...))
    "TcpwaveLoop": "tcpwave.aio.loop", "MemoryNetwork": "tcpwave.aio.loop", "TunNetwork": "tcpwave.aio.loop",
    # the blocking socket API
    "Network": "tcpwave.aio.blocking", "TcpSocket": "tcpwave.aio.blocking",  # (Network.create_connection)
    # tracing, captures and observation
    "Tracer": "tcpwave.core.trace", "ListSink": "tcpwave.core.trace", "JsonLinesSink": "tcpwave.core.trace",
    "PcapWriter": "tcpwave.views.pcap", "PcapngWriter": "tcpwave.views.capture",
    "read_capture": "tcpwave.views.capture", "tapped": "tcpwave.aio.capture",
    "snapshot": "tcpwave.core.observe", "stack_snapshot": "tcpwave.core.observe", "tcp_info": "tcpwave.core.tcpinfo",
}

__all__ = ["Config", "FaultyLink", "JsonLinesSink", "ListSink", "MemoryLink", "MemoryNetwork", "Network",
           "PcapWriter", "PcapngWriter", "Runtime", "Server", "Stack", "TcpSocket", "TcpTransport", "TcpwaveLoop",
           "Tracer", "TunLink", "TunNetwork", "create_connection", "create_server", "open_connection",
           "read_capture", "snapshot", "stack_snapshot", "start_server", "tapped",
           "tcp_info"]  # (the names of _LAZY; a test keeps them equal)

if TYPE_CHECKING:  # what the lazy names are, for type checkers
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec

    from .aio import (
        FaultyLink,
        MemoryLink,
        Runtime,
        Server,
        TcpTransport,
        TunLink,
        create_connection,
        create_server,
        open_connection,
        start_server,
    )
    from .aio.blocking import Network, TcpSocket
    from .aio.capture import tapped
    from .aio.loop import MemoryNetwork, TcpwaveLoop, TunNetwork
    from .core.config import Config
    from .core.observe import snapshot, stack_snapshot
    from .core.tcpinfo import tcp_info
    from .core.trace import JsonLinesSink, ListSink, Tracer
    from .stack import Stack
    from .views.capture import PcapngWriter, read_capture
    from .views.pcap import PcapWriter


def __getattr__(name: str) -> object:  # tcpwave.open_connection etc., imported on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tcpwave' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
