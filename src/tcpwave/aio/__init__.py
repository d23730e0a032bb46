"""asyncio over tcpwave: a runtime with one re-armed timer, and the standard streams API."""

from .runtime import FaultyLink, MemoryLink, Runtime, TunLink
from .streams import Server, TcpTransport, open_connection, start_server

__all__ = ["FaultyLink", "MemoryLink", "Runtime", "Server", "TcpTransport", "TunLink", "open_connection",
           "start_server"]
