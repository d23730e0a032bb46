"""A blocking, socket-like API for scripts, on a tcpwave stack running in a background thread.

    net = Network.memory_pair()[0]            # or Network.on_tun("tw0", "192.0.2.1/24", "192.0.2.2")
    with net.socket() as s:
        s.settimeout(5)
        s.connect(("192.0.2.2", 7))
        s.sendall(b"hello")
        s.shutdown(socket.SHUT_WR)
        print(s.recv(100))

Each call runs on the network's event loop (the asyncio streams API underneath) and waits for it;
settimeout() bounds that wait with TimeoutError, as socket.settimeout does.
"""

import asyncio
import socket as _socket
import threading

from ..stack import Stack
from .runtime import MemoryLink, Runtime, TunLink
from .streams import open_connection, start_server


class Network:
    """One stack on one link, driven by an event loop in a daemon thread."""

    def __init__(self, make_link, addresses, **stack_options):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcpwave-network", daemon=True)
        self._thread.start()
        self._device = None

        async def setup():
            link = make_link(self)
            self.runtime = Runtime(Stack(addresses, **stack_options), link)

        self.call(setup(), None)

    @classmethod
    def memory_pair(cls, a="192.0.2.1", b="192.0.2.2", delay: float = 0.001, **stack_options):
        """Two networks joined by an in-memory link (each with its own loop thread). With a tracer, each
        side's events carry its own address as `host` (unless `host` is given), so a trace can tell
        them apart."""
        first = cls(lambda net: MemoryLink(net._loop, delay), [a], **{"host": a, **stack_options})
        second = cls(lambda net: MemoryLink(net._loop, delay), [b], **{"host": b, **stack_options})
        MemoryLink.join(first.runtime.link, second.runtime.link)
        return first, second

    @classmethod
    def on_tun(cls, name: str, kernel: str, address: str, **stack_options):
        """A stack on a new TUN device in the current network namespace (needs root)."""
        from ..drivers.tun import TunDevice

        holder = {}

        def make_link(net):
            holder["device"] = TunDevice(name, kernel, address)
            return TunLink(holder["device"])

        net = cls(make_link, [address], **stack_options)
        net._device = holder["device"]
        return net

    def call(self, coro, timeout):
        """Run coro on the network's loop and wait for it (at most `timeout` seconds)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError("timed out") from None

    def socket(self) -> "TcpSocket":
        return TcpSocket(self)

    def close(self) -> None:
        async def stop():
            self.runtime.close()

        self.call(stop(), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if self._device is not None:
            self._device.close()


class TcpSocket:
    def __init__(self, net: Network, reader=None, writer=None):
        self._net = net
        self._reader, self._writer = reader, writer
        self._timeout: float | None = None
        self._bound: tuple | None = None
        self._server = None
        self._accepted: asyncio.Queue | None = None
        self._closed = False

    # ---- settings
    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def getpeername(self):
        self._need_connection("getpeername")
        return self._writer.get_extra_info("peername")

    def getsockname(self):
        if self._writer is not None:
            return self._writer.get_extra_info("sockname")
        return self._bound

    # ---- client side
    def connect(self, address) -> None:
        if self._writer is not None or self._server is not None:
            raise OSError("connect(): the socket is already connected or listening")
        host, port = address[:2]
        local_port = self._bound[1] if self._bound else None
        self._reader, self._writer = self._net.call(
            open_connection(host, port, runtime=self._net.runtime, local_port=local_port), self._timeout)

    # ---- server side
    def bind(self, address) -> None:
        self._bound = (address[0] or None, address[1])

    def listen(self, backlog: int = 128) -> None:
        if self._bound is None:
            raise OSError("listen(): bind() first")
        self._accepted = None

        async def start():
            queue: asyncio.Queue = asyncio.Queue()

            async def on_connection(reader, writer):
                await queue.put((reader, writer))

            server = await start_server(on_connection, self._bound[0], self._bound[1],
                                        runtime=self._net.runtime, backlog=backlog)
            return server, queue

        self._server, self._accepted = self._net.call(start(), self._timeout)

    def accept(self):
        if self._accepted is None:
            raise OSError("accept(): the socket is not listening")
        reader, writer = self._net.call(self._accepted.get(), self._timeout)
        conn = TcpSocket(self._net, reader, writer)
        return conn, writer.get_extra_info("peername")

    # ---- data
    def sendall(self, data) -> None:
        self._need_connection("sendall")

        async def send():
            self._writer.write(bytes(data))
            await self._writer.drain()

        self._net.call(send(), self._timeout)

    def send(self, data) -> int:
        self.sendall(data)
        return len(data)

    def recv(self, bufsize: int) -> bytes:
        self._need_connection("recv")
        return self._net.call(self._reader.read(bufsize), self._timeout)

    def shutdown(self, how: int) -> None:
        self._need_connection("shutdown")
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR):
            async def eof():
                self._writer.write_eof()

            self._net.call(eof(), self._timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def close():
            if self._writer is not None:
                self._writer.close()
            if self._server is not None:
                self._server.close()

        self._net.call(close(), 5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _need_connection(self, call: str) -> None:
        if self._closed:
            raise OSError(f"{call}(): the socket is closed")
        if self._writer is None:
            raise OSError(f"{call}(): the socket is not connected")

