"""`tcpwave connect HOST PORT`: netcat over tcpwave. stdin goes to the connection, the connection to
stdout; EOF on stdin half-closes (FIN) and the command ends when the peer closes too. Ctrl-C closes
as Linux's close() would: a FIN (and a moment for the peer's) when all that came was read, a RST
when data is left unread."""

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading

from ..aio import open_connection
from . import tun_options


def add_parser(sub) -> None:
    p = sub.add_parser("connect", help="netcat over tcpwave on a TUN device",
                       description=__doc__.split(":", 1)[1].strip())
    p.add_argument("host", help="the peer: an address or a name (the system's resolver) behind the TUN device")
    p.add_argument("port", type=int, help="the peer's TCP port")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the connection")
    tun_options.add(p)
    p.set_defaults(func=run)


def run(args) -> int:
    try:
        args.address = tun_options.resolve(args.host, args.addr)
    except ValueError as e:
        print(f"tcpwave connect: {e}", file=sys.stderr)
        return 2
    return tun_options.run_command("connect", _run, args)


async def _run(args) -> int:
    loop = asyncio.get_running_loop()
    with contextlib.ExitStack() as stack:
        runtime = tun_options.runtime(args, stack, loop)
        try:
            reader, writer = await asyncio.wait_for(open_connection(args.address, args.port, runtime=runtime),
                                                    args.timeout)
        except TimeoutError as e:
            if str(e):
                raise  # the stack's own: SYN retries exhausted
            raise TimeoutError(f"no answer from {args.host}:{args.port} within {args.timeout:g} s (--timeout); "
                               "the SYN went unanswered") from None

        chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)

        def read_stdin() -> None:  # a daemon thread: a blocked read never holds up the exit
            while True:
                data = os.read(sys.stdin.fileno(), 65536)  # (not the buffered object: its lock would
                # still be held by this thread at interpreter shutdown)
                try:
                    asyncio.run_coroutine_threadsafe(chunks.put(data), loop).result()
                except (RuntimeError, concurrent.futures.CancelledError):
                    return  # the loop ended (Ctrl-C) while we read: nothing to hand the data to
                if not data:
                    return

        threading.Thread(target=read_stdin, daemon=True).start()

        async def pump_stdin():
            while data := await chunks.get():
                writer.write(data)
                await writer.drain()
            writer.write_eof()  # half-close: the peer may still answer

        sending = asyncio.ensure_future(pump_stdin())
        out = sys.stdout.buffer
        try:
            while data := await reader.read(65536):
                out.write(data)
                out.flush()
        except asyncio.CancelledError:
            sending.cancel()
            await tun_options.hang_up(runtime, writer, unread=bool(getattr(reader, "_buffer", b"")))
            raise
        if not sending.done():
            sending.cancel()  # the peer closed first; stop reading stdin
        writer.close()
    return 0
