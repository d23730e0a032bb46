"""The asyncio API behaves as the standard library's where issue 26 found it did not: serve_forever()
cancelled or ended by close(), a failing protocol, wait_closed(), port 0, writes after close()."""

import asyncio
import errno
import logging
import pathlib
import re

import pytest

from tcpwave.aio import MemoryLink, Runtime, create_server, open_connection, start_server
from tcpwave.core.config import Config
from tcpwave.stack import EPHEMERAL, Stack

SERVER = "192.0.2.2"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def pair(link=MemoryLink):
    a, b = link.pair(delay=0.001)
    return Runtime(Stack(["192.0.2.1"], seed=1), a), Runtime(Stack([SERVER], seed=2), b)


async def echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
    writer.close()


async def exchange(client, port: int) -> bytes:
    reader, writer = await open_connection(SERVER, port, runtime=client)
    writer.write(b"ping")
    writer.write_eof()
    data = await reader.read()
    writer.close()
    return data


def test_cancelling_serve_forever_closes_the_server_and_it_stays_usable():
    async def main():
        client, server = pair()
        srv = await start_server(echo, SERVER, 7, runtime=server)
        task = asyncio.create_task(srv.serve_forever())
        await asyncio.sleep(0)  # (one turn of the loop: the task starts serving)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not srv.is_serving()
        await asyncio.wait_for(srv.wait_closed(), 5)  # returns, does not raise CancelledError
        srv.close()
        with pytest.raises(ConnectionRefusedError):  # the port is closed
            await open_connection(SERVER, 7, runtime=client)

    run(main())


def test_close_during_serve_forever_ends_it_as_asyncio_does():
    """asyncio.Server.close() cancels a running serve_forever(): its task ends with CancelledError."""

    async def main():
        _, server = pair()
        srv = await start_server(echo, SERVER, 7, runtime=server)
        task = asyncio.create_task(srv.serve_forever())
        await asyncio.sleep(0)
        srv.close()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        await asyncio.wait_for(srv.wait_closed(), 5)
        with pytest.raises(RuntimeError):
            await srv.serve_forever()  # a closed server does not serve again

    run(main())


class BatchLink(MemoryLink):
    """A memory link that hands the receiving stack, at once, every packet that arrived in one turn of
    the loop: the batches a TUN device gives."""

    def __init__(self, loop, delay: float = 0.0):
        super().__init__(loop, delay)
        self._batch: list[bytes] = []

    def _deliver(self, packet: bytes) -> None:
        self._batch.append(packet)
        if len(self._batch) == 1:
            self.loop.call_soon(self._release)

    def _release(self) -> None:
        batch, self._batch = self._batch, []
        if self._callback is not None:
            self._callback(batch)


class Faulty(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if data.startswith(b"boom"):
            raise ValueError("the application's bug")
        self.transport.write(data)


def test_a_failing_protocol_is_aborted_alone_and_reported_as_asyncio_does():
    async def main():
        reports = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reports.append(context))
        client, server = pair(BatchLink)
        await create_server(Faulty, SERVER, 7, runtime=server)
        conns = [await open_connection(SERVER, 7, runtime=client) for _ in range(6)]
        for i, (_, writer) in enumerate(conns):  # the faulty one first, in the same batch as the others
            writer.write(b"boom" if i == 0 else b"hello %d" % i)
        with pytest.raises(ConnectionResetError):  # the faulty connection is reset, not left hanging
            await asyncio.wait_for(conns[0][0].read(100), 5)
        for i, (reader, _) in enumerate(conns[1:], 1):
            assert await asyncio.wait_for(reader.readexactly(7), 5) == b"hello %d" % i
        assert [r["message"] for r in reports] == ["Fatal error: protocol.data_received() call failed."]
        assert isinstance(reports[0]["exception"], ValueError)

    run(main())


def test_wait_closed_does_not_wait_for_the_peers_fin():
    async def main():
        client, server = pair()
        got_eof = asyncio.Event()

        async def idle(reader, writer):  # reads the client's FIN, never closes its side
            await reader.read()
            got_eof.set()
            await asyncio.Event().wait()

        await start_server(idle, SERVER, 7, runtime=server)
        _, writer = await open_connection(SERVER, 7, runtime=client)
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 5)  # old: until fin_timeout (60 s), then TimeoutError
        await asyncio.wait_for(got_eof.wait(), 5)  # the FIN went out all the same

    run(main())


def test_a_server_kicking_an_idle_client_does_not_stall():
    async def main():
        client, server = pair()
        kicked = asyncio.Event()

        async def kick(reader, writer):
            writer.close()
            await writer.wait_closed()
            kicked.set()

        await start_server(kick, SERVER, 7, runtime=server)
        reader, _ = await open_connection(SERVER, 7, runtime=client)  # never closes
        await asyncio.wait_for(kicked.wait(), 5)
        assert await asyncio.wait_for(reader.read(), 5) == b""

    run(main())


def test_port_zero_listens_on_an_ephemeral_port():
    async def main():
        client, server = pair()
        first = await start_server(echo, SERVER, 0, runtime=server)
        second = await start_server(echo, SERVER, 0, runtime=server)
        ports = {first.address[1], second.address[1]}
        assert len(ports) == 2 and all(p in EPHEMERAL for p in ports)
        for port in ports:
            assert await exchange(client, port) == b"ping"

    run(main())


def test_listening_twice_on_a_port_raises_oserror_eaddrinuse():
    async def main():
        _, server = pair()
        await start_server(echo, SERVER, 7, runtime=server)
        with pytest.raises(OSError) as raised:
            await start_server(echo, SERVER, 7, runtime=server)
        assert raised.value.errno == errno.EADDRINUSE

    run(main())


def test_write_after_close_is_dropped_with_asyncios_warning_from_the_fifth(caplog):
    async def main():
        client, server = pair()
        await start_server(echo, SERVER, 7, runtime=server)
        _, writer = await open_connection(SERVER, 7, runtime=client)
        writer.close()
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for n in range(1, 6):
                writer.write(b"late")  # no RuntimeError
                warned = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
                assert warned == ([] if n < 5 else ["socket.send() raised exception."])
        await writer.wait_closed()

    run(main())


def test_write_after_write_eof_raises_as_asyncio():
    async def main():
        client, server = pair()
        await start_server(echo, SERVER, 7, runtime=server)
        _, writer = await open_connection(SERVER, 7, runtime=client)
        writer.write_eof()
        with pytest.raises(RuntimeError, match="after write_eof"):
            writer.write(b"x")
        writer.close()

    run(main())


def test_config_rejects_an_unknown_congestion_control_naming_the_known_ones():
    with pytest.raises(ValueError, match="cubic.*reno|reno.*cubic"):
        Config(congestion_control="vegas")


def test_readme_tun_setup_passes_the_offloads_the_cli_passes():
    """cli/tun_options.py gives the TUN device offload=True and the stack checksum_offload and
    segment_max; the README's TUN set-up says the same (without them bulk transfer is ~3x slower)."""
    root = pathlib.Path(__file__).parent.parent
    cli = (root / "src/tcpwave/cli/tun_options.py").read_text()
    readme = (root / "README.md").read_text()
    for argument in ("checksum_offload=device.offload", "segment_max=SEGMENT_MAX if device.offload else 0"):
        assert argument in cli and argument in readme
    assert re.search(r"TunDevice\([^)]*offload=", readme)
