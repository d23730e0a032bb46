"""The pytest plugin (tcpwave.testing): a user's asyncio app tested under 1% seeded loss through the
`tcpwave_network` fixture, runs that replay from their seed, partitions, and a failing test that leaves
its pcap behind and says where (run in a separate pytest, which loads the plugin by its entry point)."""

import asyncio
import hashlib
import subprocess
import sys

import pytest

from tcpwave.testing import Network
from tcpwave.views.capture import read_capture


# ---- a user's application: a line-based key-value store, written against plain asyncio streams
async def kv_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    store: dict[bytes, bytes] = {}
    while line := await reader.readline():
        cmd, _, rest = line.rstrip(b"\n").partition(b" ")
        if cmd == b"SET":
            key, _, value = rest.partition(b" ")
            store[key] = value
            writer.write(b"OK\n")
        elif cmd == b"GET":
            writer.write(store.get(rest, b"(nil)") + b"\n")
        await writer.drain()
    writer.close()


async def kv_client(open_connection, address: str, n: int) -> list[bytes]:
    reader, writer = await open_connection(address, 6379)
    answers = []
    for i in range(n):
        writer.write(b"SET key%d %s\n" % (i, b"v" * (i % 1400)))
        writer.write(b"GET key%d\n" % i)
    await writer.drain()
    for _ in range(2 * n):
        answers.append((await reader.readline()).rstrip(b"\n"))
    writer.close()
    return answers


def _run_kv(net: Network, n: int = 300) -> list[bytes]:
    net.host("192.0.2.1")
    net.host("192.0.2.2")

    async def main() -> list[bytes]:  # the app's own asyncio calls, unedited: the network's loop routes them
        await asyncio.start_server(kv_server, "192.0.2.1", 6379)
        return await kv_client(asyncio.open_connection, "192.0.2.1", n)

    return net.run(main())


@pytest.mark.tcpwave(loss=0.01, delay=0.02, reorder=0.01)
def test_a_users_app_under_one_percent_loss(tcpwave_network):
    answers = _run_kv(tcpwave_network)
    assert answers[0::2] == [b"OK"] * 300
    assert answers[1::2] == [b"v" * (i % 1400) for i in range(300)]
    assert tcpwave_network.stats["lost"] > 0  # the loss was real: the app's answers came through it


def _pcap_digest(seed: int, path) -> tuple[str, int]:
    net = Network(seed, loss=0.01, delay=0.02)
    try:
        _run_kv(net, 200)
        net.write_pcap(str(path))
        return hashlib.sha256(path.read_bytes()).hexdigest(), net.stats["lost"]
    finally:
        net.close()


def test_the_same_seed_replays_the_same_packets(tmp_path):
    first, lost = _pcap_digest(11, tmp_path / "a.pcap")
    again, _ = _pcap_digest(11, tmp_path / "b.pcap")
    other, _ = _pcap_digest(12, tmp_path / "c.pcap")
    assert lost > 0
    assert first == again
    assert other != first
    assert len(read_capture(str(tmp_path / "a.pcap"))) > 50


def test_virtual_time_makes_long_timeouts_free(tcpwave_network):
    """A 30-second wait costs nothing in real time: the clock jumps to the next timer."""
    async def main() -> float:
        start = asyncio.get_running_loop().time()
        await asyncio.sleep(30)
        return asyncio.get_running_loop().time() - start

    assert tcpwave_network.run(main()) == pytest.approx(30)


def test_a_partition_stalls_connections_until_healed(tcpwave_network):
    server, client = tcpwave_network.host("192.0.2.1"), tcpwave_network.host("192.0.2.2")

    async def echo(reader, writer):
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    async def main():
        await server.start_server(echo, port=7)
        tcpwave_network.partition("192.0.2.1", "192.0.2.2")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.open_connection("192.0.2.1", 7), 5)
        tcpwave_network.heal()
        reader, writer = await client.open_connection("192.0.2.1", 7)
        writer.write(b"after the partition")
        return await reader.read(100)

    assert tcpwave_network.run(main()) == b"after the partition"
    assert tcpwave_network.stats["partitioned"] > 0


def test_a_rate_limit_paces_the_transfer(tcpwave_network):
    """1 Mbit/s: 125,000 bytes need at least a (virtual) second on the wire."""
    tcpwave_network.link("192.0.2.2", "192.0.2.1", rate=1e6)
    server, client = tcpwave_network.host("192.0.2.1"), tcpwave_network.host("192.0.2.2")
    got = bytearray()

    async def sink(reader, writer):
        got.extend(await reader.read(-1))
        writer.close()

    async def main() -> float:
        await server.start_server(sink, port=9)
        _, writer = await client.open_connection("192.0.2.1", 9)
        start = tcpwave_network.now()
        writer.write(bytes(125_000))
        writer.write_eof()
        while len(got) < 125_000:
            await asyncio.sleep(0.01)
        return tcpwave_network.now() - start

    assert tcpwave_network.run(main()) >= 1.0


FAILING = '''
import pytest

@pytest.mark.tcpwave(loss=0.01)
def test_reads_once(tcpwave_network):
    """A client bug that loss brings out: one read() taken as the whole answer."""
    server, client = tcpwave_network.host("192.0.2.1"), tcpwave_network.host("192.0.2.2")

    async def big(reader, writer):
        await reader.readline()
        writer.write(b"x" * 200_000)
        await writer.drain()
        writer.close()

    async def main():
        await server.start_server(big, port=80)
        reader, writer = await client.open_connection("192.0.2.1", 80)
        writer.write(b"GET\\n")
        return await reader.read(1 << 20)

    assert len(tcpwave_network.run(main())) == 200_000
'''


def _pytest(path, *args):
    return subprocess.run([sys.executable, "-m", "pytest", str(path), "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, timeout=120)


def test_a_failing_test_leaves_its_pcap_and_seed(tmp_path):
    test_file = tmp_path / "test_users_app.py"
    test_file.write_text(FAILING)
    pcaps = tmp_path / "pcaps"
    run = _pytest(test_file, "--tcpwave-pcap-dir", str(pcaps))
    assert run.returncode == 1, run.stdout + run.stderr
    saved = list(pcaps.glob("*.pcap"))
    assert len(saved) == 1, run.stdout
    assert f"saved to {saved[0]}" in run.stdout
    seed = int(run.stdout.split("replay with --tcpwave-seed ")[1].split(")")[0])
    packets = read_capture(str(saved[0]))
    assert len(packets) > 20
    first = saved[0].read_bytes()
    # replaying with the printed seed gives the same packets
    again = _pytest(test_file, "--tcpwave-pcap-dir", str(tmp_path / "again"), "--tcpwave-seed", str(seed))
    assert again.returncode == 1
    assert next((tmp_path / "again").glob("*.pcap")).read_bytes() == first


def test_a_passing_test_leaves_no_pcap(tmp_path):
    test_file = tmp_path / "test_fine.py"
    test_file.write_text(FAILING.replace("== 200_000", "> 0"))
    run = _pytest(test_file, "--tcpwave-pcap-dir", str(tmp_path / "pcaps"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert not (tmp_path / "pcaps").exists()
