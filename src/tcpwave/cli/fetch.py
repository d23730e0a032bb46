"""`tcpwave fetch URL`: an HTTP/1.1 GET over tcpwave; the body goes to stdout."""

import asyncio
import contextlib
import sys
import urllib.parse

from ..aio import open_connection
from . import tun_options


def add_parser(sub) -> None:
    p = sub.add_parser("fetch", help="HTTP GET over tcpwave on a TUN device, body to stdout")
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("-i", "--include", action="store_true", help="print the response headers too (to stderr)")
    tun_options.add(p)
    p.set_defaults(func=run)


def run(args) -> int:
    return tun_options.run_command("fetch", _run, args, args.timeout)


async def _run(args) -> int:
    url = urllib.parse.urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        raise ValueError(f"only http:// URLs: {args.url}")
    port = url.port or 80
    target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    host_header = url.netloc
    with contextlib.ExitStack() as stack:
        runtime = tun_options.runtime(args, stack, asyncio.get_running_loop())
        reader, writer = await open_connection(url.hostname, port, runtime=runtime)
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: tcpwave\r\n"
                     f"Accept: */*\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in header_lines if ln)}
        if args.include:
            print(head, file=sys.stderr, end="")
        out = sys.stdout.buffer
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
        writer.close()
    code = int(status_line.split()[1]) if len(status_line.split()) > 1 else 0
    return 0 if 200 <= code < 300 else 22  # like curl -f
