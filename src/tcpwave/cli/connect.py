"""`tcpwave connect HOST PORT`: netcat over tcpwave. stdin goes to the connection, the connection to
stdout; EOF on stdin half-closes (FIN) and the command ends when the peer closes too. Ctrl-C closes
as Linux's close() would: a FIN (and a moment for the peer's) when all that came was read, a RST
when data is left unread."""

import asyncio
import concurrent.futures
import contextlib
import os
import queue
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
        out = StdoutPump(loop, sys.stdout.fileno())
        try:
            while data := await reader.read(65536):
                await out.write(data)
            await out.close()
        except asyncio.CancelledError:
            sending.cancel()
            unread = out.pending > 0 or bool(getattr(reader, "_buffer", b""))
            await tun_options.hang_up(runtime, writer, unread=unread)
            raise
        if not sending.done():
            sending.cancel()  # the peer closed first; stop reading stdin
        writer.close()
    return 0


class StdoutPump:
    """stdout written by a daemon thread at most `depth` chunks behind the connection: a reader of
    our stdout that stops reading (a full pipe) holds up the connection's reading, never the event
    loop, so Ctrl-C is still heard. `pending`: chunks read from the connection, not yet written."""

    def __init__(self, loop, fd: int, depth: int = 4):
        self.loop, self.fd = loop, fd
        self.room = asyncio.Semaphore(depth)
        self.pending = 0
        self.failed: OSError | None = None
        self.done = asyncio.Event()
        self.chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        threading.Thread(target=self._run, daemon=True).start()

    async def write(self, data: bytes) -> None:
        await self.room.acquire()
        if self.failed is not None:
            raise self.failed
        self.pending += 1
        self.chunks.put(data)

    async def close(self) -> None:
        """Wait until everything is written."""
        self.chunks.put(None)
        await self.done.wait()
        if self.failed is not None:
            raise self.failed

    def _written(self) -> None:
        self.pending -= 1
        self.room.release()

    def _fail(self, e: OSError) -> None:
        self.failed = e
        self.done.set()
        self.room.release()

    def _run(self) -> None:
        try:
            while (data := self.chunks.get()) is not None:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view):]  # (not sys.stdout: see read_stdin)
                self._call(self._written)
        except OSError as e:  # stdout closed (EPIPE)
            self._call(self._fail, e)
            return
        self._call(self.done.set)

    def _call(self, fn, *args) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop has ended (Ctrl-C): nobody waits for this any more
            pass
