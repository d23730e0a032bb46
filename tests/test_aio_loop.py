"""Issue 26, build 2: unchanged asyncio programs (aiohttp server and client, websockets, h11) on a
tcpwave loop over a memory network with a seeded 1%-lossy link; the same seed gives the same pcap."""

import asyncio
import io
import socket

import pytest
from apps import aiohttp_app, h11_app, websockets_app

from tcpwave.aio.loop import MemoryNetwork
from tcpwave.views.pcap import PcapWriter
from tcpwave.wire.ip import parse_ip
from tcpwave.wire.tcp import parse_tcp

SERVER = "192.0.2.2"


def run_on(net: MemoryNetwork, coro, seconds: float = 60):
    with asyncio.Runner(loop_factory=net.loop_factory) as runner:
        return runner.run(asyncio.wait_for(coro, seconds))


@pytest.mark.parametrize("app, expected", [
    (h11_app, {"status": 200, "ok": True}),
    (aiohttp_app, {"hello": {"hello": "tcpwave"}, "upload_ok": True, "download_ok": True}),
    (websockets_app, {"echoed": 20, "ok": True}),
])
def test_unchanged_app_runs_over_a_lossy_memory_network(app, expected):
    capture = io.BytesIO()
    pcap = PcapWriter(capture)
    net = MemoryNetwork([("192.0.2.1"), SERVER], loss=0.01, seed=11, tap=pcap)
    assert run_on(net, app.main(SERVER, 8080)) == expected
    # it went through tcpwave, and the link lost some of it (the seed is chosen so that it does)
    assert pcap.count > 50 and net.switch.dropped >= 1


def test_aiohttp_client_sockets_are_taken_over_by_tcpwave():
    """aiohttp's happy eyeballs makes a kernel socket and sock_connect()s it: the loop makes the
    connection on tcpwave instead (no kernel route to 192.0.2.2 is needed) and hands it over."""
    net = MemoryNetwork(loss=0.0, seed=1)
    connects = []

    async def main():
        loop = asyncio.get_running_loop()
        original = loop.sock_connect

        async def spy(sock, address):
            connects.append(address)
            return await original(sock, address)

        loop.sock_connect = spy  # type: ignore[method-assign]
        return await aiohttp_app.main(SERVER, 8081)

    assert run_on(net, main())["download_ok"]
    assert connects and all(a == (SERVER, 8081) for a in connects)


def capture(seed: int) -> bytes:
    out = io.BytesIO()
    pcap = PcapWriter(out)
    net = MemoryNetwork(loss=0.01, seed=seed, tap=pcap)
    run_on(net, h11_app.main(SERVER, 8080))
    return out.getvalue()


def test_the_same_seed_gives_the_same_pcap_twice():
    first, second, other = capture(5), capture(5), capture(6)
    assert first == second
    assert other != first


def tcp_headers(app, seed: int) -> list:
    """What the network carried, payload aside: time, addresses, ports, seq, ack, flags, window,
    length and timestamps of every segment."""
    seen = []

    def tap(t, packet):
        ip = parse_ip(packet)
        s = parse_tcp(bytes(ip.payload), ip.src, ip.dst)
        seen.append((t, str(ip.src), s.src_port, s.dst_port, s.seq, s.ack, s.flags, s.window, len(s.payload),
                     s.options.ts))

    run_on(MemoryNetwork(loss=0.01, seed=seed, tap=tap), app.main(SERVER, 8080))
    return seen


@pytest.mark.parametrize("app", [aiohttp_app, websockets_app])
def test_the_same_seed_gives_the_same_segments_for_apps_with_random_bytes(app):
    """websockets masks each frame with a random key and aiohttp stamps a Date: their bytes differ
    from run to run, but what TCP does with them (every segment, when, of what size) does not."""
    first = tcp_headers(app, 5)
    assert len(first) > 40 and tcp_headers(app, 5) == first


def test_addresses_the_network_does_not_own_go_to_the_kernel():
    """A kernel listener on 127.0.0.1 next to tcpwave's: the loop falls through to normal sockets."""
    net = MemoryNetwork(virtual_time=False)

    async def main():
        async def answer(reader, writer):
            writer.write(await reader.read(4))
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        assert server.sockets[0].fileno() >= 0  # a kernel socket
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        writer.write(b"kern")
        data = await reader.read()
        writer.close()
        server.close()
        return data, writer.get_extra_info("socket") is not None

    assert run_on(net, main()) == (b"kern", True)


def test_server_is_like_asyncio_server():
    net = MemoryNetwork()

    async def main():
        loop = asyncio.get_running_loop()
        served = []
        server = await loop.create_server(lambda: Recorder(served), SERVER, 0, start_serving=False)
        (sock,) = server.sockets
        host, port = sock.getsockname()
        assert (sock.family, host, server.get_loop()) == (socket.AF_INET, SERVER, loop)
        assert 49152 <= port < 65536 and not server.is_serving()
        # a client connected before start_serving() is served once it is called
        reader, writer = await asyncio.open_connection(SERVER, port)
        await asyncio.sleep(0.1)
        assert served == []  # connected (the stack's backlog), not yet given a protocol
        await server.start_serving()
        assert server.is_serving()
        writer.write(b"hello")
        await writer.drain()
        for _ in range(100):
            if served and served[-1] == b"hello":
                break
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()
        return served

    assert run_on(net, main()) == [b"made", b"hello"]


class Recorder(asyncio.Protocol):
    def __init__(self, seen):
        self.seen = seen

    def connection_made(self, transport):
        self.seen.append(b"made")

    def data_received(self, data):
        self.seen.append(bytes(data))


class Buffered(asyncio.BufferedProtocol):
    """Reads into one small buffer (7 bytes at a time), as a BufferedProtocol may."""

    def __init__(self, done):
        self.buf, self.got, self.done = bytearray(7), bytearray(), done

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.got += self.buf[:nbytes]

    def eof_received(self):
        self.done.set_result(bytes(self.got))


def test_buffered_protocol_set_protocol_and_sendfile_fallback(tmp_path):
    net = MemoryNetwork(loss=0.01, seed=2)
    path = tmp_path / "file"
    path.write_bytes(bytes(range(256)) * 400)

    async def main():
        loop = asyncio.get_running_loop()

        async def send_file(reader, writer):
            with open(path, "rb") as f:
                await loop.sendfile(writer.transport, f, offset=256)
            writer.close()

        await asyncio.start_server(send_file, SERVER, 9000)
        done = loop.create_future()
        transport, first = await loop.create_connection(asyncio.Protocol, SERVER, 9000)
        assert transport.get_protocol() is first
        buffered = Buffered(done)
        transport.set_protocol(buffered)
        assert transport.get_protocol() is buffered
        return await done

    assert run_on(net, main()) == bytes(range(256)) * 399


def test_names_the_loop_owns_resolve_as_etc_hosts_would():
    net = MemoryNetwork(names={"server.test": SERVER})

    async def main():
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo("server.test", 80, type=socket.SOCK_STREAM)
        return await h11_app.main("server.test", 8080), infos[0][4]

    assert run_on(net, main()) == ({"status": 200, "ok": True}, (SERVER, 80))


def test_names_the_system_resolves_to_the_network_go_through_tcpwave(monkeypatch):
    """A name that the system's resolver (/etc/hosts, here stood in for) maps to an address of the
    network: the loop resolves it as asyncio would and connects through tcpwave."""
    real = socket.getaddrinfo

    def hosts_file(host, *args, **kwds):
        return real(SERVER if host == "db.example" else host, *args, **kwds)

    monkeypatch.setattr(socket, "getaddrinfo", hosts_file)
    net = MemoryNetwork()
    assert run_on(net, h11_app.main("db.example", 8080)) == {"status": 200, "ok": True}
    assert net.switch.sent > 10  # (no kernel route reaches 192.0.2.2: only tcpwave could carry it)


def test_a_socket_connected_but_never_handed_over_resets_its_connection():
    """A socket sock_connect()ed through tcpwave and then let go without create_connection(sock=)
    (a happy-eyeballs loser, say) does not leave its connection open: the peer is reset."""
    import gc

    net = MemoryNetwork()

    async def main():
        loop = asyncio.get_running_loop()
        lost = loop.create_future()

        class Watch(asyncio.Protocol):
            def connection_lost(self, exc):
                lost.set_result(type(exc).__name__)

        await loop.create_server(Watch, SERVER, 9)
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, (SERVER, 9))
        sock.close()
        del sock
        gc.collect()
        return await lost

    assert run_on(net, main()) == "ConnectionResetError"


def test_an_ipv6_memory_network():
    net = MemoryNetwork(["2001:db8::1", "2001:db8::2"], loss=0.01, seed=3)
    assert run_on(net, h11_app.main("2001:db8::2", 8080)) == {"status": 200, "ok": True}
    assert net.switch.sent > 50
