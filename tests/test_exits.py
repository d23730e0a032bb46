"""Clean exits: SIGTERM or Ctrl-C end `serve` (with live connections), `connect` and `fetch` within
2 s with one line and no traceback, and the peers get their FIN or RST. In a namespace the test
creates and removes; only TEST-NET addresses."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

pytestmark = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("ip") and os.path.exists("/dev/net/tun")),
    reason="needs root, iproute2 and /dev/net/tun")

CLIENTS = r"""
import json, os, socket, sys, time
n, ready = int(sys.argv[1]), sys.argv[2]
socks = []
for i in range(n):
    s = socket.create_connection(("192.0.2.2", 7), timeout=5)
    s.sendall(b"hi %d" % i)
    assert s.recv(100) == b"hi %d" % i
    socks.append(s)
open(ready, "w").close()
ended = []
for s in socks:  # each connection must end: EOF (the server's FIN) or a reset
    try:
        ended.append("fin" if s.recv(100) == b"" else "data")
    except ConnectionResetError:
        ended.append("rst")
    except socket.timeout:
        ended.append("open")
print(json.dumps(ended))
"""


def _wait_for(path: str, proc: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)


def test_sigterm_ends_serve_with_live_connections_in_one_line():
    ns = f"tcpwave-exit-{os.getpid()}"
    py = sys.executable
    subprocess.run(["ip", "netns", "add", ns], check=True)
    server = clients = None
    try:
        run = ["ip", "netns", "exec", ns]
        subprocess.run([*run, "ip", "link", "set", "lo", "up"], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            ready, up = os.path.join(tmp, "ready"), os.path.join(tmp, "clients")
            # stderr is a pipe nobody reads until the end, as the review found it
            server = subprocess.Popen([*run, py, "-m", "tcpwave.cli.main", "serve", "echo", "--ready-file", ready,
                                       "--control", "none"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _wait_for(ready, server)
            clients = subprocess.Popen([*run, py, "-c", CLIENTS, "40", up], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            _wait_for(up, clients)
            t0 = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(10)
            took = time.monotonic() - t0
            err = server.stderr.read().decode()
            out, cerr = clients.communicate(timeout=20)
    finally:
        for proc in (clients, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert took < 2.0
    assert server.returncode == 0
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("tcpwave serve: stopped; 40 open")
    assert len(err.strip().splitlines()) == 2, err  # the start line and the stop line
    ended = json.loads(out)
    assert len(ended) == 40 and set(ended) <= {"fin", "rst"}, (ended, cerr)


def test_fetch_ends_without_a_traceback(tmp_path):
    body = os.urandom(300_000)
    (tmp_path / "b.bin").write_bytes(body)
    ns = f"tcpwave-exit2-{os.getpid()}"
    py = sys.executable
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        r = subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", f"""
ip link set lo up
{py} -m http.server --bind 0.0.0.0 8000 --directory {tmp_path} >/dev/null 2>&1 &
srv=$!
for i in $(seq 200); do ss -ltnH | grep -q ':8000 ' && break; sleep 0.02; done
{py} -m tcpwave.cli.main fetch http://192.0.2.1:8000/b.bin
rc=$?
kill $srv
exit $rc
"""], capture_output=True, timeout=120)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert r.returncode == 0 and r.stdout == body
    assert b"Traceback" not in r.stderr and b"Bad file descriptor" not in r.stderr, r.stderr[-1500:]


def test_ctrl_c_ends_connect_with_one_line():
    ns = f"tcpwave-exit3-{os.getpid()}"
    py = sys.executable
    listener = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                "s.bind(('0.0.0.0',7008));s.listen();c,_=s.accept();open(sys.argv[1],'w').close();"
                "print(repr(c.recv(100)))")
    subprocess.run(["ip", "netns", "add", ns], check=True)
    peer = conn = None
    try:
        run = ["ip", "netns", "exec", ns]
        subprocess.run([*run, "ip", "link", "set", "lo", "up"], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            accepted = os.path.join(tmp, "accepted")
            peer = subprocess.Popen([*run, py, "-c", listener, accepted], stdout=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 20
            while b":7008 " not in subprocess.run([*run, "ss", "-ltnH"], capture_output=True).stdout:
                assert peer.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            conn = subprocess.Popen([*run, py, "-m", "tcpwave.cli.main", "connect", "192.0.2.1", "7008"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _wait_for(accepted, peer)
            t0 = time.monotonic()
            conn.send_signal(signal.SIGINT)
            conn.wait(10)
            took = time.monotonic() - t0
            err = conn.stderr.read().decode()
            seen, _ = peer.communicate(timeout=10)
    finally:
        for proc in (peer, conn):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert took < 2.0 and conn.returncode == 130
    assert err.strip() == "tcpwave connect: interrupted", err
    assert seen.strip() == "b''"  # the peer got our FIN


def test_sigterm_ends_sandbox_and_removes_its_namespace():
    proc = subprocess.Popen([sys.executable, "-m", "tcpwave.cli.main", "sandbox", "--control", "none", "--",
                             "sleep", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    name = f"tcpwave-sbx-{proc.pid}"
    deadline = time.monotonic() + 30
    while b"sleep 30" not in subprocess.run(["ps", "-eo", "args"], capture_output=True).stdout:
        assert proc.poll() is None and time.monotonic() < deadline  # the command runs: all is set up
        time.sleep(0.05)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    took = time.monotonic() - t0
    err = proc.stderr.read().decode()
    assert took < 2.0 and proc.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "tcpwave sandbox: interrupted; namespace removed"
    assert name.encode() not in subprocess.run(["ip", "netns", "list"], capture_output=True).stdout
