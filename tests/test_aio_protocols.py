"""Issue 26, build 1, with the runtime API (no special loop): the protocol-level create_connection,
host names resolved as asyncio resolves them, and config= per connection and per listener, seen on
the wire."""

import asyncio

from tcpwave.aio import MemoryLink, Runtime, create_connection, create_server, open_connection, start_server
from tcpwave.core.config import Config
from tcpwave.stack import Stack
from tcpwave.wire.ip import parse_ip
from tcpwave.wire.tcp import SYN, parse_tcp


class Tapped(MemoryLink):
    """A memory link that also keeps every segment it carries."""

    seen: list

    def send(self, packet, gso_size=0, partial=False):
        ip = parse_ip(packet)
        self.seen.append(parse_tcp(bytes(ip.payload), ip.src, ip.dst))
        super().send(packet, gso_size, partial)


def pair(server_address="192.0.2.2"):
    a, b = Tapped.pair(delay=0.001)
    a.seen = b.seen = []
    return Runtime(Stack(["192.0.2.1"], seed=1), a), Runtime(Stack([server_address], seed=2), b), a.seen


class Hello(asyncio.Protocol):
    def connection_made(self, transport):
        transport.write(b"hello")
        transport.close()


class Collect(asyncio.Protocol):
    def __init__(self):
        self.data, self.done = b"", asyncio.get_running_loop().create_future()

    def data_received(self, data):
        self.data += data

    def connection_lost(self, exc):
        self.done.set_result(self.data)


def test_protocol_level_create_connection():
    async def main():
        client, server, _ = pair()
        await create_server(Hello, "192.0.2.2", 7, runtime=server)
        transport, protocol = await create_connection(Collect, "192.0.2.2", 7, runtime=client)
        assert isinstance(protocol, Collect) and transport.get_protocol() is protocol
        return await protocol.done

    assert asyncio.run(asyncio.wait_for(main(), 30)) == b"hello"


def test_localhost_is_resolved_as_asyncio_resolves_it():
    """'localhost' goes through loop.getaddrinfo (/etc/hosts): to the stack that owns 127.0.0.1."""

    async def main():
        client, server, _ = pair("127.0.0.1")
        await create_server(Hello, "localhost", 7, runtime=server)
        reader, writer = await open_connection("localhost", 7, runtime=client)
        return await reader.read(), writer.get_extra_info("peername")

    assert asyncio.run(asyncio.wait_for(main(), 30)) == (b"hello", ("127.0.0.1", 7))


def test_config_per_connection_and_per_listener():
    async def main():
        client, server, seen = pair()

        async def quiet(reader, writer):
            writer.close()

        await start_server(quiet, "192.0.2.2", 7, runtime=server, config=Config(mss=1000, sack=False))
        await start_server(quiet, "192.0.2.2", 8, runtime=server)
        for port, config in ((7, Config(mss=536, timestamps=False)), (8, None)):
            reader, writer = await open_connection("192.0.2.2", port, runtime=client, config=config)
            await reader.read()
            writer.close()
        return [(s.dst_port if s.dst_port in (7, 8) else s.src_port, s.options.mss, s.options.ts is not None,
                 s.options.sack_permitted) for s in seen if s.flags & SYN]

    syns = asyncio.run(asyncio.wait_for(main(), 30))
    assert syns == [(7, 536, False, True), (7, 1000, False, False),  # the connection's and the listener's
                    (8, 1460, True, True), (8, 1460, True, True)]  # the stacks' defaults
