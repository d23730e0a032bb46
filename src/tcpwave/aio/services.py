"""Small services for `tcpwave serve`: echo, discard and hash as asyncio Protocols; source as an
asyncio streams handler, handler(reader, writer) (HTTP is in httpd.py).

Each keeps what it holds per connection bounded: echo stops reading while more than the transport's
high-water mark (64 KB) waits to go out, hash while more than HashSink.HIGH waits to be hashed, and
discard keeps nothing. And none keeps a connection forever: one on which nothing moves for
`idle_timeout` seconds (no byte received, none of what waits to go out taken by the peer) is closed
with a FIN, or reset if the peer still has not taken what was sent to it (a client that never reads
would otherwise hold its echo for good). Checked once per `idle_timeout`, so a connection goes
between one and two idle_timeouts after its last progress."""

import asyncio
import hashlib
import queue
import threading

from . import log

CHUNK = 64 * 1024


IDLE_TIMEOUT = 60.0  # seconds, as serve http's idle limit


class Service(asyncio.Protocol):
    """A service as an asyncio Protocol: no task and no stream objects per connection (a server under
    connection churn pays for each). A peer's abort ends the connection with one line on stderr.

    The idle check costs one timer per connection per idle_timeout, not one per segment: receiving
    only sets a flag."""

    transport: asyncio.Transport

    def __init__(self, idle_timeout: float = IDLE_TIMEOUT):
        self.idle_timeout = idle_timeout
        self.moved = False  # bytes came in, or the peer took some of ours, since the last check
        self.unsent = 0  # bytes waiting to go out at the last check
        self.idle_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._arm()

    def connection_lost(self, exc) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        if isinstance(exc, (ConnectionError, TimeoutError)):
            report_abort(self.transport, exc)

    def _arm(self) -> None:
        if self.idle_timeout != float("inf"):
            self.idle_timer = asyncio.get_running_loop().call_later(self.idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        self.idle_timer = None
        if self.transport.is_closing():
            return
        unsent = _unacked(self.transport)
        if self.moved or unsent < self.unsent:
            self.moved, self.unsent = False, unsent
            self._arm()
            return
        host, port = self.transport.get_extra_info("peername")
        if unsent:  # the peer takes nothing of what it was sent: it would hold it forever
            log.say("idle", f"{host}:{port}: reset, took nothing of {unsent} bytes for {self.idle_timeout:g} s")
            self.transport.abort()
        else:
            log.say("idle", f"{host}:{port}: closed, idle for {self.idle_timeout:g} s")
            self.transport.close()


def _unacked(transport) -> int:
    """Bytes written to the transport that the peer has not acknowledged yet."""
    conn = transport.get_extra_info("tcpwave_connection")
    return transport.get_write_buffer_size() + (conn.send_queue if conn is not None else 0)


def report_abort(transport, exc: BaseException) -> None:
    """A peer's abort, as one line on stderr (not an asyncio traceback), rate-limited and never
    blocking (aio/log.py): a peer can reset as often as it likes."""
    host, port = transport.get_extra_info("peername")
    log.say("reset", f"{host}:{port}: {exc}")


def reporting(handler):
    """A streams handler whose connection a peer's abort ends with report_abort's one line, and that
    a shutdown cancels quietly (asyncio would print a CancelledError traceback per handler)."""
    async def run(reader, writer):
        try:
            await handler(reader, writer)
        except (ConnectionError, TimeoutError) as e:
            report_abort(writer, e)
        except asyncio.CancelledError:
            pass  # the task ends here, as the shutdown that cancelled it wants

    return run


class Discard(Service):
    """Read everything, answer nothing; close once the peer has (RFC 863)."""

    def data_received(self, data) -> None:
        self.moved = True


class Echo(Service):
    """Send back every byte (RFC 862); close once the peer has and everything is sent. Reading pauses
    while the peer does not take the echo, so nothing piles up."""

    def data_received(self, data) -> None:
        self.moved = True
        self.transport.write(data)

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()


class HashSink(Service):
    """Read to EOF, then answer with the SHA-256 (hex) of everything read: proof the data arrived.

    The hashing runs in one thread shared by every connection (hashlib lets go of the GIL while it
    hashes a large buffer), so the stack goes on receiving meanwhile. Reading pauses while more than
    HIGH bytes wait to be hashed, and resumes once the thread has caught up."""

    HIGH = 4 << 20

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.loop = asyncio.get_running_loop()
        self.digest = hashlib.sha256()
        self.queued = 0  # bytes handed to the thread since the last pause
        self.paused = False

    def data_received(self, data) -> None:
        self.moved = True
        _hasher().put((self, data))
        self.queued += len(data)
        if self.queued > self.HIGH and not self.paused:
            self.paused = True
            self.transport.pause_reading()
            _hasher().put((self, _RESUME))  # answered once everything before it is hashed

    def eof_received(self) -> bool:
        _hasher().put((self, _EOF))
        return True  # open until the answer is written

    def _resume(self) -> None:
        self.paused, self.queued = False, 0
        self.transport.resume_reading()

    def _answer(self, hexdigest: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(hexdigest.encode())
            self.transport.close()


_RESUME, _EOF = object(), object()
_QUEUE: "queue.SimpleQueue[tuple[HashSink, object]] | None" = None


def _hasher() -> "queue.SimpleQueue[tuple[HashSink, object]]":
    """The hashing thread's queue (the thread starts at first use; it is a daemon)."""
    global _QUEUE
    if _QUEUE is None:
        _QUEUE = queue.SimpleQueue()
        threading.Thread(target=_hash_forever, args=(_QUEUE,), name="tcpwave-hash", daemon=True).start()
    return _QUEUE


def _hash_forever(q: "queue.SimpleQueue[tuple[HashSink, object]]") -> None:
    while True:
        sink, item = q.get()
        try:
            if item is _RESUME:
                sink.loop.call_soon_threadsafe(sink._resume)
            elif item is _EOF:
                sink.loop.call_soon_threadsafe(sink._answer, sink.digest.hexdigest())
            else:
                sink.digest.update(item)  # type: ignore[arg-type]
        except RuntimeError:  # the connection's loop has closed: nobody waits for this answer
            pass


PATTERN = bytes(range(256)) * (CHUNK // 256)


def generated(total: int):
    """`total` bytes of a repeating, verifiable pattern (byte i is i % 256), CHUNK at a time: views
    of one constant, so that no body is ever built."""
    view = memoryview(PATTERN)
    for _ in range(total // CHUNK):
        yield view
    if total % CHUNK:
        yield view[:total % CHUNK]


def source(total: int):
    """Send `total` bytes (generated), then close."""
    async def handler(reader, writer):
        for chunk in generated(total):
            writer.write(chunk)
            await writer.drain()
        await close_quietly(writer)

    return handler


async def close_quietly(writer) -> None:
    """Close a stream and wait until it is, whatever the peer did meanwhile."""
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
