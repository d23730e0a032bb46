"""asyncio over tcpwave: a runtime with one re-armed timer, and the standard streams and protocol APIs."""

from .runtime import FaultyLink, MemoryLink, Runtime, TunLink
from .streams import Server, TcpTransport, create_connection, create_server, open_connection, start_server

__all__ = ["FaultyLink", "MemoryLink", "Runtime", "Server", "TcpTransport", "TunLink", "create_connection",
           "create_server",
           "open_connection", "start_server"]
