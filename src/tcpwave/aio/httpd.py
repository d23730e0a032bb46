"""`tcpwave serve http`: HTTP/1.1 with keep-alive, as an asyncio streams handler, for clients that
may be hostile.

- A body goes out in CHUNK pieces under the transport's flow control: a generated `/bytes/N` or a
  file is never whole in memory, and HEAD builds nothing. N is at most BYTES_MAX (1 GiB).
- The request head (request line and header fields) must fit in `header_max` bytes (else 431) and
  arrive within `header_timeout` seconds (else 408). A connection with no request under way for
  `idle_timeout` seconds is closed, and one whose client takes nothing of a response for that long
  is reset.
- What cannot be parsed is answered 400 and the connection closed: nothing a client sends raises
  out of the handler.
"""

import asyncio
import dataclasses
import html
import mimetypes
import pathlib
import re
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Iterator

from .services import CHUNK, close_quietly, generated

BYTES_MAX = 1 << 30  # /bytes/N: the largest N
LINGER = 2.0  # after an error answer, what the client still sends is read and dropped this long


@dataclasses.dataclass(frozen=True)
class Limits:
    header_max: int = 16 * 1024  # bytes of request line and header fields
    header_timeout: float = 10.0  # seconds for a whole request head
    idle_timeout: float = 60.0  # seconds without a request, or without progress of a response


class Refused(Exception):
    """A request answered with an error status, after which the connection closes."""

    def __init__(self, status: str, text: str):
        super().__init__(text)
        self.status = status


@dataclasses.dataclass
class Request:
    method: str
    path: str
    keep_alive: bool


@dataclasses.dataclass
class Response:
    status: str
    ctype: str
    length: int
    body: Callable[[], Iterable[bytes | memoryview]]  # called for GET only: HEAD builds nothing
    extra: str = ""  # more header lines, each ending in CRLF


_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# origin-form: an absolute path and a query of RFC 3986 pchars, "/" and "?" (RFC 9112 §3.2.1)
_ORIGIN = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")


def parse(head: bytes) -> Request:
    """The request in a head that readuntil(CRLF CRLF) returned (RFC 9112 §2-§5), or Refused."""
    lines = head.decode("latin-1").split("\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # empty lines before the request line are ignored (RFC 9112 §2.2)
    parts = lines[0].split(" ") if lines else []
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _VERSION.fullmatch(parts[2]):
        raise Refused("400 Bad Request", "bad request line\n")
    method, target, version = parts
    if version[5] != "1":
        raise Refused("505 HTTP Version Not Supported", "HTTP/1.x only\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            break
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):  # (also a folded line: it starts with a space)
            raise Refused("400 Bad Request", "bad header field\n")
        name = name.lower()
        value = value.strip(" \t")
        if name == "content-length" and (not value.isascii() or not value.isdigit() or
                                         headers.get(name, value) != value):
            raise Refused("400 Bad Request", "bad Content-Length\n")
        headers[name] = value
    if "transfer-encoding" in headers or headers.get("content-length", "0").strip("0"):
        if method not in ("GET", "HEAD"):
            raise Refused("405 Method Not Allowed", "only GET and HEAD\n")
        raise Refused("400 Bad Request", "a request body is not accepted here\n")
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
    return Request(method, _path(target), keep)


def _path(target: str) -> str:
    if not target.startswith("/"):  # the absolute form (RFC 9112 §3.2.2); "*" and the rest are refused
        try:
            parts = urllib.parse.urlsplit(target)
        except ValueError:
            raise Refused("400 Bad Request", "bad request target\n") from None
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Refused("400 Bad Request", "bad request target\n")
        target = parts.path or "/"
    if not _ORIGIN.fullmatch(target):
        raise Refused("400 Bad Request", "bad request target\n")
    path = urllib.parse.unquote(target.partition("?")[0])
    if _CONTROL.search(path.replace(" ", "")):
        raise Refused("400 Bad Request", "control characters in the path\n")
    return path


PAGE = b"""<!doctype html><html><head><title>tcpwave</title></head><body>
<h1>Hello from tcpwave</h1>
<p>This page came over a TCP connection served by tcpwave, a user-space TCP/IP stack in Python.</p>
</body></html>
"""


def respond(method: str, path: str, base: pathlib.Path | None) -> Response:
    if method not in ("GET", "HEAD"):
        return _text("405 Method Not Allowed", "only GET and HEAD\n", extra="Allow: GET, HEAD\r\n")
    if base is not None:
        return _file(path, base)
    if path in ("/", "/index.html"):
        return Response("200 OK", "text/html; charset=utf-8", len(PAGE), lambda: (PAGE,))
    digits = path[7:] if path.startswith("/bytes/") else ""
    if digits.isascii() and digits.isdigit():
        n = int(digits) if len(digits) <= 10 else BYTES_MAX + 1
        if n > BYTES_MAX:
            return _text("400 Bad Request", f"/bytes/N: N is at most {BYTES_MAX}\n")
        return Response("200 OK", "application/octet-stream", n, lambda: generated(n))
    return _text("404 Not Found", "not found\n")


def _file(path: str, base: pathlib.Path) -> Response:
    try:
        file = (base / path.lstrip("/")).resolve()
        if file.is_dir():
            file = file / "index.html"
        if (base in file.parents or file == base) and file.is_file():
            size = file.stat().st_size
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            return Response("200 OK", ctype, size, lambda: _file_chunks(file, size))
    except (OSError, ValueError, RuntimeError):  # (a name too long, a symlink loop, ...)
        pass
    return _text("404 Not Found", f"not found: {html.escape(path)}\n")


def _file_chunks(file: pathlib.Path, size: int) -> Iterator[bytes]:
    with open(file, "rb") as f:
        left = size
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"{file} became shorter while it was sent")
            left -= len(chunk)
            yield chunk


def _text(status: str, text: str, extra: str = "") -> Response:
    body = text.encode()
    return Response(status, "text/plain", len(body), lambda: (body,), extra)


class _Stalled(Exception):
    """The client took nothing of a response for idle_timeout seconds."""


def http(root: str | None = None, limits: Limits = Limits()):
    """The handler(reader, writer): with `root`, files below it; without, `/` is a small page and
    `/bytes/N` N generated bytes. start_server's `limit` should be limits.header_max."""
    base = pathlib.Path(root).resolve() if root else None

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        try:
            while True:
                head = await _read_head(reader, limits, first)
                if head is None:
                    break
                first = False
                request = parse(head)
                response = respond(request.method, request.path, base)
                await _send(writer, response, request.method == "HEAD", request.keep_alive, limits.idle_timeout)
                if not request.keep_alive:
                    break
        except Refused as e:
            return await _refuse(reader, writer, e)
        except _Stalled:
            writer.transport.abort()
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except OSError as e:  # a file that could not be read to its end: the response cannot be finished
            print(f"tcpwave: http: {e}", file=sys.stderr, flush=True)
            writer.transport.abort()
            return
        await close_quietly(writer)

    return handler


async def _read_head(reader: asyncio.StreamReader, limits: Limits, first: bool) -> bytes | None:
    """The next request head, or None when the client has closed or sent nothing for too long (the
    header timeout for a connection's first request, the idle timeout between requests)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        async with asyncio.timeout(limits.header_timeout if first else limits.idle_timeout):
            byte = await reader.read(1)
    except TimeoutError:
        return None
    if not byte:
        return None
    try:  # the whole head within header_timeout: of the connection's start, or of its first byte
        async with asyncio.timeout_at((start if first else loop.time()) + limits.header_timeout):
            return byte + await reader.readuntil(b"\r\n\r\n")
    except TimeoutError:
        raise Refused("408 Request Timeout", "the request head took too long\n") from None
    except asyncio.LimitOverrunError:
        raise Refused("431 Request Header Fields Too Large",
                      f"the request head is over {limits.header_max} bytes\n") from None


def _header(response: Response, keep: bool) -> bytes:
    return (f"HTTP/1.1 {response.status}\r\nServer: tcpwave\r\nContent-Type: {response.ctype}\r\n"
            f"Content-Length: {response.length}\r\n{response.extra}"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()


async def _send(writer: asyncio.StreamWriter, response: Response, head_only: bool, keep: bool,
                idle: float) -> None:
    chunks = iter(()) if head_only else iter(response.body())
    # the header with the first piece, in one write: written apart, Nagle would hold the body until
    # the client's delayed ACK of the header (~40 ms per keep-alive request)
    writer.writelines((_header(response, keep), next(chunks, b"")))
    await _drain(writer, idle)
    for chunk in chunks:
        writer.write(chunk)
        await _drain(writer, idle)


async def _drain(writer: asyncio.StreamWriter, idle: float) -> None:
    try:
        async with asyncio.timeout(idle):
            await writer.drain()
    except TimeoutError:
        raise _Stalled() from None


async def _refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refused: Refused) -> None:
    """Answer with the error, then close: what the client still sends meanwhile is read and dropped
    for a moment, so that the answer is not lost to the RST a close with unread data would send."""
    try:
        writer.write(_header(_text(refused.status, str(refused)), False) + str(refused).encode())
        writer.write_eof()
        async with asyncio.timeout(LINGER):
            while await reader.read(CHUNK):
                pass
    except (TimeoutError, ConnectionError):
        pass
    await close_quietly(writer)
