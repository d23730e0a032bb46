"""Every end of a connection releases it, whatever the reading state: a reset, a FIN, a timeout, an
abort or a close by the application, with the server's reading paused (an echo whose peer does not
take the echo) and not. Each must reach the protocol's connection_lost, leave the server's set of live
transports and the stack's table (the snapshot `tcpwave ss` shows). Two runtimes on an in-memory link."""

import asyncio
import os

import pytest

from tcpwave.aio import MemoryLink, Runtime, create_server, log, open_connection
from tcpwave.aio.services import Echo
from tcpwave.core.config import Config
from tcpwave.core.observe import stack_snapshot
from tcpwave.stack import Stack

SERVER = "192.0.2.2"
# small timeouts so that the timeout paths end within seconds: a few retransmissions or probes
SERVER_CONFIG = Config(msl=0.1, data_retries=3, keepalive=True, keepalive_idle=0.3, keepalive_interval=0.2,
                       keepalive_count=2)


class Watched(Echo):
    lost: list = []  # (one list for the test: each run makes one connection)

    def connection_lost(self, exc) -> None:
        Watched.lost.append(exc)
        super().connection_lost(exc)


async def until(condition, limit: float = 20.0):
    deadline = asyncio.get_running_loop().time() + limit
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def _run(end: str, paused: bool, capfd) -> None:
    Watched.lost = []
    a, b = MemoryLink.pair(delay=0.0005)
    client = Runtime(Stack(["192.0.2.1"], seed=1), a)
    server = Runtime(Stack([SERVER], seed=2, config=SERVER_CONFIG), b)
    srv = await create_server(Watched, SERVER, 7, runtime=server)
    reader, writer = await open_connection(SERVER, 7, runtime=client)
    data = os.urandom(4 << 20) if paused else b"hello"
    writer.write(data)
    await until(lambda: len(srv.transports) == 1)
    [transport] = srv.transports
    if paused:  # the client reads nothing: the echo backs up until the server stops reading
        await until(lambda: not transport.is_reading())
        # what the echo holds is bounded: the high-water mark, plus at most one read's worth
        assert transport.get_write_buffer_size() <= transport.get_write_buffer_limits()[1] + Config().recv_buffer
    else:
        assert await reader.readexactly(len(data)) == data
        assert transport.is_reading()
    expected: type | None = None
    if end == "reset":
        writer.transport.abort()
        expected = ConnectionResetError
    elif end == "fin":
        writer.write_eof()
        if paused:  # the client now takes the echo: the server resumes, reads the FIN and closes
            assert await reader.readexactly(len(data)) == data
        assert await reader.read() == b""
    elif end == "timeout":
        client.close()  # the client vanishes: retransmissions, probes or keep-alives go unanswered
        expected = TimeoutError
    elif end == "abort":
        transport.abort()
    elif end == "close":
        transport.close()  # with unread data (paused): a RST at once, as close() with unread data sends
        if not paused:
            assert await reader.read() == b""  # the server's FIN
            writer.close()
    await until(lambda: Watched.lost, limit=30.0)
    assert len(Watched.lost) == 1
    assert type(Watched.lost[0]) is expected if expected else Watched.lost[0] is None
    assert not srv.transports  # the server let go of it
    # nothing left of it in the table (once a TIME_WAIT, when the server closed first, has passed)
    await until(lambda: [r["state"] for r in stack_snapshot(server.stack, server.now())] == ["LISTEN"])
    srv.close()
    client.close()
    server.close()
    if end == "reset":
        assert "connection reset by peer" in capfd.readouterr().err  # (aio/log.py writes to fd 2)


@pytest.mark.parametrize("paused", [True, False], ids=["paused", "reading"])
@pytest.mark.parametrize("end", ["reset", "fin", "timeout", "abort", "close"])
def test_every_end_of_a_connection_releases_it(end, paused, capfd, monkeypatch):
    fresh = log.Log()  # (the process's log allows 5 lines of a kind a second: earlier tests' resets must
    fresh.limits.update(log.LOG.limits)  # not use up the line the reset case looks for)
    monkeypatch.setattr(log, "LOG", fresh)
    asyncio.run(asyncio.wait_for(_run(end, paused, capfd), 60))


def test_closed_connections_are_not_kept_alive_by_their_old_timers():
    """Reset connections whose keep-alive timer was two hours away, behind a live connection's earlier
    one: once the application lets go, their timer-heap entries do not keep them until the old
    deadline. (Stale entries are dropped in bulk once they outnumber the live ones: a few dozen may
    wait for that.)"""
    import gc

    async def main():
        a, b = MemoryLink.pair(delay=0.0005)
        client = Runtime(Stack(["192.0.2.1"], seed=1), a)
        server = Runtime(Stack([SERVER], seed=2, config=Config(keepalive=True)), b)
        srv = await create_server(Echo, SERVER, 7, runtime=server)
        writers, refs = [], []
        for _ in range(300):
            reader, writer = await open_connection(SERVER, 7, runtime=client)
            writer.write(b"hi")
            assert await reader.readexactly(2) == b"hi"
            writers.append(writer)
        [first] = [t for t in srv.transports if t.get_extra_info("peername") == writers[0].get_extra_info("sockname")]
        refs = [t.get_extra_info("tcpwave_connection").weak() for t in srv.transports if t is not first]
        del first
        for writer in writers[1:]:  # the first stays: its keep-alive timer is the earliest
            writer.transport.abort()
        await until(lambda: len(srv.transports) == 1)
        states = ["LISTEN", "ESTABLISHED"]
        await until(lambda: [r["state"] for r in stack_snapshot(server.stack, server.now())] == states)
        gc.collect()
        alive = sum(r() is not None for r in refs)  # (while the stack still runs)
        srv.close()
        client.close()
        server.close()
        return len(refs), alive

    count, alive = asyncio.run(asyncio.wait_for(main(), 60))
    assert count == 299 and alive < 100, alive
