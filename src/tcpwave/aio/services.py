"""Small services for `tcpwave serve`: echo, discard and hash as asyncio Protocols; source and an
HTTP/1.1 server with keep-alive as asyncio streams handlers: handler(reader, writer)."""

import asyncio
import hashlib
import html
import mimetypes
import pathlib
import queue
import threading
import urllib.parse

from . import log

CHUNK = 64 * 1024


class Service(asyncio.Protocol):
    """A service as an asyncio Protocol: no task and no stream objects per connection (a server under
    connection churn pays for each). A peer's abort ends the connection with one line on stderr."""

    transport: asyncio.Transport

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if isinstance(exc, (ConnectionError, TimeoutError)):
            report_abort(self.transport, exc)


def report_abort(transport, exc: BaseException) -> None:
    """A peer's abort, as one line on stderr (not an asyncio traceback), rate-limited and never
    blocking (aio/log.py): a peer can reset as often as it likes."""
    host, port = transport.get_extra_info("peername")
    log.say("reset", f"{host}:{port}: {exc}")


def reporting(handler):
    """A streams handler whose connection a peer's abort ends with report_abort's one line."""
    async def run(reader, writer):
        try:
            await handler(reader, writer)
        except (ConnectionError, TimeoutError) as e:
            report_abort(writer, e)

    return run


class Discard(Service):
    """Read everything, answer nothing; close once the peer has (RFC 863)."""

    def data_received(self, data) -> None:
        pass


class Echo(Service):
    """Send back every byte (RFC 862); close once the peer has and everything is sent. Reading pauses
    while the peer does not take the echo, so nothing piles up."""

    def data_received(self, data) -> None:
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


def source(total: int):
    """Send `total` bytes (a repeating, verifiable pattern), then close."""
    async def handler(reader, writer):
        pattern = bytes(range(256)) * (CHUNK // 256)
        left = total
        while left > 0:
            n = min(left, len(pattern))
            writer.write(pattern[:n])
            await writer.drain()
            left -= n
        await _close(writer)

    return handler


def http(root: str | None = None):
    """HTTP/1.1 with keep-alive. With `root`, serves files below it; without, `/` is a small page and
    `/bytes/N` returns N generated bytes."""
    base = pathlib.Path(root).resolve() if root else None

    async def handler(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = (lines[0].split(" ") + ["", "", ""])[:3]
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                status, ctype, body = _respond(method, target, base)
                keep = (version == "HTTP/1.1" and headers.get("connection", "").lower() != "close") or \
                    headers.get("connection", "").lower() == "keep-alive"
                reply = (f"HTTP/1.1 {status}\r\nServer: tcpwave\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: {'keep-alive' if keep else 'close'}\r\n\r\n")
                # one write: with the header alone first, Nagle would hold the body until the client's
                # delayed ACK of the header (~40 ms per keep-alive request)
                writer.writelines((reply.encode(), body) if method != "HEAD" else (reply.encode(),))
                await writer.drain()
                if not keep:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        await _close(writer)

    return handler


PAGE = """<!doctype html><html><head><title>tcpwave</title></head><body>
<h1>Hello from tcpwave</h1>
<p>This page came over a TCP connection served by tcpwave, a user-space TCP/IP stack in Python.</p>
</body></html>
"""


def _respond(method: str, target: str, base: pathlib.Path | None) -> tuple[str, str, bytes]:
    if method not in ("GET", "HEAD"):
        return "405 Method Not Allowed", "text/plain", b"only GET and HEAD\n"
    path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
    if base is None:
        if path in ("/", "/index.html"):
            return "200 OK", "text/html; charset=utf-8", PAGE.encode()
        if path.startswith("/bytes/") and path[7:].isdigit():
            n = min(int(path[7:]), 1 << 30)
            return "200 OK", "application/octet-stream", (bytes(range(256)) * (n // 256 + 1))[:n]
        return "404 Not Found", "text/plain", b"not found\n"
    file = (base / path.lstrip("/")).resolve()
    if file.is_dir():
        file = file / "index.html"
    if base not in file.parents and file != base or not file.is_file():
        return "404 Not Found", "text/plain", f"not found: {html.escape(path)}\n".encode()
    return "200 OK", mimetypes.guess_type(file.name)[0] or "application/octet-stream", file.read_bytes()


async def _close(writer):
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
