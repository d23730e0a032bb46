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
import errno
import socket as _socket
import threading

from ..core.errors import closed_error
from ..core.state import State
from ..stack import Stack
from .runtime import MemoryLink, Runtime, TunLink
from .streams import Server, open_connection, start_server


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
        """A stack on a new TUN device in the current network namespace (needs root), with the offloads
        `tcpwave serve` uses (checksums left to the kernel, ~64 KB super-segments) when the kernel
        grants them."""
        from ..drivers.tun import SEGMENT_MAX, TunDevice

        device = TunDevice(name, kernel, address, offload=True)
        stack_options.setdefault("checksum_offload", device.offload)
        stack_options.setdefault("segment_max", SEGMENT_MAX if device.offload else 0)
        try:
            net = cls(lambda net: TunLink(device), [address], **stack_options)
        except BaseException:
            device.close()
            raise
        net._device = device
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
        self._server: Server | None = None
        self._accepted: asyncio.Queue | None = None
        self._closed = False
        self._read_shut = asyncio.Event()  # shutdown(SHUT_RD)
        self._write_shut = False  # shutdown(SHUT_WR)
        self._error_reported = False  # the connection's error was raised once (then EOF / EPIPE)

    # ---- settings
    def settimeout(self, timeout: float | None) -> None:
        """None blocks; 0 makes the socket non-blocking (BlockingIOError when a call would wait)."""
        if timeout is not None and timeout < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = timeout

    def setblocking(self, flag: bool) -> None:
        self.settimeout(None if flag else 0.0)

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

        self._server, self._accepted = self._net.call(start(), self._wait)
        self._bound = self._server.address  # port 0: the one the stack picked, as getsockname() says

    def accept(self):
        if self._accepted is None:
            raise OSError("accept(): the socket is not listening")
        accepted = self._accepted

        async def get():
            if self._timeout == 0 and accepted.empty():
                raise BlockingIOError(errno.EAGAIN, "accept(): no connection waiting")
            return await accepted.get()

        reader, writer = self._net.call(get(), self._wait)
        conn = TcpSocket(self._net, reader, writer)
        return conn, writer.get_extra_info("peername")

    # ---- data
    def sendall(self, data) -> None:
        self._need_connection("sendall")
        data = bytes(data)

        async def send():
            self._check_writable()
            self._writer.write(data)
            await self._drain()

        self._net.call(send(), self._wait)

    def send(self, data) -> int:
        """Queue what fits in the send buffer (waiting for room unless non-blocking) and say how much:
        as socket.send, the rest is the caller's to send again."""
        self._need_connection("send")
        data = bytes(data)

        async def send():
            self._check_writable()
            transport = self._writer.transport
            high = transport.get_write_buffer_limits()[1]
            if transport.get_write_buffer_size() >= high:
                if self._timeout == 0:
                    raise BlockingIOError(errno.EAGAIN, "send(): the send buffer is full")
                await self._drain()
                self._check_writable()
            n = min(len(data), max(high - transport.get_write_buffer_size(), 1))
            self._writer.write(data[:n])
            return n

        return self._net.call(send(), self._wait)

    def recv(self, bufsize: int) -> bytes:
        self._need_connection("recv")
        return self._net.call(self._recv(bufsize), self._wait)

    def shutdown(self, how: int) -> None:
        self._need_connection("shutdown")

        async def shut():
            if how in (_socket.SHUT_RD, _socket.SHUT_RDWR):
                self._read_shut.set()  # a recv() waiting returns end-of-file (as Linux)
            if how in (_socket.SHUT_WR, _socket.SHUT_RDWR) and not self._write_shut:
                self._write_shut = True
                self._writer.write_eof()

        self._net.call(shut(), self._wait)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def close():
            if self._writer is not None:
                self._writer.close()  # a recv() waiting in another thread sees end-of-file
            if self._server is not None:
                self._server.close()

        self._net.call(close(), 5)

    # ---- on the network's loop
    @property
    def _wait(self) -> float | None:
        """How long a call may wait: non-blocking calls (timeout 0) decide on the loop, not by timing out."""
        return None if self._timeout == 0 else self._timeout

    async def _recv(self, bufsize: int) -> bytes:
        reader = self._reader
        try:
            if reader._buffer or reader.at_eof() or reader.exception() is not None:
                return await reader.read(bufsize)
            if self._read_shut.is_set():
                return b""  # SHUT_RD: what was queued has been read; end-of-file now, as Linux
            if self._timeout == 0:
                raise BlockingIOError(errno.EAGAIN, "recv(): no data yet")
            read = asyncio.ensure_future(reader.read(bufsize))
            shut = asyncio.ensure_future(self._read_shut.wait())
            try:
                await asyncio.wait((read, shut), return_when=asyncio.FIRST_COMPLETED)
            finally:
                shut.cancel()
                if not read.done():
                    read.cancel()
            return read.result() if read.done() and not read.cancelled() else b""
        except ConnectionError:
            if self._error_reported:
                return b""  # the error was reported once; after it, reads see end-of-file (as Linux)
            self._error_reported = True
            raise

    def _check_writable(self) -> None:
        """Raise what send() on a socket would: the connection's error once (ECONNRESET, ...), then
        EPIPE, as Linux (api-reset-then-epipe.pkt); EPIPE after shutdown(SHUT_WR) or a local close."""
        conn = self._writer.get_extra_info("tcpwave_connection")
        if self._reader.exception() is not None or conn.state is State.CLOSED:
            error = closed_error("write", conn.state, conn.close_reason)
            if isinstance(error, OSError) and not self._error_reported:
                self._error_reported = True
                raise error
            raise BrokenPipeError(errno.EPIPE, "write(): broken pipe")
        if self._write_shut or self._writer.transport.is_closing():
            raise BrokenPipeError(errno.EPIPE, "write(): broken pipe")

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except ConnectionError:
            self._check_writable()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _need_connection(self, call: str) -> None:
        if self._closed:
            raise OSError(f"{call}(): the socket is closed")
        if self._writer is None:
            raise OSError(f"{call}(): the socket is not connected")

