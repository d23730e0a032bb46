"""Runs inside a network namespace made by tests/test_aio_loop_tun.py: the unchanged asyncio apps of
tests/apps on a tcpwave loop whose stack is on a TUN device, against the Linux kernel's TCP in the
same namespace (the other side runs on a normal asyncio loop in a thread). Prints one JSON object.

usage: python loop_peer.py apps
       python loop_peer.py tls CERT KEY
"""

import asyncio
import json
import pathlib
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from apps import aiohttp_app, h11_app, websockets_app  # noqa: E402

from tcpwave.aio.loop import TunNetwork  # noqa: E402
from tcpwave.drivers.tun import TunDevice  # noqa: E402

LINUX, OURS = "192.0.2.1", "192.0.2.2"


def on_linux(coro_fn, *args):
    """Run coro_fn(*args) on a normal asyncio loop (kernel sockets) in a thread; returns (thread,
    result dict, started event). coro_fn may return a `stop` coroutine function (a server)."""
    box: dict = {}
    started, stop = threading.Event(), threading.Event()

    def thread():
        async def main():
            result = await coro_fn(*args)
            started.set()
            if callable(result):  # a server: serve until told to stop
                while not stop.is_set():
                    await asyncio.sleep(0.02)
                out = result()
                if asyncio.iscoroutine(out):
                    await out
            else:
                box["result"] = result

        try:
            asyncio.run(main())
        except BaseException as e:  # noqa: BLE001 (reported in the JSON)
            box["error"] = repr(e)
            started.set()

    t = threading.Thread(target=thread, daemon=True)
    t.start()
    return t, box, started, stop


def apps(net: TunNetwork) -> dict:
    out = {}
    for i, app in enumerate((h11_app, aiohttp_app, websockets_app)):
        name = app.__name__.split(".")[-1]
        port = 8000 + i

        async def tcpwave_server(app=app, port=port):  # tcpwave serves, a Linux client asks
            stop = await app.start(OURS, port)
            t, box, _, _ = on_linux(app.client, OURS, port)
            while t.is_alive():
                await asyncio.sleep(0.02)
            result = stop()
            if asyncio.iscoroutine(result):
                await result
            return box

        async def tcpwave_client(app=app, port=port):  # Linux serves, tcpwave's client asks
            t, box, started, stop = on_linux(app.start, LINUX, port + 100)
            while not started.is_set():
                await asyncio.sleep(0.02)
            try:
                return {"result": await app.client(LINUX, port + 100)}
            finally:
                stop.set()
                t.join(10)

        with asyncio.Runner(loop_factory=net.loop_factory) as runner:
            out[f"{name} tcpwave server"] = runner.run(asyncio.wait_for(tcpwave_server(), 60))
            out[f"{name} tcpwave client"] = runner.run(asyncio.wait_for(tcpwave_client(), 60))
    return out


def tls(net: TunNetwork, cert: str, key: str) -> dict:
    """A TLS 1.3 echo: tcpwave's client against a Python ssl server on a kernel socket, and against
    openssl s_server; tcpwave's TLS server against a Python ssl client on a kernel socket."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)
    client_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    listener = socket.create_server((LINUX, 4433))
    payload = bytes(range(256)) * 400

    def python_ssl_echo():
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
            while data := tls_conn.recv(65536):
                tls_conn.sendall(data)

    threading.Thread(target=python_ssl_echo, daemon=True).start()
    s_server = subprocess.Popen(["openssl", "s_server", "-quiet", "-tls1_3", "-accept", f"{LINUX}:4434",
                                 "-cert", cert, "-key", key, "-rev"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    async def client(port: int, data: bytes, want: int) -> dict:
        reader, writer = await asyncio.open_connection(LINUX, port, ssl=client_ctx, server_hostname="server.test")
        writer.write(data)
        got = await reader.readexactly(want)
        version = writer.get_extra_info("ssl_object").version()
        writer.close()
        return {"version": version, "got": got.decode("latin-1") if want < 100 else got == payload}

    async def main() -> dict:
        result = {"python ssl peer": await client(4433, payload, len(payload))}
        for _ in range(200):  # s_server listening?
            if subprocess.run(["ss", "-tlnH", "sport = :4434"], capture_output=True, text=True).stdout.strip():
                break
            await asyncio.sleep(0.05)
        result["openssl s_server"] = await client(4434, b"hello tcpwave\n", len("evawpct olleh\n"))

        async def echo(reader, writer):
            while data := await reader.read(65536):
                writer.write(data)
            writer.close()

        await asyncio.start_server(echo, OURS, 443, ssl=server_ctx)

        def python_ssl_client():
            with socket.create_connection((OURS, 443), timeout=20) as raw:
                with client_ctx.wrap_socket(raw, server_hostname="server.test") as tls_conn:
                    tls_conn.sendall(b"over TLS")
                    return tls_conn.recv(100).decode(), tls_conn.version()

        got, version = await asyncio.get_running_loop().run_in_executor(None, python_ssl_client)
        result["tcpwave server"] = {"version": version, "got": got}
        return result

    try:
        with asyncio.Runner(loop_factory=net.loop_factory) as runner:
            return runner.run(asyncio.wait_for(main(), 60))
    finally:
        s_server.kill()
        s_server.wait()


def watch_syns(device) -> list:
    """Record what tcpwave's stack puts on the device that opens a connection: ("SYN", dst port) and
    ("SYN-ACK", src port): proof that tcpwave, not the kernel, carried each connection."""
    seen: list = []
    write = device.write

    def spy(packet, *args):
        flags, sport, dport = packet[33], int.from_bytes(packet[20:22], "big"), int.from_bytes(packet[22:24], "big")
        if flags & 0x02:
            seen.append(("SYN-ACK", sport) if flags & 0x10 else ("SYN", dport))
        return write(packet, *args)

    device.write = spy
    return seen


if __name__ == "__main__":
    with TunDevice("tw0", f"{LINUX}/24", OURS) as device:
        syns = watch_syns(device)
        network = TunNetwork(device, OURS, ["192.0.2.0/24"])
        result = apps(network) if sys.argv[1] == "apps" else tls(network, sys.argv[2], sys.argv[3])
    result["tcpwave opened"] = sorted(set(syns))
    print(json.dumps(result))
