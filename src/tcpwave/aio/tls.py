"""TLS over a tcpwave transport: the standard library's own asyncio.sslproto.SSLProtocol (the ssl
module's memory BIO, as asyncio's socket transports use it), stacked on a TcpTransport. So TLS 1.3,
certificates, SNI and ALPN are exactly the standard library's; tcpwave carries the bytes."""

import asyncio
import ssl as _ssl
from asyncio import sslproto


def wrap(loop: asyncio.AbstractEventLoop, app_protocol: asyncio.BaseProtocol, ssl, *, server_side: bool,
         server_hostname: str | None = None, handshake_timeout=None,
         shutdown_timeout=None) -> tuple[sslproto.SSLProtocol, asyncio.Future]:
    """The protocol to give the TCP transport, and a future done once the handshake is (or failed).
    `ssl`: an SSLContext, or True for the default context (client side), as asyncio takes it."""
    if not isinstance(ssl, _ssl.SSLContext):
        if server_side or ssl is not True:
            raise TypeError(f"ssl is expected to be an ssl.SSLContext (or True for a client), got {ssl!r}")
        ssl = None  # SSLProtocol makes the default client context
    waiter = loop.create_future()
    protocol = sslproto.SSLProtocol(loop, app_protocol, ssl, waiter, server_side, server_hostname,
                                    ssl_handshake_timeout=handshake_timeout, ssl_shutdown_timeout=shutdown_timeout)
    return protocol, waiter


def app_transport(protocol: sslproto.SSLProtocol) -> asyncio.Transport:
    """The transport the application writes to: it encrypts into the TCP transport below."""
    return protocol._app_transport


def quiet(waiter: asyncio.Future) -> None:
    """A server's handshake that failed: SSLProtocol has reported it and closed the connection; the
    waiter nobody awaits must not also log "exception was never retrieved"."""
    waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
