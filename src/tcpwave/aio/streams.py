"""The asyncio streams and protocol APIs over tcpwave: `open_connection` and `start_server` return the
standard asyncio.StreamReader / StreamWriter; `create_connection` and `create_server` take protocol
factories, as the loop's methods do. All take ssl= (TLS by the ssl module, aio/tls.py) and config= (a
tcpwave Config for that connection or listener).
"""

import asyncio
import ipaddress
import socket
from collections.abc import Callable

from ..core import events as ev
from . import tls
from .transport import TcpTransport

__all__ = ["Server", "TcpTransport", "create_connection", "create_server", "open_connection", "start_server"]


async def create_connection(protocol_factory: Callable[[], asyncio.BaseProtocol], host, port: int, *, runtime,
                            ssl=None, server_hostname: str | None = None, local_addr=None, config=None,
                            ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None):
    """Like loop.create_connection, over tcpwave: returns (transport, protocol) once connected (and,
    with ssl=, once the TLS handshake is done). A host name is resolved as asyncio does
    (loop.getaddrinfo: /etc/hosts, localhost, DNS); its addresses are tried in turn. `config`: this
    connection's tcpwave Config (congestion control, buffers, ...) instead of the stack's."""
    loop = runtime.loop
    if ssl and server_hostname is None:
        server_hostname = host
    local = (None, None) if local_addr is None else local_addr
    errors: list[OSError] = []
    for address in await resolve(loop, host, port):
        protocol = protocol_factory()
        outer, handshake = protocol, None
        if ssl:
            outer, handshake = tls.wrap(loop, protocol, ssl, server_side=False, server_hostname=server_hostname,
                                        handshake_timeout=ssl_handshake_timeout, shutdown_timeout=ssl_shutdown_timeout)
        conn = runtime.stack.connect(address, port, runtime.now(), local_address=local[0], local_port=local[1] or None,
                                     config=config)
        connected = loop.create_future()
        transport = TcpTransport(runtime, conn, outer, connected)
        runtime.kick()
        try:
            await connected
            if handshake is not None:
                await handshake
        except OSError as e:
            transport.abort()
            errors.append(e)
            continue
        except BaseException:
            transport.abort()
            raise
        return (tls.app_transport(outer) if ssl else transport), protocol  # type: ignore[arg-type]
    raise errors[0] if len(errors) == 1 else OSError(f"Multiple exceptions: {', '.join(map(str, errors))}")


async def resolve(loop: asyncio.AbstractEventLoop, host, port: int) -> list[str]:
    """The addresses to try for `host`: itself if it is an IP address, else what getaddrinfo says."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OSError(f"getaddrinfo({host!r}) returned empty list")
    return addresses


async def open_connection(host, port: int, *, runtime, limit: int = 2**16, local_port: int | None = None,
                          **kwds):
    """Like asyncio.open_connection, over tcpwave: returns (StreamReader, StreamWriter). Takes
    create_connection's keywords (ssl=, server_hostname=, local_addr=, config=)."""
    loop = runtime.loop
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    if local_port is not None:
        kwds["local_addr"] = (None, local_port)
    transport, _ = await create_connection(lambda: protocol, host, port, runtime=runtime, **kwds)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


class ListeningSocket:
    """What Server.sockets holds, in place of a kernel socket: the listener's family and address
    (as asyncio's TransportSocket: what frameworks read to print or pick the address)."""

    type, proto = socket.SOCK_STREAM, socket.IPPROTO_TCP

    def __init__(self, listener):
        self._listener = listener
        self.family = socket.AF_INET6 if listener.address[0].version == 6 else socket.AF_INET

    def getsockname(self):
        addr, port = self._listener.address
        return (str(addr), port) if addr.version == 4 else (str(addr), port, 0, 0)

    def fileno(self) -> int:
        return -1  # no kernel socket

    def __repr__(self) -> str:
        return f"<tcpwave listening socket {self.getsockname()}>"


class Server:
    """What start_server and create_server return, as asyncio.Server: sockets, get_loop(),
    start_serving(), serve_forever(), is_serving(), close(), wait_closed(), `async with`."""

    def __init__(self, runtime, listener, protocol_factory: Callable[[], asyncio.BaseProtocol], *, ssl=None,
                 ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
                 start_serving: bool = True):
        self._runtime, self._listener, self._factory = runtime, listener, protocol_factory
        self._ssl, self._ssl_timeouts = ssl, (ssl_handshake_timeout, ssl_shutdown_timeout)
        # An Event, not a future: a cancelled waiter (serve_forever, wait_closed) cannot cancel it
        self._closed = asyncio.Event()
        self._serving = start_serving
        self._held: list = []  # accepted before start_serving() (the kernel's backlog, as asyncio's)
        self._serving_forever: asyncio.Future | None = None
        self.transports: set[TcpTransport] = set()
        self.sockets: tuple[ListeningSocket, ...] = (ListeningSocket(listener),)
        runtime.add_server(listener, self)

    @property
    def address(self):
        return (str(self._listener.address[0]), self._listener.address[1])

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._runtime.loop

    def _accepted(self, conn) -> TcpTransport | None:
        if not self._serving:
            self._held.append(conn)
            return None
        protocol = self._factory()
        if self._ssl:
            handshake_timeout, shutdown_timeout = self._ssl_timeouts
            protocol, handshake = tls.wrap(self._runtime.loop, protocol, self._ssl, server_side=True,
                                           handshake_timeout=handshake_timeout, shutdown_timeout=shutdown_timeout)
            tls.quiet(handshake)
        transport = TcpTransport(self._runtime, conn, protocol)
        self.transports.add(transport)  # the live ones: each removes itself when it ends
        transport.on_lost = self.transports.discard
        return transport

    def is_serving(self) -> bool:
        return self._serving and not self._closed.is_set()

    async def start_serving(self) -> None:
        """Start accepting (for start_serving=False): connections the stack completed meanwhile get
        their protocols now, as those in a kernel backlog would."""
        if self._serving or self._closed.is_set():
            return
        self._serving = True
        held, self._held = self._held, []
        for conn in held:
            transport = self._accepted(conn)
            if transport is not None:
                transport._on_event(ev.Connected())
                transport._deliver()
        await asyncio.sleep(0)

    def close(self) -> None:
        """Stop listening; connections already accepted go on. As asyncio's Server, a serve_forever()
        running ends with CancelledError."""
        if not self._closed.is_set():
            self._runtime.remove_server(self._listener)
            self._listener.close(self._runtime.now())
            for conn in self._held:  # accepted but never served: reset, as a closed kernel listener does
                conn.abort(self._runtime.now())
            self._held = []
            self._runtime.kick()
            self._closed.set()
        serving, self._serving_forever = self._serving_forever, None
        if serving is not None and not serving.done():
            serving.cancel()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def serve_forever(self) -> None:
        """Serve until close(), or until the task running it is cancelled, which closes the server."""
        if self._serving_forever is not None:
            raise RuntimeError("serve_forever() is already running for this server")
        if self._closed.is_set():
            raise RuntimeError("the server is closed")
        await self.start_serving()
        self._serving_forever = self._runtime.loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            self.close()
            raise
        finally:
            self._serving_forever = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()
        await self.wait_closed()


async def start_server(client_connected_cb, host=None, port: int = 0, *, runtime, limit: int = 2**16,
                       **kwds) -> Server:
    """Like asyncio.start_server, over tcpwave: client_connected_cb(reader, writer) per connection.
    Takes create_server's keywords (backlog=, ssl=, config=, start_serving=)."""
    loop = runtime.loop

    def streams() -> asyncio.StreamReaderProtocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(limit=limit, loop=loop), client_connected_cb,
                                            loop=loop)

    return await create_server(streams, host, port, runtime=runtime, **kwds)


async def create_server(protocol_factory: Callable[[], asyncio.BaseProtocol], host=None, port: int = 0, *,
                        runtime, backlog: int | None = None, ssl=None, config=None, start_serving: bool = True,
                        ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
                        reuse_address: bool | None = None, reuse_port: bool | None = None) -> Server:
    """Like loop.create_server, over tcpwave: protocol_factory() makes the protocol of each accepted
    connection (no task, no stream objects: the lighter way for a server that handles many).
    `config`: the listener's tcpwave Config, which its connections take. reuse_address and
    reuse_port are accepted and mean nothing here (a stack's TIME_WAIT never blocks a listen)."""
    if host is not None and not isinstance(host, str):
        hosts = list(host)  # asyncio takes a sequence of hosts; tcpwave listens on one address
        if len(hosts) != 1:
            raise ValueError("tcpwave listens on one address (or all, with host=None)")
        host = hosts[0]
    if host is not None:
        host = (await resolve(runtime.loop, host, port))[0]
    listener = runtime.stack.listen(port or 0, runtime.now(), address=host, backlog=backlog, config=config)
    return Server(runtime, listener, protocol_factory, ssl=ssl, ssl_handshake_timeout=ssl_handshake_timeout,
                  ssl_shutdown_timeout=ssl_shutdown_timeout, start_serving=start_serving)
