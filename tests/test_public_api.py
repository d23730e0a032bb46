"""The typed, declared public API (issue 26, build 5): `tcpwave.__all__` names the surface and each
name resolves; installed (not from the source tree) the package is typed, so `mypy --strict` on a user
program finds its types: the right program passes, and mistakes against tcpwave's types are caught."""

import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import venv

import pytest

import tcpwave

ROOT = pathlib.Path(__file__).resolve().parent.parent

USER_PROGRAM = '''
import asyncio
import socket

import tcpwave
from tcpwave.testing import Network


def blocking(net: tcpwave.Network, peer: str) -> bytes:
    sock: tcpwave.TcpSocket = net.create_connection((peer, 7), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(b"hello")
    data: bytes = sock.recv(100)
    sock.close()
    return data


async def app(net: Network) -> bytes:
    server, client = net.host("192.0.2.1"), net.host("192.0.2.2")

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        writer.close()

    srv: tcpwave.Server = await server.start_server(echo, port=7)
    reader, writer = await client.open_connection("192.0.2.1", 7)
    writer.write(b"ping")
    srv.close()
    return await reader.read(100)


def capture(path: str) -> tcpwave.Stack:
    config = tcpwave.Config(congestion_control="cubic")
    tracer = tcpwave.Tracer(tcpwave.ListSink())
    stack = tcpwave.Stack(["192.0.2.9"], config=config, tracer=tracer)
    with open(path, "wb") as f:
        writer = tcpwave.PcapWriter(f)
        writer.write(0.0, b"")
    return stack
'''

MISTAKES = '''
import tcpwave

sock = tcpwave.Network.memory_pair()[0].create_connection(("192.0.2.1", 7), timeout="5")
sock.sendall("text, not bytes")
n: str = sock.recv_into(bytearray(10))
tcpwave.Config(no_such_option=1)
tcpwave.Stack(["192.0.2.9"], tracer="no tracer")
'''


def test_all_names_the_lazy_public_surface():
    assert sorted(tcpwave.__all__) == sorted(tcpwave._LAZY)
    for name in tcpwave.__all__:
        assert getattr(tcpwave, name) is not None
    assert set(tcpwave.__all__) <= set(dir(tcpwave))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh virtual environment with tcpwave installed from a built copy (no editable path to the
    source tree): the python whose site-packages mypy searches."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root / "env", with_pip=False)
    python = root / "env" / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # built from a copy: a build writes build/ and *.egg-info into the tree it builds, where ./run test's
    # other pass, running beside this one, may be building too
    tree = root / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, tree / name)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--disable-pip-version-check", "--target", site, str(tree)],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TCPWAVE_COMPILE": "0"})  # the types are the same; no 2-minute compile
    if pip.returncode:  # (building needs setuptools from a package index)
        pytest.skip(f"pip could not build tcpwave here: {pip.stderr.strip().splitlines()[-1:]}")
    assert (pathlib.Path(site) / "tcpwave" / "py.typed").is_file()
    return python, root


def _mypy(installed, source: str, name: str) -> subprocess.CompletedProcess:
    python, root = installed
    program = root / name
    program.write_text(source)
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable",
                           str(python), "--cache-dir", str(root / ".mypy_cache"), str(program)],
                          capture_output=True, text=True, cwd=root, env=env, timeout=600)


def test_mypy_strict_finds_the_public_types(installed):
    assert sysconfig.get_paths()["purelib"] not in str(installed[0])
    run = _mypy(installed, USER_PROGRAM, "user_program.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Success" in run.stdout


def test_mypy_strict_catches_mistakes_against_them(installed):
    run = _mypy(installed, MISTAKES, "mistakes.py")
    out = run.stdout
    assert run.returncode == 1, out + run.stderr
    assert 'Argument 1 to "sendall" of "TcpSocket" has incompatible type "str"' in out
    assert 'Argument "timeout" to "create_connection" of "Network" has incompatible type "str"' in out
    assert 'Incompatible types in assignment (expression has type "int", variable has type "str")' in out
    assert 'Unexpected keyword argument "no_such_option" for "Config"' in out
    assert 'Argument "tracer" to "Stack" has incompatible type "str"' in out
    assert "py.typed" not in out and "missing library stubs" not in out


def test_a_packet_tap_captures_an_applications_packets(tmp_path):
    """tcpwave.tapped: a pcap of what a Runtime's link carries, from application code (no CLI)."""
    import asyncio

    from tcpwave.wire.ip import parse_ip
    from tcpwave.wire.tcp import parse_tcp

    path = tmp_path / "app.pcap"

    async def main() -> bytes:
        a, b = tcpwave.MemoryLink.pair(delay=0.001)
        with open(path, "wb") as f:
            loop = asyncio.get_running_loop()
            client = tcpwave.Runtime(tcpwave.Stack(["192.0.2.1"]), tcpwave.tapped(a, tcpwave.PcapWriter(f),
                                                                                  clock=loop.time))
            server = tcpwave.Runtime(tcpwave.Stack(["192.0.2.2"]), b)

            async def echo(reader, writer):
                writer.write(await reader.read(100))
                writer.close()

            await tcpwave.start_server(echo, "192.0.2.2", 7, runtime=server)
            reader, writer = await tcpwave.open_connection("192.0.2.2", 7, runtime=client)
            writer.write(b"tapped")
            answer = await reader.read(100)
            client.close()
            server.close()
            return answer

    assert asyncio.run(main()) == b"tapped"
    packets = tcpwave.read_capture(str(path))
    segments = [(parse_ip(p).src, parse_tcp(parse_ip(p).payload)) for _, p in packets]
    assert str(segments[0][0]) == "192.0.2.1" and segments[0][1].flags & 0x02  # our SYN first
    assert any(seg.payload == b"tapped" and str(src) == "192.0.2.1" for src, seg in segments)  # out
    assert any(seg.payload == b"tapped" and str(src) == "192.0.2.2" for src, seg in segments)  # and in
    times = [t for t, _ in packets]
    assert times == sorted(times)
