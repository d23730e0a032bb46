"""TcpSocket: the socket module's TCP socket, on a tcpwave Network (blocking.py) whose event loop runs
in a background thread. Each call runs on that loop (the asyncio streams API underneath) and waits for
it; settimeout() bounds the wait with TimeoutError, 0 makes calls raise BlockingIOError instead of
waiting. Options are core/sockopts.py's (as the packetdrill runner applies them); fileno() is a
descriptor for selectors (readiness.py)."""

import asyncio
import concurrent.futures
import errno
import socket as _socket
from typing import Any, Protocol

from ..core.config import Config
from ..core.errors import closed_error
from ..core.state import State
from . import sockopt
from .readiness import Readiness
from .streams import Server, open_connection, start_server

_DONTWAIT = getattr(_socket, "MSG_DONTWAIT", 0)


class _Network(Protocol):
    """What a socket needs of its Network (blocking.py)."""

    runtime: Any
    _loop: asyncio.AbstractEventLoop

    def call(self, coro: Any, timeout: float | None) -> Any: ...


class TcpSocket:
    """A TCP socket on a Network, with the socket module's methods and errors (the differences are
    listed in docs/blocking-socket.md)."""

    type = _socket.SOCK_STREAM
    proto = _socket.IPPROTO_TCP

    def __init__(self, net: _Network, reader: asyncio.StreamReader | None = None,
                 writer: asyncio.StreamWriter | None = None, options: dict[str, int] | None = None) -> None:
        self._net = net
        self._reader: Any = reader  # (typed loosely: set once connected, used only then)
        self._writer: Any = writer
        self._timeout: float | None = _socket.getdefaulttimeout()
        self._bound: tuple | None = None
        self._server: Server | None = None
        self._accepted: asyncio.Queue | None = None
        self._closed = False
        self._close_wanted = False  # close() while makefile() objects are open: closed when they are
        self._io_refs = 0  # (the name socket.SocketIO and socket.makefile use)
        self._read_shut = asyncio.Event()  # shutdown(SHUT_RD), or close() from another thread
        self._write_shut = False  # shutdown(SHUT_WR)
        self._error_reported = False  # the connection's error was raised once (then EOF / EPIPE)
        self._config: Config = net.runtime.stack.config  # with the options set before there was a connection
        self._options: dict[str, int] = dict(options or {})  # ... replayed on the connection when it comes
        self._reuse: dict[str, int] = {}
        self._linger = (0, 0)
        self._connecting: concurrent.futures.Future | None = None  # a non-blocking connect() under way
        self._connect_error: OSError | None = None  # its failure, for SO_ERROR and the next connect()
        self._ready: Readiness | None = None  # fileno()'s descriptor, made on first use
        self._draining: set[asyncio.Future] = set()  # sends waiting for room (close() ends them)
        if writer is not None:
            self._watch()

    @property
    def family(self) -> int:
        name = self.getsockname() or ("0.0.0.0", 0)
        return _socket.AF_INET6 if ":" in str(name[0]) else _socket.AF_INET

    # ---- settings
    def settimeout(self, timeout: float | None) -> None:
        """None blocks; 0 makes the socket non-blocking (BlockingIOError when a call would wait)."""
        if timeout is not None and timeout < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = timeout

    def setblocking(self, flag: bool) -> None:
        self.settimeout(None if flag else 0.0)

    def getblocking(self) -> bool:
        return self._timeout != 0

    def gettimeout(self) -> float | None:
        return self._timeout

    def getpeername(self) -> tuple:
        self._need_connection("getpeername")
        return self._writer.get_extra_info("peername")  # type: ignore[union-attr]

    def getsockname(self) -> tuple | None:
        if self._writer is not None:
            return self._writer.get_extra_info("sockname")
        return self._bound

    def setsockopt(self, level: int, optname: int, value: int | bytes) -> None:
        """The common options (SO_KEEPALIVE, SO_RCVBUF, SO_SNDBUF, SO_REUSEADDR, SO_REUSEPORT, SO_LINGER,
        TCP_NODELAY, TCP_USER_TIMEOUT, TCP_KEEPIDLE/INTVL/CNT); others raise ENOPROTOOPT."""
        self._check_open("setsockopt")
        name = sockopt.option_name(level, optname)
        if name == "SO_LINGER":
            self._linger = sockopt.linger(value)
            return
        if name in ("SO_ERROR", "SO_TYPE", "TCP_INFO"):
            raise OSError(errno.ENOPROTOOPT, "Protocol not available")
        number = sockopt.as_int(value)
        if name in ("SO_REUSEADDR", "SO_REUSEPORT"):
            self._reuse[name] = int(bool(number))

        async def apply() -> None:
            self._config = sockopt.set_common(self._config, self._connection(), name, number, self._net.runtime.now())
            self._options[name] = number
            self._net.runtime.kick()  # (a bigger window is announced now)

        self._net.call(apply(), 5)

    def getsockopt(self, level: int, optname: int, buflen: int | None = None) -> int | bytes:
        """As socket.getsockopt: an int, or with buflen the option's bytes (TCP_INFO: Linux's struct
        tcp_info)."""
        self._check_open("getsockopt")
        name = sockopt.option_name(level, optname)

        async def get() -> int | bytes:
            if name == "SO_ERROR":
                return self._take_error()
            if name == "SO_TYPE":
                return _socket.SOCK_STREAM
            if name == "SO_LINGER":
                return sockopt.pack_linger(*self._linger) if buflen else self._linger[0]
            if name in ("SO_REUSEADDR", "SO_REUSEPORT"):
                return self._reuse.get(name, 0)
            conn = self._connection()
            if name == "TCP_INFO":
                if conn is None and self._server is not None:
                    conn = self._server._listener.tcb
                return sockopt.tcp_info_bytes(self._config, conn, self._net.runtime.now())
            return sockopt.get_common(self._config, conn, name)

        return sockopt.reply(self._net.call(get(), 5), buflen)

    # ---- client side
    def connect(self, address: tuple) -> None:
        """As socket.connect; non-blocking (timeout 0), BlockingIOError(EINPROGRESS) and the connection
        is made in the background: fileno() turns writable when it is done, SO_ERROR says how it went."""
        self._check_open("connect")
        if self._writer is not None:
            raise OSError(errno.EISCONN, "Transport endpoint is already connected")
        if self._server is not None:
            raise OSError(errno.EINVAL, "connect(): the socket is listening")
        if self._connecting is not None:
            if not self._connecting.done():
                raise BlockingIOError(errno.EALREADY, "Operation already in progress")
            self._connecting = None
            error, self._connect_error = self._connect_error, None
            if error is not None:
                raise error
            raise OSError(errno.EISCONN, "Transport endpoint is already connected")
        host, port = address[:2]
        future = asyncio.run_coroutine_threadsafe(self._open(host, port), self._net._loop)
        if self._timeout == 0:
            self._connecting = future
            raise BlockingIOError(errno.EINPROGRESS, "Operation now in progress")
        try:
            future.result(self._timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError("timed out") from None
        finally:
            self._connect_error = None  # raised here, not kept for SO_ERROR

    def connect_ex(self, address: tuple) -> int:
        """As socket.connect_ex: connect(), with the error number returned instead of raised (0: done)."""
        try:
            self.connect(address)
        except TimeoutError:
            return errno.EAGAIN
        except OSError as e:
            return e.errno or errno.EIO
        return 0

    async def _open(self, host: str, port: int) -> None:
        local_port = self._bound[1] if self._bound else None
        try:
            self._reader, self._writer = await open_connection(host, port, runtime=self._net.runtime,
                                                               local_port=local_port)
        except OSError as e:
            self._connect_error = e
            self._update_ready()
            raise
        conn, now = self._connection(), self._net.runtime.now()
        for name, value in self._options.items():  # the options set before: on the connection now
            self._config = sockopt.set_common(self._config, conn, name, value, now)
        self._watch()
        self._update_ready()

    # ---- server side
    def bind(self, address: tuple) -> None:
        self._check_open("bind")
        self._bound = (address[0] or None, address[1])

    def listen(self, backlog: int = 128) -> None:
        self._check_open("listen")
        if self._bound is None:
            raise OSError("listen(): bind() first")
        self._accepted = None

        async def start():
            queue: asyncio.Queue = asyncio.Queue()

            async def on_connection(reader, writer):
                await queue.put((reader, writer))
                self._update_ready()

            server = await start_server(on_connection, self._bound[0], self._bound[1],
                                        runtime=self._net.runtime, backlog=backlog)
            return server, queue

        self._server, self._accepted = self._net.call(start(), self._wait)
        self._bound = self._server.address  # port 0: the one the stack picked, as getsockname() says

    def accept(self) -> tuple["TcpSocket", tuple]:
        """As socket.accept; the new socket has the options set on this one. close() from another
        thread ends a blocked accept() with EBADF."""
        self._check_open("accept")
        if self._accepted is None:
            raise OSError(errno.EINVAL, "accept(): the socket is not listening")
        accepted = self._accepted

        async def get():
            if self._timeout == 0 and accepted.empty():
                raise BlockingIOError(errno.EAGAIN, "accept(): no connection waiting")
            item = await accepted.get()
            self._update_ready()
            if item is None:
                raise OSError(errno.EBADF, "accept(): the socket was closed")
            reader, writer = item
            conn, now = writer.get_extra_info("tcpwave_connection"), self._net.runtime.now()
            for name, value in self._options.items():
                sockopt.set_common(self._config, conn, name, value, now)
            return reader, writer

        reader, writer = self._net.call(get(), self._wait)
        conn = TcpSocket(self._net, reader, writer, self._options)
        return conn, writer.get_extra_info("peername")

    # ---- data
    def sendall(self, data: bytes | bytearray | memoryview, flags: int = 0) -> None:
        self._need_connection("sendall")
        data = bytes(data)

        async def send():
            self._check_writable()
            self._writer.write(data)
            await self._drain()

        self._net.call(self._updating(send()), self._wait)

    def send(self, data: bytes | bytearray | memoryview, flags: int = 0) -> int:
        """Queue what fits in the send buffer (waiting for room unless non-blocking) and say how much:
        as socket.send, the rest is the caller's to send again."""
        self._need_connection("send")
        data = bytes(data)
        nonblocking = self._timeout == 0 or bool(flags & _DONTWAIT)

        async def send():
            self._check_writable()
            transport = self._writer.transport
            high = transport.get_write_buffer_limits()[1]
            if transport.get_write_buffer_size() >= high:
                if nonblocking:
                    raise BlockingIOError(errno.EAGAIN, "send(): the send buffer is full")
                await self._drain()
                self._check_writable()
            n = min(len(data), max(high - transport.get_write_buffer_size(), 1))
            self._writer.write(data[:n])
            return n

        return self._net.call(self._updating(send()), None if nonblocking else self._timeout)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self._need_connection("recv")
        nonblocking = self._timeout == 0 or bool(flags & _DONTWAIT)
        return self._net.call(self._updating(self._recv(bufsize, nonblocking)),
                              None if nonblocking else self._timeout)

    def recv_into(self, buffer: bytearray | memoryview, nbytes: int = 0, flags: int = 0) -> int:
        """As socket.recv_into: up to nbytes (or len(buffer)) bytes into buffer; how many."""
        view = memoryview(buffer).cast("B")
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        data = self.recv(nbytes or len(view), flags)
        view[:len(data)] = data
        return len(data)

    def makefile(self, mode: str = "r", buffering: int | None = None, *, encoding: str | None = None,
                 errors: str | None = None, newline: str | None = None) -> Any:
        """As socket.makefile (the standard library's own code, over this socket's recv_into/send)."""
        makefile: Any = _socket.socket.makefile
        return makefile(self, mode, buffering, encoding=encoding, errors=errors, newline=newline)

    def _decref_socketios(self) -> None:
        self._io_refs -= 1
        if self._close_wanted and self._io_refs <= 0:
            self.close()

    def fileno(self) -> int:
        """A descriptor for selectors/select/poll: readable when recv() or accept() would not block,
        writable when send() would not (or a non-blocking connect() has finished). Not for I/O."""
        if self._closed:
            return -1
        if self._ready is None:
            ready = Readiness()

            async def start() -> None:
                self._ready = ready
                self._update_ready()

            self._net.call(start(), 5)
        return self._ready.fileno()  # type: ignore[union-attr]

    def shutdown(self, how: int) -> None:
        self._need_connection("shutdown")

        async def shut():
            if how in (_socket.SHUT_RD, _socket.SHUT_RDWR):
                self._read_shut.set()  # a recv() waiting returns end-of-file (as Linux)
            if how in (_socket.SHUT_WR, _socket.SHUT_RDWR) and not self._write_shut:
                self._write_shut = True
                self._writer.write_eof()

        self._net.call(self._updating(shut()), self._wait)

    def close(self) -> None:
        """Close; with makefile() objects still open, once they are closed (as socket.close). A call
        blocked in another thread ends: recv() with end-of-file, accept(), send() and sendall() with
        EBADF. SO_LINGER on with 0 seconds resets the connection."""
        if self._closed:
            return
        if self._io_refs > 0:
            self._close_wanted = True
            return
        self._closed = True

        async def close():
            self._read_shut.set()
            for wait in self._draining:
                wait.cancel()
            if self._writer is not None:
                if self._linger[0] and self._linger[1] == 0:
                    self._writer.transport.abort()
                else:
                    self._writer.close()
            if self._server is not None:
                self._server.close()
                self._accepted.put_nowait(None)  # type: ignore[union-attr]
            if self._connecting is not None:
                self._connecting.cancel()
            if self._ready is not None:
                self._ready.close()
                self._ready = None

        self._net.call(close(), 5)

    def detach(self) -> int:
        raise OSError(errno.EOPNOTSUPP, "detach(): a tcpwave socket has no kernel descriptor")

    # ---- on the network's loop
    @property
    def _wait(self) -> float | None:
        """How long a call may wait: non-blocking calls (timeout 0) decide on the loop, not by timing out."""
        return None if self._timeout == 0 else self._timeout

    def _connection(self):
        return self._writer.get_extra_info("tcpwave_connection") if self._writer is not None else None

    async def _updating(self, coro):
        try:
            return await coro
        finally:
            self._update_ready()

    def _watch(self) -> None:
        """Keep fileno()'s readiness up to date as data, end-of-file, errors and buffer room come."""
        protocol = self._writer.transport._protocol  # type: ignore[union-attr]
        for obj, names in ((self._reader, ("feed_data", "feed_eof", "set_exception")),
                           (protocol, ("pause_writing", "resume_writing", "connection_lost"))):
            for name in names:
                setattr(obj, name, _then(getattr(obj, name), self._update_ready))

    def _update_ready(self) -> None:
        if self._ready is None:
            return
        if self._accepted is not None:
            self._ready.set(not self._accepted.empty(), False)
        elif self._writer is None:
            failed = self._connect_error is not None
            self._ready.set(failed, failed)
        else:
            reader, transport = self._reader, self._writer.transport
            broken = reader.exception() is not None
            readable = bool(reader._buffer) or reader.at_eof() or broken or self._read_shut.is_set()
            writable = (broken or self._write_shut or transport.is_closing()
                        or transport.get_write_buffer_size() < transport.get_write_buffer_limits()[1])
            self._ready.set(readable, writable)

    def _take_error(self) -> int:
        """SO_ERROR: the pending error, once (a failed connect, or the connection's reset or timeout)."""
        if self._connect_error is not None:
            error, self._connect_error = self._connect_error, None
            self._connecting = None
            return error.errno or errno.EIO
        reader = self._reader
        if reader is not None and reader.exception() is not None and not self._error_reported:
            exc = reader.exception()
            if isinstance(exc, OSError) and exc.errno:
                self._error_reported = True
                return exc.errno
        return 0

    async def _recv(self, bufsize: int, nonblocking: bool) -> bytes:
        reader = self._reader
        try:
            if reader._buffer or reader.at_eof() or reader.exception() is not None:
                return await reader.read(bufsize)
            if self._read_shut.is_set():
                return b""  # SHUT_RD: what was queued has been read; end-of-file now, as Linux
            if nonblocking:
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
        """Wait for room in the send buffer; close() from another thread ends the wait with EBADF."""
        wait = asyncio.ensure_future(self._writer.drain())
        self._draining.add(wait)
        try:
            await wait
        except ConnectionError:
            self._check_writable()
            raise
        except asyncio.CancelledError:
            if wait.cancelled() and self._closed:
                raise OSError(errno.EBADF, "send(): the socket was closed") from None
            raise
        finally:
            self._draining.discard(wait)

    def __enter__(self) -> "TcpSocket":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self, call: str) -> None:
        if self._closed:
            raise OSError(errno.EBADF, f"{call}(): the socket is closed")

    def _need_connection(self, call: str) -> None:
        self._check_open(call)
        if self._writer is None:
            raise OSError(f"{call}(): the socket is not connected")


def _then(method, after):
    """method, followed by after() (even when it raises)."""
    def hooked(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        finally:
            after()

    return hooked
