"""Issue 26: TLS 1.3 over tcpwave through the ssl module (asyncio's own SSLProtocol on a tcpwave
transport): ssl= in start_server/open_connection, and start_tls on an open connection."""

import asyncio
import ssl

from tls_cert import needs_openssl, self_signed

from tcpwave.aio import MemoryLink, Runtime, create_server, open_connection, start_server
from tcpwave.aio.loop import MemoryNetwork
from tcpwave.stack import Stack

SERVER = "192.0.2.2"
pytestmark = needs_openssl


def contexts(tmp_path):
    cert, key = self_signed(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    return server, client


async def tls_echo(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def test_tls13_echo_over_a_lossy_memory_network(tmp_path):
    server_ctx, client_ctx = contexts(tmp_path)
    payload = bytes(range(256)) * 1000
    net = MemoryNetwork(loss=0.01, seed=4)

    async def main():
        await asyncio.start_server(tls_echo, SERVER, 443, ssl=server_ctx)
        reader, writer = await asyncio.open_connection(SERVER, 443, ssl=client_ctx)
        ssl_object = writer.get_extra_info("ssl_object")
        writer.write(payload)
        writer.write_eof() if writer.can_write_eof() else None
        echoed = await reader.readexactly(len(payload))
        writer.close()
        return ssl_object.version(), ssl_object.getpeercert()["subject"], echoed

    with asyncio.Runner(loop_factory=net.loop_factory) as runner:
        version, subject, echoed = runner.run(asyncio.wait_for(main(), 60))
    assert version == "TLSv1.3" and subject == ((("commonName", "server.test"),),)
    assert echoed == payload and net.switch.dropped >= 1


def test_aiohttp_https_over_a_lossy_memory_network(tmp_path):
    """aiohttp's https client (its own kernel socket, taken over, then start_tls) against an aiohttp
    https site, by a host name the network's table resolves; the handler sees TLS 1.3."""
    import aiohttp
    from aiohttp import web

    server_ctx, client_ctx = contexts(tmp_path)

    async def version(request):
        return web.Response(text=request.transport.get_extra_info("ssl_object").version())

    async def main():
        app = web.Application()
        app.add_routes([web.get("/", version)])
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, SERVER, 8443, ssl_context=server_ctx).start()
        async with aiohttp.ClientSession() as session:
            async with session.get("https://server.test:8443/", ssl=client_ctx) as response:
                text = await response.text()
        await runner.cleanup()
        return text

    net = MemoryNetwork(loss=0.01, seed=3, names={"server.test": SERVER})
    with asyncio.Runner(loop_factory=net.loop_factory) as runner:
        assert runner.run(asyncio.wait_for(main(), 60)) == "TLSv1.3"


def test_start_tls_and_a_refused_certificate_with_the_runtime_api(tmp_path):
    server_ctx, client_ctx = contexts(tmp_path)

    async def main():
        a, b = MemoryLink.pair(delay=0.001)
        client, server = Runtime(Stack(["192.0.2.1"], seed=1), a), Runtime(Stack([SERVER], seed=2), b)

        async def starttls(reader, writer):  # plain text first, then TLS on the same connection
            assert await reader.readline() == b"STARTTLS\n"
            writer.write(b"GO\n")
            await writer.drain()
            await writer.start_tls(server_ctx)
            await tls_echo(reader, writer)

        await start_server(starttls, SERVER, 25, runtime=server)
        reader, writer = await open_connection(SERVER, 25, runtime=client)
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"GO\n"
        await writer.start_tls(client_ctx)
        writer.write(b"secret")
        echoed = await reader.readexactly(6)
        version = writer.get_extra_info("ssl_object").version()
        writer.close()
        # a client that does not trust the certificate fails the handshake, as asyncio's does
        await create_server(asyncio.Protocol, SERVER, 443, runtime=server, ssl=server_ctx)
        try:
            await open_connection(SERVER, 443, runtime=client, ssl=ssl.create_default_context())
        except ssl.SSLCertVerificationError as e:
            refused = e.verify_message
        return echoed, version, refused

    assert asyncio.run(asyncio.wait_for(main(), 60)) == (b"secret", "TLSv1.3", "self-signed certificate")
