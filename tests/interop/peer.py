"""Runs inside a network namespace made by tests/test_interop_linux.py: tcpwave on a TUN device
against the Linux kernel's TCP in the same namespace. Prints one JSON object with what happened.

usage: python peer.py SCENARIO FAMILY      (FAMILY: 4 or 6)
"""

import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.drivers.tun import TunDevice, run
from tcpwave.stack import Stack

ADDR = {4: ("192.0.2.1/24", "192.0.2.1", "192.0.2.2"), 6: ("2001:db8::1/64", "2001:db8::1", "2001:db8::2")}


def linux_states() -> list[str]:
    out = subprocess.run(["ss", "-tanH"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def echo_server(family: int) -> dict:
    """A Linux client sends data to a tcpwave echo server, half-closes, reads the echo to EOF."""
    kernel, linux_ip, our_ip = ADDR[family]
    sink = ListSink()
    stack = Stack([our_ip], tracer=Tracer(sink), host="tcpwave", seed=1)
    result = {"closed": []}
    with TunDevice("tw0", kernel, our_ip) as dev:
        listener = stack.listen(7, 0.0)
        pending: dict = {}

        def app(now, events):
            for conn, e in events:
                if isinstance(e, ev.Connected):
                    listener.accept()
                if isinstance(e, ev.Closed):
                    result["closed"].append(e.reason)
                    continue
                out = pending.setdefault(conn, bytearray())
                if conn.readable and len(out) < 1 << 20:
                    out += conn.receive(now=now)
                while out and conn.state.name in ("ESTABLISHED", "CLOSE_WAIT"):
                    n = conn.send(bytes(out[:65536]), now)
                    del out[:n]
                    if not n:
                        break
                if conn.state.name == "CLOSE_WAIT" and not out and not conn.readable:
                    conn.shutdown(now)

        payload = os.urandom(int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000)
        got = bytearray()

        def linux_client():
            s = socket.create_connection((our_ip, 7), timeout=20)
            reader = threading.Thread(target=lambda: [got.extend(b) for b in iter(lambda: s.recv(65536), b"")])
            reader.start()
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            reader.join()
            s.close()

        client = threading.Thread(target=linux_client)
        client.start()
        run(stack, dev, app, until=lambda: not client.is_alive() and result["closed"], timeout=60)
        client.join(5)
        result["echo_equal"] = hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
        result["bytes"] = len(got)
        result["linux_states"] = linux_states()
    result["tcpwave_states"] = [e["to"] for e in sink if e["type"] == "state" and "(listening)" not in e["conn"]]
    return result


def client(family: int) -> dict:
    """tcpwave connects to a Linux server, sends data, half-closes; Linux answers with the SHA-256."""
    kernel, linux_ip, our_ip = ADDR[family]
    sink = ListSink()
    stack = Stack([our_ip], tracer=Tracer(sink), host="tcpwave", seed=2, config=Config(msl=1.0))
    result = {"closed": {}}
    srv = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6)
    with TunDevice("tw0", kernel, our_ip) as dev:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((linux_ip, 8080))
        srv.listen()
        payload = os.urandom(2_000_000)

        def linux_server():
            c, _ = srv.accept()
            h = hashlib.sha256()
            for b in iter(lambda: c.recv(65536), b""):
                h.update(b)
            c.sendall(h.hexdigest().encode())
            c.close()

        threading.Thread(target=linux_server, daemon=True).start()
        conn = stack.connect(linux_ip, 8080, 0.0)
        refused = stack.connect(linux_ip, 9, 0.0)  # nothing listens there
        sent, reply = [0], bytearray()

        def app(now, events):
            for c, e in events:
                if c is conn and isinstance(e, (ev.Connected, ev.SendSpace)):
                    while sent[0] < len(payload):
                        n = c.send(payload[sent[0]:sent[0] + 65536], now)
                        sent[0] += n
                        if not n:
                            break
                    if sent[0] == len(payload):
                        c.shutdown(now)
                elif isinstance(e, ev.DataReadable):
                    reply.extend(c.receive(now=now))
                elif isinstance(e, ev.EndOfStream):
                    result["linux_states_at_eof"] = linux_states()
                    c.close(now)
                elif isinstance(e, ev.Closed):
                    result["closed"][str(c.remote[1])] = e.reason

        for packet in stack.packets_to_send():
            dev.write(packet)
        run(stack, dev, app, until=lambda: len(result["closed"]) == 2, timeout=60)
        result["linux_saw_everything"] = reply.decode() == hashlib.sha256(payload).hexdigest()
        del refused
    srv.close()
    result["tcpwave_states"] = [e["to"] for e in sink if e["type"] == "state" and ":8080" in e["conn"]]
    return result


def resets(family: int) -> dict:
    """Linux aborts (SO_LINGER 0): the tcpwave application sees ConnectionResetError. Linux connecting
    to a closed tcpwave port sees ECONNREFUSED."""
    kernel, linux_ip, our_ip = ADDR[family]
    stack = Stack([our_ip], host="tcpwave", seed=3)
    result = {}
    srv = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6)
    with TunDevice("tw0", kernel, our_ip) as dev:
        srv.bind((linux_ip, 8081))
        srv.listen()

        def linux_server():
            c, _ = srv.accept()
            c.recv(100)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()  # RST

        threading.Thread(target=linux_server, daemon=True).start()
        conn = stack.connect(linux_ip, 8081, 0.0)

        def app(now, events):
            for c, e in events:
                if isinstance(e, ev.Connected):
                    c.send(b"hello", now)
                elif isinstance(e, ev.Closed):
                    result["reason"] = e.reason
                    try:
                        c.send(b"more", now)
                    except ConnectionResetError as err:
                        result["error"] = type(err).__name__

        for packet in stack.packets_to_send():
            dev.write(packet)
        run(stack, dev, app, until=lambda: "reason" in result, timeout=30)
        out = {}

        def linux_connect_closed_port():
            try:
                socket.create_connection((our_ip, 4444), timeout=10).close()
                out["linux"] = "connected"
            except ConnectionRefusedError:
                out["linux"] = "ECONNREFUSED"

        t = threading.Thread(target=linux_connect_closed_port)
        t.start()
        run(stack, dev, lambda now, events: None, until=lambda: "linux" in out, timeout=20)
        t.join(5)
        result["linux_connect"] = out.get("linux")
        del conn
    srv.close()
    return result


def aio_echo(family: int) -> dict:
    """The asyncio streams API on a TUN device: a Linux client against a tcpwave echo server."""
    import asyncio
    import concurrent.futures

    from tcpwave.aio import Runtime, TunLink, start_server

    kernel, linux_ip, our_ip = ADDR[family]
    payload = os.urandom(500_000)

    def linux_client() -> bytes:
        s = socket.create_connection((our_ip, 7), timeout=20)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b"".join(iter(lambda: s.recv(65536), b""))
        s.close()
        return got

    async def main():
        with TunDevice("tw0", kernel, our_ip) as dev:
            runtime = Runtime(Stack([our_ip], seed=4), TunLink(dev))
            peers = []

            async def echo(reader, writer):
                peers.append(writer.get_extra_info("peername"))
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.close()
                await writer.wait_closed()

            async with await start_server(echo, our_ip, 7, runtime=runtime):
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    got = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(pool, linux_client), 60)
            runtime.close()
            return {"echo_equal": got == payload, "peer": peers[0][0] if peers else None}

    return asyncio.run(main())


def many(family: int) -> dict:
    """200 concurrent Linux clients against the asyncio echo server, each with its own random data."""
    import asyncio
    import concurrent.futures

    from tcpwave.aio import Runtime, TunLink, start_server

    kernel, linux_ip, our_ip = ADDR[family]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 200

    def one(i: int) -> bool:
        data = os.urandom(2000 + i * 37)
        s = socket.create_connection((our_ip, 7), timeout=60)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b"".join(iter(lambda: s.recv(65536), b""))
        s.close()
        return got == data

    async def main():
        with TunDevice("tw0", kernel, our_ip) as dev:
            runtime = Runtime(Stack([our_ip], seed=5), TunLink(dev))

            async def echo(reader, writer):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.close()

            async with await start_server(echo, our_ip, 7, runtime=runtime, backlog=256):
                with concurrent.futures.ThreadPoolExecutor(count) as pool:
                    loop = asyncio.get_running_loop()
                    results = await asyncio.wait_for(
                        asyncio.gather(*(loop.run_in_executor(pool, one, i) for i in range(count))), 120)
            runtime.close()
            return {"ok": sum(results), "count": count}

    return asyncio.run(main())


def lossy(family: int) -> dict:
    """N bytes (default 10 MB) each way through 5% random loss in both directions (iptables' statistic
    match)."""
    import asyncio
    import concurrent.futures

    from tcpwave.aio import FaultyLink, Runtime, TunLink, open_connection

    kernel, linux_ip, our_ip = ADDR[family]
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000_000
    cc = sys.argv[4] if len(sys.argv) > 4 else "reno"
    tool = "iptables" if family == 4 else "ip6tables"
    for chain in ("INPUT", "OUTPUT"):
        subprocess.run([tool, "-A", chain, "-i" if chain == "INPUT" else "-o", "tw0", "-m", "statistic",
                        "--mode", "random", "--probability", "0.05", "-j", "DROP"], check=True)
    to_linux, to_us = os.urandom(size), os.urandom(size)
    srv = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6)

    def linux_side() -> bytes:
        c, _ = srv.accept()
        got = bytearray()
        sender = threading.Thread(target=lambda: (c.sendall(to_us), c.shutdown(socket.SHUT_WR)))
        sender.start()
        for b in iter(lambda: c.recv(65536), b""):
            got += b
        sender.join()
        c.close()
        return bytes(got)

    async def main():
        with TunDevice("tw0", kernel, our_ip) as dev:
            srv.bind((linux_ip, 5001))  # the address exists once the device does
            srv.listen()
            # Linux's minimum RTO (200 ms) rather than RFC 6298's 1 s: at 5% loss timeouts are common
            delay = float(os.environ.get("TCPWAVE_TEST_DELAY", "0.02"))  # tcpwave's own injector
            link = FaultyLink(TunLink(dev), delay=delay, seed=6)
            runtime = Runtime(Stack([our_ip], seed=6, config=Config(rto_min=0.2, congestion_control=cc)), link)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                linux = asyncio.get_running_loop().run_in_executor(pool, linux_side)
                reader, writer = await open_connection(linux_ip, 5001, runtime=runtime)

                async def send():
                    writer.write(to_linux)
                    await writer.drain()
                    writer.write_eof()

                sending = asyncio.ensure_future(send())
                got = await asyncio.wait_for(reader.read(), 300)
                await sending
                linux_got = await asyncio.wait_for(linux, 300)
                writer.close()
            stats = writer.transport.get_extra_info("tcpwave_connection").stats
            runtime.close()
        return {"to_linux": linux_got == to_linux, "to_us": got == to_us,
                "retransmitted": stats.retransmitted_bytes, "timeouts": stats.timeouts,
                "cc": writer.transport.get_extra_info("tcpwave_connection").cc.name}

    return asyncio.run(main())


def close_orders(family: int) -> dict:
    """Both close orders, with Linux's own view (ss) of its state at each step."""
    kernel, linux_ip, our_ip = ADDR[family]
    stack = Stack([our_ip], host="tcpwave", seed=7, config=Config(msl=1.0))
    out: dict = {}

    def linux_state(port: int) -> str:
        rows = subprocess.run(["ss", "-tanH"], capture_output=True, text=True).stdout.splitlines()
        hits = [r.split()[0] for r in rows if f":{port} " in r + " " and "LISTEN" not in r]
        return ",".join(hits) or "gone"

    with TunDevice("tw0", kernel, our_ip) as dev:
        # 1. Linux closes first; tcpwave (server) keeps its side open for a while
        listener = stack.listen(7, 0.0)
        conns = {}

        def app(now, events):
            for conn, e in events:
                if isinstance(e, ev.Connected):
                    conns["server"] = listener.accept()
                elif isinstance(e, ev.DataReadable):
                    conn.receive(now=now)
                elif isinstance(e, ev.EndOfStream):
                    conns["eof"] = True

        def linux_client():
            c = socket.create_connection((our_ip, 7), timeout=10)
            c.sendall(b"bye")
            c.close()

        threading.Thread(target=linux_client, daemon=True).start()
        run(stack, dev, app, until=lambda: conns.get("eof"))
        run(stack, dev, app, until=lambda: linux_state(7) == "FIN-WAIT-2", timeout=5)
        out["linux_first"] = {"tcpwave": str(conns["server"].state), "linux": linux_state(7)}
        conns["server"].close(0.0)
        run(stack, dev, app, until=lambda: conns["server"].state.name == "CLOSED", timeout=10)
        out["linux_first"]["after"] = {"tcpwave": str(conns["server"].state), "linux": linux_state(7)}

        # 2. tcpwave closes first; the Linux server keeps its side open for a while
        srv = socket.socket(socket.AF_INET if family == 4 else socket.AF_INET6)
        srv.bind((linux_ip, 8082))
        srv.listen()
        conn = stack.connect(linux_ip, 8082, 0.0)
        for p in stack.packets_to_send():
            dev.write(p)
        accepted = {}
        threading.Thread(target=lambda: accepted.setdefault("c", srv.accept()[0]), daemon=True).start()
        run(stack, dev, lambda now, events: None, until=lambda: conn.state.name == "ESTABLISHED" and "c" in accepted)
        conn.close(0.0)
        run(stack, dev, lambda now, events: None, until=lambda: conn.state.name == "FIN_WAIT_2", timeout=10)
        out["tcpwave_first"] = {"tcpwave": str(conn.state), "linux": linux_state(8082)}
        accepted["c"].close()
        run(stack, dev, lambda now, events: None, until=lambda: conn.state.name == "TIME_WAIT", timeout=10)
        run(stack, dev, lambda now, events: None, until=lambda: linux_state(8082) == "gone", timeout=5)
        out["tcpwave_first"]["after"] = {"tcpwave": str(conn.state), "linux": linux_state(8082)}
        srv.close()
    return out


if __name__ == "__main__":
    scenario, family = sys.argv[1], int(sys.argv[2])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    print(json.dumps({"echo": echo_server, "client": client, "resets": resets, "aio_echo": aio_echo, "many": many,
                      "lossy": lossy, "close_orders": close_orders}[scenario](family)))
