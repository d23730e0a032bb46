"""Several stacks for one address (`tcpwave serve --workers N`): ports shared out between them, packets
for another stack's connection handed over, and, against the kernel, a multi-queue TUN device that
keeps each flow on the queue of the worker that owns it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
from netns import namespace, needs_netns, wait_for_file

from tcpwave.core import events as ev
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.drivers import steering
from tcpwave.stack import EPHEMERAL, Stack
from tcpwave.wire.tcp import ACK, SYN


def _pair(seed: int = 3):
    """Two stacks for 192.0.2.2 sharing ports (0 of 2 and 1 of 2), with the forwarding between them
    recorded, and a peer at 192.0.2.1 listening on port 80."""
    a, b = Stack(["192.0.2.2"], seed=seed), Stack(["192.0.2.2"], seed=seed + 1, tracer=Tracer(ListSink()))
    handed: list[tuple[int, bool]] = []
    stacks = [a, b]

    def to(owner, packet, trusted):
        handed.append((owner, trusted))
        stacks[owner].receive_packets([bytes(packet)], 0.0, [trusted])

    a.share_ports(0, 2, to)
    b.share_ports(1, 2, to)
    peer = Stack(["192.0.2.1"], seed=seed + 2)
    peer.listen(80, 0.0)
    return a, b, peer, handed


def test_shared_stacks_pick_their_own_ephemeral_ports():
    a, b, _, _ = _pair()
    ports_a = {a.connect("192.0.2.1", 80, 0.0).local[1] for _ in range(200)}
    ports_b = {b.connect("192.0.2.1", 80, 0.0).local[1] for _ in range(200)}
    assert len(ports_a) == len(ports_b) == 200
    assert all(p % 2 == 0 and p in EPHEMERAL for p in ports_a)
    assert all(p % 2 == 1 and p in EPHEMERAL for p in ports_b)


def test_a_stack_runs_out_of_its_share_of_ports_cleanly():
    s = Stack(["192.0.2.2"], seed=1)
    s.share_ports(3, 4, lambda *a: None)
    ports = [s.connect("192.0.2.1", 80, 0.0).local[1] for _ in range(len(EPHEMERAL) // 4)]
    assert len(set(ports)) == len(EPHEMERAL) // 4 and all(p % 4 == 3 for p in ports)
    from tcpwave.stack import PortInUse

    with pytest.raises(PortInUse):
        s.connect("192.0.2.1", 80, 0.0)


def test_a_reply_that_reaches_the_wrong_stack_is_handed_to_its_owner():
    a, b, peer, handed = _pair()
    conn = a.connect("192.0.2.1", 80, 0.0)
    peer.receive_packets(a.packets_to_send(), 0.0)
    synack = peer.packets_to_send()
    assert len(synack) == 1
    b.receive_packets(synack, 0.001)  # the kernel steered the SYN,ACK to the other queue
    assert handed == [(0, False)] and b.forwarded == 1
    assert b.packets_to_send() == []  # no RST from the stack that does not own the connection
    assert b.tracer._sinks[0].of_type("forward") == \
        [{"t": 0.001, "host": "host", "type": "forward", "to_stack": 0, "port": conn.local[1]}]
    assert conn.state.value == "ESTABLISHED"
    assert any(isinstance(e, ev.Connected) for c, e in a.events() if c is conn)


def test_a_stray_segment_for_a_port_the_stack_owns_is_still_reset():
    a, b, peer, handed = _pair()
    conn = b.connect("192.0.2.1", 80, 0.0)  # an odd port: b's own
    peer.receive_packets(b.packets_to_send(), 0.0)
    a.receive_packets([], 0.0)
    b2 = Stack(["192.0.2.2"], seed=9)  # b's twin that has never heard of the connection
    b2.share_ports(1, 2, lambda *x: handed.append(x))
    b2.receive_packets(peer.packets_to_send(), 0.0)
    assert handed == [] and b2.forwarded == 0
    assert len(b2.packets_to_send()) == 1  # the RST for a segment that matches nothing
    assert conn.local[1] % 2 == 1


# Two stacks on the two queues of one multi-queue TUN device, in one process and one event loop, each
# opening connections to a Linux echo server: every reply must come back on the opener's queue.
STEERING = r"""
import asyncio, hashlib, json, socket, sys, threading
from tcpwave.aio import Runtime, TunLink, open_connection
from tcpwave.drivers.tun import TunDevice
from tcpwave.stack import Stack
from tcpwave.wire.ip import parse_ip
from tcpwave.wire.tcp import parse_tcp
from tcpwave.stack import EPHEMERAL
n, steer, name = int(sys.argv[1]), sys.argv[2] == "steer", sys.argv[3] if len(sys.argv) > 3 else "tcpwq0"
kernel, ours = sys.argv[4:6] if len(sys.argv) > 5 else ("192.0.2.1/24", "192.0.2.2")
peer = kernel.split("/")[0]

def echo_server(s):
    def serve(c):
        while data := c.recv(65536):
            c.sendall(data)
        c.close()
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()

async def main():
    dev = TunDevice(name, kernel, ours, queues=2)
    refused = dev.steer_by_port(EPHEMERAL) if steer else "not asked"
    s = socket.socket(socket.AF_INET6 if ":" in peer else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((peer, 7000)); s.listen(128)  # listening before the first SYN
    threading.Thread(target=echo_server, args=(s,), daemon=True).start()
    runtimes, handed, received = [], [], [0, 0]

    class Counted(TunLink):  # counts what arrives on its own queue (the i-th: its kernel number is 2i with lanes)
        def attach(self, callback):
            def counted(packets, trusted=None, i=dev.queues.index(self.device)):
                received[i] += len(packets)
                callback(packets, trusted)
            super().attach(counted)

    for i, q in enumerate(dev.queues):
        rt = Runtime(Stack([ours]), Counted(q, lane=dev.lane(i)))
        def elsewhere(owner, packet, trusted, i=i):
            pkt = parse_ip(bytes(packet))
            handed.append(parse_tcp(pkt.payload, pkt.src, pkt.dst).flags)
            runtimes[owner]._on_packets([bytes(packet)], [trusted])
        rt.stack.share_ports(i, 2, elsewhere)
        runtimes.append(rt)

    async def one(rt, k):
        reader, writer = await open_connection(peer, 7000, runtime=rt)
        data = hashlib.sha256(str(k).encode()).digest() * 2000
        writer.write(data); writer.write_eof()
        got = await reader.read()
        writer.close()
        return got == data

    results = await asyncio.wait_for(asyncio.gather(*(one(runtimes[k % 2], k) for k in range(n))), 60)
    print(json.dumps({"ok": sum(results), "handed": handed, "received": received, "refused": refused}))
    for rt in runtimes:
        rt.close()
    dev.close()

asyncio.run(main())
"""


def _bpf_refused() -> str | None:
    """Why this process may not load the steering program, or None."""
    try:
        os.close(steering.load(EPHEMERAL))
    except steering.BpfError as e:
        return str(e)
    return None


def _open_from_both_queues(steer: str, *addresses: str) -> dict:
    with namespace("tcpwave-mq") as ns:
        r = ns.call(sys.executable, "-c", STEERING, "32", steer, "tcpwq0", *addresses, capture_output=True, text=True,
                    timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(r.stdout)
    assert result["ok"] == 32  # every transfer echoed intact
    assert min(result["received"]) > 16 * 20  # each queue carried its 16 connections (~40 packets each)
    return result


@needs_netns
def test_kernel_steers_replies_to_the_queue_that_opened_the_connection():
    result = _open_from_both_queues("hash")
    # The kernel learns a flow's queue from the packets written on it, but only once the write has been
    # processed: the SYN,ACK, sent while our SYN is still being received, goes by the flow hash and
    # so reaches the other queue about half the time; the stack hands it over. Every later packet
    # (of about 40 per connection) arrives on the queue of the worker that owns the connection.
    assert all(flags == SYN | ACK for flags in result["handed"]), result
    assert len(result["handed"]) <= 32, result


@needs_netns
@pytest.mark.parametrize("addresses", [(), ("2001:db8::1/64", "2001:db8::2")], ids=["ipv4", "ipv6"])
def test_with_the_steering_program_no_packet_reaches_the_wrong_queue(addresses):
    """The eBPF program picks the queue from our port: the SYN,ACKs the flow hash sent to the other
    queue above now land on their owner's, and nothing is handed over, over IPv4 and IPv6."""
    if (refused := _bpf_refused()) is not None:
        pytest.skip(f"no steering here: {refused}")
    result = _open_from_both_queues("steer", *addresses)
    assert result["refused"] is None and result["handed"] == [], result


HOLD = r"""
import json, socket, sys
n = int(sys.argv[1])
socks = [socket.create_connection(("192.0.2.2", 7), timeout=20) for _ in range(n)]
for i, s in enumerate(socks):
    s.sendall(b"%06d" % i)
good = sum(s.recv(6) == b"%06d" % i for i, s in enumerate(socks))
print(json.dumps({"good": good}), flush=True)
sys.stdin.read()  # hold them open until told
for s in socks:
    s.close()
"""


def _echo_workers(ns, tmp: str, **environ) -> tuple[subprocess.Popen, dict]:
    """`serve echo --workers 2` in `ns`, ready, with its control sockets under `tmp`; and its environment."""
    env = dict(os.environ, TCPWAVE_CONTROL_DIR=os.path.join(tmp, "ctl"), **environ)
    ready = os.path.join(tmp, "ready")
    server = ns.popen(sys.executable, "-m", "tcpwave.cli.main", "serve", "echo", "--workers", "2", "--ready-file",
                      ready, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    wait_for_file(ready, server)
    return server, env


def _ss_json(env: dict) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "ss", "--json"], capture_output=True, text=True,
                       env=env, timeout=30)
    return json.loads(r.stdout)


@needs_netns
def test_serve_with_two_workers_spreads_connections_and_ss_shows_both():
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-workers") as ns:
        server, env = _echo_workers(ns, tmp)
        client = ns.popen(py, "-c", HOLD, "48", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None and client.stdin is not None
        assert json.loads(client.stdout.readline())["good"] == 48
        docs = _ss_json(env)
        assert sorted(d["worker"] for d in docs) == ["1/2", "2/2"]
        per_worker = [sum(c["state"] == "ESTABLISHED" for c in d["connections"]) for d in docs]
        assert sum(per_worker) == 48 and min(per_worker) > 0, per_worker  # the kernel spread them
        assert all(any(c["state"] == "LISTEN" for c in d["connections"]) for d in docs)
        text = subprocess.run([py, "-m", "tcpwave.cli.main", "ss"], capture_output=True, text=True, env=env).stdout
        assert "worker 1/2" in text and "worker 2/2" in text
        client.stdin.close()
        client.wait(30)
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=10)
        assert not os.path.exists(os.path.join(tmp, "ctl"))  # both control sockets removed, and their directory
    lines = err.strip().splitlines()
    assert lines[-1].startswith("tcpwave serve: stopped; 2 workers") and "Traceback" not in err, err
    assert len(lines) == 2, err  # the start line and the stop line, nothing from the workers


@needs_netns
def test_a_worker_killed_by_sigkill_is_named_and_the_others_stop_cleanly():
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-wkill") as ns:
        ready = os.path.join(tmp, "ready")
        server = ns.popen(py, "-m", "tcpwave.cli.main", "serve", "echo", "--workers", "2", "--control", "none",
                          "--ready-file", ready, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_file(ready, server)
        client = ns.popen(py, "-c", HOLD, "16", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None and client.stdin is not None
        assert json.loads(client.stdout.readline())["good"] == 16
        with open(f"/proc/{server.pid}/task/{server.pid}/children") as f:
            first, second = (int(p) for p in f.read().split())
        os.kill(second, signal.SIGKILL)  # a worker this test started (through serve), by its PID
        _, err = server.communicate(timeout=20)
        client.stdin.close()
        client.wait(30)
    lines = err.strip().splitlines()
    assert server.returncode == 1 and "Traceback" not in err, err
    assert f"tcpwave: worker 2 (pid {second}) died: killed by SIGKILL; stopping the others" in lines, err
    assert lines[-1].startswith("tcpwave serve: stopped; 2 workers, "), err  # worker 1 closed its own


@needs_netns
@pytest.mark.skipif(not shutil.which("ab"), reason="needs ab (apache2-utils)")
def test_ab_twenty_thousand_requests_fifty_at_a_time_against_two_workers_none_fail():
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-ab") as ns:
        ready = os.path.join(tmp, "ready")
        server = ns.popen(py, "-m", "tcpwave.cli.main", "serve", "http", "--workers", "2", "--control", "none",
                          "--ready-file", ready, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_file(ready, server)
        r = ns.call("ab", "-q", "-n", "20000", "-c", "50", "http://192.0.2.2/", capture_output=True, text=True,
                    timeout=300)  # (about 10 s on an idle machine; room for a loaded one)
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=10)
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(":", 1) for line in r.stdout.splitlines() if ":" in line)
    assert int(fields["Complete requests"]) == 20000 and int(fields["Failed requests"]) == 0, r.stdout
    assert "Non-2xx responses" not in fields and "Traceback" not in err


@needs_netns
def test_a_second_server_on_a_device_in_use_is_refused_with_the_owner_named():
    """A multi-queue device takes one more queue from anyone who asks: a second `serve --workers 2`
    on it would silently take half the first one's flows. It is refused, naming the first's workers."""
    py = sys.executable
    serve = [py, "-m", "tcpwave.cli.main", "serve", "echo", "--control", "none", "--tun", "tcpwb0"]
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-busy") as ns:
        ready = os.path.join(tmp, "ready")
        first = ns.popen(*serve, "--workers", "2", "--ready-file", ready, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
        wait_for_file(ready, first)
        workers = ns.call("sh", "-c", f"pgrep -P {first.pid}; for p in $(pgrep -P {first.pid}); do pgrep -P $p; done",
                          capture_output=True, text=True).stdout.split()
        seconds = [ns.call(*serve, *extra, "--ready-file", os.path.join(tmp, f"ready{i}"), capture_output=True,
                           text=True, timeout=30) for i, extra in enumerate((["--workers", "2"], []))]
        echo = ns.call(py, "-c", "import socket; s = socket.create_connection(('192.0.2.2', 7), timeout=5); "
                                 "s.sendall(b'still here'); print(s.recv(100).decode())",
                       capture_output=True, text=True, timeout=30)
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=10)
    for second in seconds:
        assert second.returncode == 1, second.stderr
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith("tcpwave serve: TUN device tcpwb0 is in use by pid "), second.stderr
        assert any(f"pid {w} (" in line for w in workers) and "serve echo" in line, (line, workers)
    assert echo.stdout.strip() == "still here" and "Traceback" not in err


MANY = r"""
import hashlib, json, socket, sys
from concurrent.futures import ThreadPoolExecutor
n = int(sys.argv[1])

def one(i):
    data = hashlib.sha256(b"%d" % i).digest() * 700  # 22 KB each, different for each connection
    with socket.create_connection(("192.0.2.2", 7), timeout=30) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b"".join(iter(lambda: s.recv(65536), b""))
    return got == data

with ThreadPoolExecutor(16) as pool:
    print(json.dumps({"good": sum(pool.map(one, range(n)))}), flush=True)
socks = [socket.create_connection(("192.0.2.2", 7), timeout=20) for _ in range(32)]
for s in socks:
    s.sendall(b"x")
    assert s.recv(1) == b"x"
print(json.dumps({"held": len(socks)}), flush=True)
sys.stdin.read()  # hold them open until told
"""


@needs_netns
@pytest.mark.parametrize("steering", ["auto", "off"])
def test_serve_with_two_workers_says_how_flows_reach_them_and_counts_hand_overs(steering):
    """`serve --workers 2` says at start whether the queues are steered by port or the workers hand
    each other packets (steering forced off with $TCPWAVE_STEERING=off), serves every byte right
    either way with both workers taking connections, and counts what it handed over."""
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-steer") as ns:
        server, env = _echo_workers(ns, tmp, TCPWAVE_STEERING=steering)
        client = ns.popen(sys.executable, "-c", MANY, "300", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None and client.stdin is not None
        assert json.loads(client.stdout.readline())["good"] == 300
        assert json.loads(client.stdout.readline())["held"] == 32
        docs = _ss_json(env)
        per_worker = [sum(c["state"] == "ESTABLISHED" for c in d["connections"]) for d in docs]
        assert sum(per_worker) == 32 and min(per_worker) > 0, per_worker  # both workers have some
        client.stdin.close()
        client.wait(30)
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=10)
    start, stop = err.strip().splitlines()
    if steering == "off":
        assert start.endswith("2 workers; packets for another worker's port handed over ($TCPWAVE_STEERING=off)")
    elif (refused := _bpf_refused()) is None:
        assert start.endswith("2 workers; queues steered by port (eBPF), new connections' first packets on lanes "
                              "read first"), start
    else:
        assert start.endswith(f"2 workers; packets for another worker's port handed over (no steering: {refused})")
    handed = sum(d["handed_over"] for d in docs)
    assert stop.endswith(f", {handed} packet(s) handed over between workers"), (stop, handed)
    if steering == "auto":
        assert handed == 0
