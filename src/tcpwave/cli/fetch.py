"""`tcpwave fetch URL`: an HTTP/1.1 GET over tcpwave; the body goes to stdout."""

import asyncio
import contextlib
import os
import sys
import urllib.parse

from ..aio import open_connection
from . import tun_options


def add_parser(sub) -> None:
    p = sub.add_parser("fetch", help="HTTP GET over tcpwave on a TUN device, body to stdout",
                       description="GET one http:// URL over tcpwave and write the body to stdout. A status "
                                   "other than 2xx is said on stderr, with no body, and exit status 22 (as "
                                   "curl -f). Ctrl-C mid-body resets the connection, as Linux's close() does "
                                   "with data unread.")
    p.add_argument("url", help="http://HOST[:PORT]/PATH; HOST an address or a name (resolved by the system's "
                               "resolver: hosts file, DNS) reachable through the TUN device")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="give up after S seconds in all (default 60)")
    p.add_argument("-i", "--include", action="store_true", help="print the response headers too (to stderr)")
    tun_options.add(p)
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        url = urllib.parse.urlsplit(args.url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"{args.url}: only http:// URLs (no TLS in tcpwave)" if url.scheme == "https"
                             else f"{args.url}: not an http:// URL")
        args.target = (url.hostname, url.port or 80, tun_options.resolve(url.hostname, args.addr))
    except ValueError as e:
        print(f"tcpwave fetch: {e}", file=sys.stderr)
        return 2
    rc = tun_options.run_command("fetch", _run, args, args.timeout)
    if rc not in (0, 22) and args.pcap and os.path.exists(args.pcap) and os.path.getsize(args.pcap) <= 24:
        os.unlink(args.pcap)  # a failed fetch that sent nothing leaves no empty capture behind
    return rc


async def _run(args) -> int:
    url = urllib.parse.urlsplit(args.url)
    _, port, address = args.target
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    with contextlib.ExitStack() as stack:
        runtime = tun_options.runtime(args, stack, asyncio.get_running_loop())
        reader, writer = await open_connection(address, port, runtime=runtime)
        try:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\nUser-Agent: tcpwave\r\n"
                         f"Accept: */*\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status_line, *header_lines = head.split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in header_lines if ln)}
            if args.include:
                print(head, file=sys.stderr, end="")
            words = status_line.split(maxsplit=2)
            code = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
            if not 200 <= code < 300:
                writer.transport.abort()  # the body is not wanted: a reset, as close() with data unread
                print(f"tcpwave fetch: HTTP {' '.join(words[1:]) or '(no status)'}", file=sys.stderr)
                return 22  # like curl -f: no body on stdout
            await _body(reader, headers, sys.stdout.buffer)
        except (asyncio.CancelledError, Exception):
            writer.transport.abort()  # interrupted or failed mid-response: data unread, so a reset
            raise
        writer.close()
    return 0


async def _body(reader, headers: dict, out) -> None:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while (size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
            out.write(await reader.readexactly(size))
            await reader.readexactly(2)
    elif "content-length" in headers:
        out.write(await reader.readexactly(int(headers["content-length"])))
    else:
        while data := await reader.read(65536):
            out.write(data)
    out.flush()
