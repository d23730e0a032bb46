"""The asyncio streams API over tcpwave (two runtimes joined by an in-memory link)."""

import asyncio
import os

import pytest

from tcpwave.aio import MemoryLink, Runtime, open_connection, start_server
from tcpwave.core.config import Config
from tcpwave.core.state import State
from tcpwave.stack import Stack

SERVER = "192.0.2.2"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def pair(config: Config | None = None, delay: float = 0.001):
    a, b = MemoryLink.pair(delay=delay)
    return (Runtime(Stack(["192.0.2.1"], seed=1, config=config), a),
            Runtime(Stack([SERVER], seed=2, config=config), b))


async def until(condition, limit: float = 10.0):
    """Wait for a condition the test cannot await directly, checking as the loop runs."""
    deadline = asyncio.get_running_loop().time() + limit
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.005)


def test_echo_with_half_close_and_peer_names():
    async def main():
        client, server = pair()
        names = {}

        async def handle(reader, writer):
            names["peer"] = writer.get_extra_info("peername")
            data = await reader.read()  # to the client's FIN
            writer.write(data[::-1])
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        srv = await start_server(handle, SERVER, 7, runtime=server)
        reader, writer = await open_connection(SERVER, 7, runtime=client)
        assert writer.get_extra_info("peername") == (SERVER, 7)
        payload = os.urandom(3_000_000)
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        assert await reader.read() == payload[::-1]
        assert names["peer"] == writer.get_extra_info("sockname")
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(main())


def test_data_unread_when_the_connection_ends_is_still_delivered():
    """The reader is paused (its buffer is full) when the peer's FIN takes us to TIME_WAIT: the bytes
    still in the connection arrive before the end of stream, none are lost."""

    async def main():
        client, server = pair()
        payload = os.urandom(300_000)  # more than the StreamReader takes before pausing (2 x 64 KiB)

        async def handle(reader, writer):
            await reader.read()  # the client's FIN
            writer.write(payload)
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        await start_server(handle, SERVER, 7, runtime=server)
        reader, writer = await open_connection(SERVER, 7, runtime=client)
        conn = writer.get_extra_info("tcpwave_connection")
        writer.write_eof()
        await until(lambda: conn.state is State.TIME_WAIT)
        assert conn.readable > 0  # the case under test: unread bytes when the connection ends
        assert writer.transport.is_closing()
        assert await reader.read() == payload
        assert reader.at_eof()

    run(main())


def test_refused_connection_raises_connection_refused_error():
    async def main():
        client, _server = pair()
        with pytest.raises(ConnectionRefusedError):
            await open_connection(SERVER, 9, runtime=client)

    run(main())


def test_peer_abort_raises_connection_reset_error_on_read():
    async def main():
        client, server = pair()

        async def handle(reader, writer):
            await reader.readexactly(5)
            writer.transport.abort()

        await start_server(handle, SERVER, 7, runtime=server)
        reader, writer = await open_connection(SERVER, 7, runtime=client)
        writer.write(b"hello")
        with pytest.raises(ConnectionResetError):
            await reader.read()

    run(main())


def test_unanswered_connect_raises_timeout_error():
    async def main():
        fast = Config(syn_retries=1, syn_linear_timeouts=0, rto_initial=0.05, rto_min=0.05)
        client, _server = pair(fast)
        with pytest.raises(TimeoutError):
            await open_connection("192.0.2.99", 7, runtime=client)  # nobody has this address

    run(main())


def test_drain_waits_while_the_peer_does_not_read():
    async def main():
        small = Config(recv_buffer=64 * 1024, send_buffer=64 * 1024)
        client, server = pair(small)
        go, conns = asyncio.Event(), {}

        async def handle(reader, writer):
            conns["server"] = writer.transport.get_extra_info("tcpwave_connection")
            await go.wait()  # the application does not read yet
            total = 0
            while chunk := await reader.read(65536):
                total += len(chunk)
            conns["total"] = total
            writer.close()

        await start_server(handle, SERVER, 7, runtime=server)
        reader, writer = await open_connection(SERVER, 7, runtime=client)
        writer.write(b"p" * 2_000_000)
        drain = asyncio.ensure_future(writer.drain())
        # the server's stream reader fills up and pauses reading, the window closes to zero...
        await until(lambda: "server" in conns and conns["server"].readable >= 64 * 1024)
        assert not drain.done()  # ...and the writer is held back
        go.set()
        await drain
        writer.write_eof()
        await until(lambda: "total" in conns)
        assert conns["total"] == 2_000_000
        writer.close()
        await writer.wait_closed()

    run(main())


def test_start_server_as_async_context_manager_stops_listening():
    async def main():
        client, server = pair()

        async def handle(reader, writer):
            writer.close()

        async with await start_server(handle, SERVER, 7, runtime=server) as srv:
            assert srv.is_serving()
        assert not srv.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await open_connection(SERVER, 7, runtime=client)

    run(main())


def test_faulty_link_delays_and_drops_what_the_stack_sends():
    from tcpwave.aio import FaultyLink

    async def main():
        a, b = MemoryLink.pair(delay=0.0)
        slow = FaultyLink(a, delay=0.05, seed=1)
        client = Runtime(Stack(["192.0.2.1"], seed=1), slow)
        server = Runtime(Stack([SERVER], seed=2), b)

        async def handle(reader, writer):
            writer.close()

        await start_server(handle, SERVER, 7, runtime=server)
        reader, writer = await open_connection(SERVER, 7, runtime=client)
        conn = writer.transport.get_extra_info("tcpwave_connection")
        assert conn.srtt >= 0.05  # the injected delay is in the measured round trip
        writer.close()

        fast = Config(syn_retries=1, syn_linear_timeouts=0, rto_initial=0.05, rto_min=0.05)
        a2, b2 = MemoryLink.pair()
        blackhole = FaultyLink(a2, loss=1.0, seed=2)
        client2 = Runtime(Stack(["192.0.2.1"], seed=3, config=fast), blackhole)
        Runtime(Stack([SERVER], seed=4), b2)
        with pytest.raises(TimeoutError):
            await open_connection(SERVER, 7, runtime=client2)
        assert blackhole.dropped == 2  # the SYN and its one retransmission

    run(main())


def test_http_service_answers_a_keep_alive_request_in_one_segment():
    """Header and body go out together: written apart, Nagle would hold the body until the client's
    delayed ACK of the header, ~40 ms per keep-alive request."""
    from tcpwave.aio import httpd
    from tcpwave.core.trace import ListSink, Tracer

    sink = ListSink()

    async def main():
        a, b = MemoryLink.pair(delay=0.001)
        client = Runtime(Stack(["192.0.2.1"], seed=1), a)
        server = Runtime(Stack([SERVER], seed=2, tracer=Tracer(sink), host="server"), b)
        srv = await start_server(httpd.http(), SERVER, 80, runtime=server)
        reader, writer = await open_connection(SERVER, 80, runtime=client)
        for _ in range(2):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return len(head) + length

    size = run(main())
    data = [e["len"] for e in sink.of_type("send") if e["len"]]
    assert data == [size, size]  # one segment per response


def test_protocol_services_echo_and_hash_what_they_receive_with_back_pressure():
    """create_server with the Echo and HashSink protocols of `tcpwave serve`: every byte comes back, and
    the SHA-256 answer is right after more than HashSink.HIGH bytes (reading paused and resumed)."""
    import hashlib

    from tcpwave.aio import create_server
    from tcpwave.aio.services import Echo, HashSink

    resumed = []

    class Counted(HashSink):
        def _resume(self) -> None:
            resumed.append(self.queued)
            super()._resume()

    async def main():
        client, server = pair(delay=0.0005)
        data = os.urandom(1 << 20) * 6  # 6 MB: over HashSink.HIGH
        async with await create_server(Counted, SERVER, 5001, runtime=server), \
                await create_server(Echo, SERVER, 7, runtime=server):
            reader, writer = await open_connection(SERVER, 5001, runtime=client)
            writer.write(data)
            writer.write_eof()
            answer = await reader.read()
            writer.close()
            reader, writer = await open_connection(SERVER, 7, runtime=client)
            writer.write(data[: 3 << 20])
            writer.write_eof()
            echoed = await reader.read()
            writer.close()
        return answer, echoed, data

    answer, echoed, data = run(main())
    assert answer.decode() == hashlib.sha256(data).hexdigest()
    assert resumed and all(n > HashSink.HIGH for n in resumed)
    assert echoed == data[: 3 << 20]
