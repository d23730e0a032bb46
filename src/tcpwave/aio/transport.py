"""The asyncio.Transport of a tcpwave connection: what protocols (Protocol, BufferedProtocol, the
standard library's SSLProtocol) are given, with asyncio's flow control, close and abort semantics.

Peer aborts reach the application as the OS errors a socket would raise: ConnectionResetError,
ConnectionRefusedError, TimeoutError.
"""

import asyncio
import logging
from asyncio import constants, transports
from collections.abc import Callable

from ..core import events as ev
from ..core.errors import closed_error
from ..core.state import State
from . import trim

_CAN_SEND = (State.ESTABLISHED, State.CLOSE_WAIT)
_WARN_DROPPED_WRITES = 5  # asyncio's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES


class TcpTransport(transports._FlowControlMixin):  # (what loop.sendfile's fallback requires)
    _start_tls_compatible = True  # loop.start_tls() may wrap it (asyncio's sslproto over any transport)
    _sendfile_compatible = constants._SendfileMode.FALLBACK  # loop.sendfile(): read and write() in chunks

    def __init__(self, runtime, conn, protocol, connected: asyncio.Future | None = None):
        super().__init__(None, runtime.loop)
        self._runtime, self._conn, self._protocol = runtime, conn, protocol
        self._connected = connected  # the client's open_connection() waits on it
        self._pending = bytearray()  # accepted by write(), not yet taken by the connection
        self._high, self._low = 64 * 1024, 16 * 1024
        self._protocol_paused = False
        self._reading_paused = False
        self._eof_wanted = False  # write_eof() once the pending bytes are out
        self._closing = False
        self._lost = False
        self._eof_seen = False
        self._eof_told = False
        self._fatal: BaseException | None = None  # the error _force_close() was given
        self._dropped_writes = 0  # write() calls after close() or the connection's end
        # the TimeWait/Closed event, kept until the unread data has been delivered
        self._ended: ev.TimeWait | ev.Closed | None = None
        # called with the transport once it is done (a Server forgets it then)
        self.on_lost: Callable[[TcpTransport], None] | None = None
        runtime.register(conn, self)

    # ---- asyncio.BaseTransport / WriteTransport / ReadTransport
    def get_extra_info(self, name, default=None):
        conn = self._conn
        if name == "peername":
            return (str(conn.remote[0]), conn.remote[1])
        if name == "sockname":
            return (str(conn.local[0]), conn.local[1])
        if name == "tcpwave_connection":
            return conn
        return default  # (no "socket": there is no kernel socket; aiohttp and others then skip it)

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._closing or self._lost or self._ended is not None

    def write(self, data) -> None:
        if self._eof_wanted:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self._closing or self._lost or self._ended is not None:
            # as asyncio's socket transports: dropped once the transport is closed or the connection
            # is gone, with a warning from the fifth such write on
            self._dropped_writes += 1
            if self._dropped_writes >= _WARN_DROPPED_WRITES:
                logging.getLogger("asyncio").warning("socket.send() raised exception.")
            return
        self._pending += data
        self._push()

    def writelines(self, list_of_data) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._eof_wanted or self._closing or self._lost or self._ended is not None:
            return
        self._eof_wanted = True
        self._push()

    def close(self) -> None:
        """Flush what is buffered, then close both directions (a FIN; a RST if data is left unread)."""
        if self._closing or self._lost:
            return
        self._closing = True
        if self._ended is not None:  # the connection is over; unread data goes with the transport
            self._finish()
            return
        self._push()

    def abort(self) -> None:
        self._closing = True
        if self._ended is not None:
            self._finish()
        elif not self._lost:
            self._conn.abort(self._runtime.now())
            self._runtime.kick()

    def _force_close(self, exc) -> None:
        """As asyncio's socket transports (SSLProtocol calls it on a fatal TLS error): reset the
        connection, and connection_lost(exc) with that error."""
        self._fatal = exc
        self.abort()

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def get_write_buffer_limits(self):
        return (self._low, self._high)

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low
        self._check_pause()

    def pause_reading(self) -> None:
        self._reading_paused = True  # unread data stays in the connection: the window closes

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._runtime.loop.call_soon(self._deliver)

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._lost

    # ---- events from the runtime
    def _on_event(self, event) -> None:
        if isinstance(event, ev.Connected):
            self._protocol.connection_made(self)
            if self._connected is not None and not self._connected.done():
                self._connected.set_result(None)
            self._push()
        elif isinstance(event, (ev.DataReadable, ev.EndOfStream)):
            if isinstance(event, ev.EndOfStream):
                self._eof_seen = True
            self._deliver()
        elif isinstance(event, ev.SendSpace):
            self._push()
        elif isinstance(event, (ev.TimeWait, ev.Closed)):
            # TIME_WAIT: both directions are done; the stack keeps the 4-tuple, the application is free.
            # Data still unread (reading paused) is delivered first; connection_lost comes after it.
            if self._lost or self._ended is not None:
                return
            self._ended = event
            self._runtime.unregister(self._conn)
            connected = self._connected
            if connected is not None and not connected.done():
                self._lost = True
                reason = getattr(event, "reason", ev.NORMAL)
                exc = closed_error("connect", self._conn.state, reason) if getattr(reason, "error", None) else None
                connected.set_exception(exc or ConnectionError("connection closed before it was established"))
                return
            self._deliver()

    def _finish(self, dropped: int = 0) -> None:
        """The connection has ended and nothing is left to deliver (or the application closed): tell
        the protocol, with the OS error for an abort by the peer. `dropped`: unread bytes let go."""
        if self._lost:
            return
        self._lost = True
        reason = getattr(self._ended, "reason", ev.NORMAL)
        exc: BaseException | None = self._fatal
        if exc is None and getattr(reason, "error", None):
            exc = closed_error("read", self._conn.state, reason)
        self._protocol_paused = False
        dropped += len(self._pending)
        self._pending = bytearray()  # nothing more can be sent: let the memory go with the connection
        if dropped:
            trim.dropped(self._runtime.loop, dropped)
        if self.on_lost is not None:
            self.on_lost(self)
        protocol, self._protocol = self._protocol, None  # (as asyncio's transports: no cycle with the
        protocol.connection_lost(exc)  # protocol, so that both go as soon as the application lets go)

    def _deliver(self) -> None:
        conn, now = self._conn, self._runtime.now()
        if self._lost:
            return
        if self._ended is not None and self._reading_paused and conn.readable and self._unanswerable():
            unread = conn.receive(now=now, zero_copy=True)  # dropped: nobody can answer it now
            self._finish(len(unread))
            self._runtime.kick()
            return
        while not self._reading_paused and conn.readable and self._protocol is not None:
            if isinstance(self._protocol, asyncio.BufferedProtocol):
                self._fill(conn.receive(now=now, zero_copy=True))
            else:
                self._protocol.data_received(conn.receive(now=now, zero_copy=True))
        if self._eof_seen and not self._eof_told and not conn.readable and not self._reading_paused:
            self._eof_told = True
            keep_open = self._protocol.eof_received()
            if not keep_open and self._ended is None:
                self.close()
        if self._ended is not None and not self._lost and not conn.readable:
            self._finish()
        self._runtime.kick()

    def _fill(self, data) -> None:
        """BufferedProtocol: copy into the buffers it hands out, as asyncio's transports do."""
        view = memoryview(data)
        while view:
            buf = memoryview(self._protocol.get_buffer(len(view)))
            n = min(len(buf), len(view))
            if not n:
                raise RuntimeError("get_buffer() returned an empty buffer")
            buf[:n] = view[:n]
            self._protocol.buffer_updated(n)
            view = view[n:]
            if self._protocol is None:
                return

    def _unanswerable(self) -> bool:
        """Has the connection ended so that data still unread (reading paused) can be dropped: the
        application closed or aborted it, or the peer or the network did (reset, timeout)? Then no
        resume_reading() may ever come (an echo paused until the peer takes its echo, say), and the
        transport must not wait for one. After a normal end the application may still read it."""
        return self._closing or getattr(getattr(self._ended, "reason", None), "error", None) is not None

    def _push(self) -> None:
        """Move pending bytes into the connection; then the FIN or the close, once nothing is pending."""
        conn, now = self._conn, self._runtime.now()
        if self._lost or conn.state not in _CAN_SEND and conn.state is not State.SYN_SENT:
            if self._closing and not self._lost and conn.state is not State.SYN_SENT:
                conn.close(now)
                self._release()
            self._runtime.kick()
            return
        if self._closing and conn.readable and conn.state in _CAN_SEND:
            # close() with data unread resets at once, as Linux's does: what is still to send could
            conn.close(now)  # only wait for a peer that may never take it (_finish drops it)
        elif conn.state in _CAN_SEND:
            while self._pending:
                n = conn.send(memoryview(self._pending)[:256 * 1024], now)
                if not n:
                    break
                del self._pending[:n]
            if not self._pending:
                if self._closing:
                    conn.close(now)
                    self._release()
                elif self._eof_wanted:
                    conn.shutdown(now)
        self._check_pause()
        self._runtime.kick()

    def _release(self) -> None:
        """close() has handed everything to the connection, as a socket's close() hands it to the
        kernel: the stack finishes the close on its own (FIN, the peer's FIN, TIME_WAIT) and the
        application is done. So, as asyncio's transports, connection_lost() comes now, and with it
        StreamWriter.wait_closed(): it does not wait for the peer's FIN."""
        if self._ended is None:
            self._runtime.unregister(self._conn)
            self._runtime.loop.call_soon(self._finish)

    def _check_pause(self) -> None:
        size = len(self._pending)
        if not self._protocol_paused and size > self._high:
            self._protocol_paused = True
            self._protocol.pause_writing()
        elif self._protocol_paused and size <= self._low:
            self._protocol_paused = False
            self._protocol.resume_writing()
