"""Sinks can never hurt the core (issue 21, item 5): an event sink or a capture tap that raises (a full
disk: OSError ENOSPC) is disabled and reported once, and the connections go on as if nothing had been
listening; captures reach their file at least once a second; capture and event files are 0600.
Each test fails on the code before: the OSError came out of the middle of the core's step."""

import asyncio
import contextlib
import errno
import hashlib
import os
import stat

from test_aio_streams import SERVER, until

from tcpwave.aio import MemoryLink, Runtime, open_connection, start_server
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.drivers.taps import Tapped
from tcpwave.stack import Stack
from tcpwave.views.pcap import PcapWriter
from tcpwave.views.record import open_captures


class DiskFills:
    """A sink or tap that works for `good` calls, then raises ENOSPC on every call."""

    def __init__(self, good: int):
        self.good, self.calls = good, 0
        self.name = "events.jsonl"

    def __call__(self, *args) -> None:
        self.calls += 1
        if self.calls > self.good:
            raise OSError(errno.ENOSPC, "No space left on device")


def _transfer(server_tracer: Tracer, wrap=lambda link: link, size: int = 2_000_000) -> str:
    """Send `size` bytes to a hashing server; return the digest it answers (or fail)."""
    body = os.urandom(size)

    async def main():
        a, b = MemoryLink.pair(delay=0.001)
        client = Runtime(Stack(["192.0.2.1"], seed=1), a)
        server = Runtime(Stack([SERVER], seed=2, tracer=server_tracer), wrap(b))

        async def handle(reader, writer):
            digest = hashlib.sha256()
            while chunk := await reader.read(65536):
                digest.update(chunk)
            writer.write(digest.hexdigest().encode())
            await writer.drain()
            writer.close()

        await start_server(handle, SERVER, 5001, runtime=server)
        reader, writer = await open_connection(SERVER, 5001, runtime=client)
        writer.write(body)
        writer.write_eof()
        answer = await reader.read()
        await until(lambda: not server.connections() or all(c.state.value in ("LISTEN", "TIME_WAIT", "CLOSED")
                                                              for c in server.connections()))
        return answer.decode()

    answer = asyncio.run(asyncio.wait_for(main(), 60))
    assert answer == hashlib.sha256(body).hexdigest()
    return answer


def test_an_event_sink_that_fails_is_disabled_and_reported_once():
    failing, kept, reports = DiskFills(good=500), ListSink(), []
    tracer = Tracer(failing, kept)
    tracer.on_error = lambda sink, e: reports.append((sink, e.errno))
    _transfer(tracer)  # byte for byte, though the sink failed in the middle of the transfer
    assert failing.calls == 501  # disabled at its first failure
    assert reports == [(failing, errno.ENOSPC)]
    assert len(kept) > 501  # the other sink heard everything after it too


def test_a_capture_tap_that_fails_is_disabled_and_reported_once():
    failing, reports = DiskFills(good=100), []
    def wrap(link):
        tapped = Tapped(link, [failing])
        tapped.on_error = lambda tap, e: reports.append(tap)
        return tapped

    _transfer(Tracer(), wrap=wrap)
    assert failing.calls == 101 and reports == [failing]


def test_captures_reach_the_file_at_least_once_a_second(tmp_path):
    path = tmp_path / "live.pcap"

    async def main():
        a, b = MemoryLink.pair(delay=0.001)
        with open(path, "wb") as f:
            tapped = Tapped(b, [PcapWriter(f)])
            Runtime(Stack([SERVER], seed=2), tapped)
            tapped.start_syncing(asyncio.get_running_loop())
            client = Runtime(Stack(["192.0.2.1"], seed=1), a)
            client.stack.connect(SERVER, 80, client.now())  # a SYN in, a RST out: both captured
            client.kick()
            # nothing is flushed by hand: the file grows while the run goes on (within a few seconds)
            await until(lambda: path.stat().st_size > 24 + 2 * 16, limit=10)
            tapped.detach()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_capture_and_event_files_are_created_0600(tmp_path):
    old = tmp_path / "old.pcap"
    old.write_bytes(b"x")
    os.chmod(old, 0o644)  # a file there already is truncated and made private too
    files = {"pcap": str(old), "pcapng": str(tmp_path / "a.pcapng"), "events": str(tmp_path / "e.jsonl")}
    with contextlib.ExitStack() as stack:
        open_captures(stack, Tracer(), **files)
    for path in files.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
