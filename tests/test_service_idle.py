"""serve's echo, discard and hash services keep no connection forever (issue 21): one on which
nothing moves for idle_timeout is closed with a FIN, or reset when its peer has not taken what it was
sent (a never-reading client would otherwise hold its echo for good); one that keeps moving stays.
Two runtimes joined by an in-memory link; the client side is an ordinary asyncio streams client."""

import asyncio
import functools

from test_aio_streams import SERVER, pair, run, until

from tcpwave.aio import create_server, open_connection, services
from tcpwave.core.config import Config


async def _serve(service, server, idle: float, port: int = 7):
    return await create_server(functools.partial(service, idle), SERVER, port, runtime=server)


def test_an_idle_connection_is_closed_with_a_fin():
    async def main():
        client, server = pair()
        for service in (services.Echo, services.Discard, services.HashSink):
            srv = await _serve(service, server, 0.3)
            reader, writer = await open_connection(SERVER, 7, runtime=client)
            # the server closes: an orderly end of stream, within a bounded time
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
            await writer.wait_closed()
            srv.close()
            await srv.wait_closed()

    run(main())


def test_a_peer_that_never_takes_its_echo_is_reset():
    async def main():
        # the client's receive window is small and nobody reads it: the echo piles up at the server
        client, server = pair(Config(recv_buffer=8192, window_scaling=False))
        srv = await _serve(services.Echo, server, 0.3)
        reader, writer = await open_connection(SERVER, 7, runtime=client)
        writer.write(b"x" * 400_000)
        conn = client.stack.connections()[-1]
        # the server resets it: the client's connection ends with ECONNRESET
        await until(lambda: conn.state.name == "CLOSED", limit=15)
        try:
            await asyncio.wait_for(reader.read(), 5)
            raise AssertionError("the stream ended without the reset")
        except ConnectionResetError:
            pass
        srv.close()
        await srv.wait_closed()

    run(main())


def test_a_connection_that_keeps_moving_is_kept():
    async def main():
        client, server = pair()
        srv = await _serve(services.Echo, server, 0.5)
        reader, writer = await open_connection(SERVER, 7, runtime=client)
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.0  # four idle_timeouts
        while loop.time() < end:
            writer.write(b"ping")
            assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
            await asyncio.sleep(0.02)
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(main())
