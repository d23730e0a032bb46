"""Clean exits: SIGTERM or Ctrl-C end `serve` (with live connections), `connect` and `fetch` within
2 s with one line and no traceback, and the peers get their FIN or RST. In a namespace the test
creates and removes; only TEST-NET addresses."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from netns import namespace, needs_netns, wait_for_file, wait_until

pytestmark = needs_netns

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


def _stop(proc, sig) -> tuple[float, str]:
    """Send `sig`; return how long the process took to end and what it wrote to stderr."""
    t0 = time.monotonic()
    proc.send_signal(sig)
    proc.wait(10)
    return time.monotonic() - t0, proc.stderr.read().decode()


def _runs_below(pid: int, args: str) -> bool:
    """Whether a descendant of `pid` runs `args` (another test's `sleep 30` elsewhere does not count)."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout.splitlines()
    parent, command = {}, {}
    for row in rows:
        p, pp, *rest = row.split(None, 2)
        parent[int(p)], command[int(p)] = int(pp), rest[0] if rest else ""
    for p, cmd in command.items():
        q = p
        while cmd == args and q in parent and q > 1:
            q = parent[q]
            if q == pid:
                return True
    return False


def test_sigterm_ends_serve_with_live_connections_in_one_line():
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-exit") as ns:
        ready, up = os.path.join(tmp, "ready"), os.path.join(tmp, "clients")
        # stderr is a pipe nobody reads until the end, as the review found it
        server = ns.popen(py, "-m", "tcpwave.cli.main", "serve", "echo", "--ready-file", ready, "--control", "none",
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_file(ready, server)
        clients = ns.popen(py, "-c", CLIENTS, "40", up, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_file(up, clients)
        took, err = _stop(server, signal.SIGTERM)
        out, cerr = clients.communicate(timeout=20)
    assert took < 2.0
    assert server.returncode == 0
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("tcpwave serve: stopped; 40 open")
    assert len(err.strip().splitlines()) == 2, err  # the start line and the stop line
    ended = json.loads(out)
    assert len(ended) == 40 and set(ended) <= {"fin", "rst"}, (ended, cerr)


def test_fetch_ends_without_a_traceback(tmp_path):
    body = os.urandom(300_000)
    (tmp_path / "b.bin").write_bytes(body)
    py = sys.executable
    with namespace("tcpwave-exit2") as ns:
        srv = ns.popen(py, "-m", "http.server", "--bind", "0.0.0.0", "8000", "--directory", str(tmp_path),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: b":8000 " in ns.call("ss", "-ltnH", capture_output=True).stdout, srv)
        r = ns.call(py, "-m", "tcpwave.cli.main", "fetch", "http://192.0.2.1:8000/b.bin", capture_output=True,
                    timeout=120)
    assert r.returncode == 0 and r.stdout == body
    assert b"Traceback" not in r.stderr and b"Bad file descriptor" not in r.stderr, r.stderr[-1500:]


def test_ctrl_c_ends_connect_with_one_line():
    py = sys.executable
    listener = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                "s.bind(('0.0.0.0',7008));s.listen();c,_=s.accept();open(sys.argv[1],'w').close();"
                "print(repr(c.recv(100)))")
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-exit3") as ns:
        accepted = os.path.join(tmp, "accepted")
        peer = ns.popen(py, "-c", listener, accepted, stdout=subprocess.PIPE, text=True)
        wait_until(lambda: b":7008 " in ns.call("ss", "-ltnH", capture_output=True).stdout, peer)
        conn = ns.popen(py, "-m", "tcpwave.cli.main", "connect", "192.0.2.1", "7008", stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for_file(accepted, peer)
        took, err = _stop(conn, signal.SIGINT)
        seen, _ = peer.communicate(timeout=10)
    assert took < 2.0 and conn.returncode == 130
    assert err.strip() == "tcpwave connect: interrupted", err
    assert seen.strip() == "b''"  # the peer got our FIN


def test_sigterm_ends_sandbox_and_removes_its_namespace():
    proc = subprocess.Popen([sys.executable, "-m", "tcpwave.cli.main", "sandbox", "--control", "none", "--",
                             "sleep", "30"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    name = f"tcpwave-sbx-{proc.pid}"
    deadline = time.monotonic() + 30
    while not _runs_below(proc.pid, "sleep 30"):
        assert proc.poll() is None and time.monotonic() < deadline  # the command runs: all is set up
        time.sleep(0.05)
    took, err = _stop(proc, signal.SIGTERM)
    assert took < 2.0 and proc.returncode == 130
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "tcpwave sandbox: interrupted; namespace removed"
    assert name.encode() not in subprocess.run(["ip", "netns", "list"], capture_output=True).stdout


HTTP_HOLD = r"""
import socket, sys
socks = []
for i in range(int(sys.argv[1])):  # GETs of 1 GiB that nobody reads: their handlers wait in drain()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("192.0.2.2", 80))
    s.sendall(b"GET /bytes/1073741824 HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
for i in range(int(sys.argv[2])):  # keep-alive connections after one request: handlers wait in readuntil()
    s = socket.create_connection(("192.0.2.2", 80), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"</html>" not in data:
        data += s.recv(4096)
    socks.append(s)
open(sys.argv[3], "w").close()
sys.stdin.read()  # hold them until told
"""


def test_sigterm_ends_serve_http_quietly_while_bodies_stream_and_handlers_wait():
    """No CancelledError traceback per handler, and no waiting for a body to be built: one line."""
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-exit4") as ns:
        ready, up = os.path.join(tmp, "ready"), os.path.join(tmp, "clients")
        server = ns.popen(py, "-m", "tcpwave.cli.main", "serve", "http", "--ready-file", ready, "--control", "none",
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_file(ready, server)
        clients = ns.popen(py, "-c", HTTP_HOLD, "3", "30", up, stdin=subprocess.PIPE)
        wait_for_file(up, clients, seconds=60)
        took, err = _stop(server, signal.SIGTERM)
        clients.communicate(b"", timeout=20)
    assert took < 5.0, took
    assert server.returncode == 0
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines[-1].startswith("tcpwave serve: stopped; 33 open"), err[-3000:]
    assert len(lines) == 2, err[-3000:]  # the start line and the stop line


def test_sighup_ends_serve_as_sigterm_does():
    """FIN or RST to every connection, the control socket removed, the one stop line."""
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-exit5") as ns:
        ready, up, ctl = os.path.join(tmp, "ready"), os.path.join(tmp, "clients"), os.path.join(tmp, "ctl")
        env = dict(os.environ, TCPWAVE_CONTROL_DIR=ctl)
        server = ns.popen(py, "-m", "tcpwave.cli.main", "serve", "echo", "--ready-file", ready,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        wait_for_file(ready, server)
        assert len(os.listdir(ctl)) == 1  # its control socket
        clients = ns.popen(py, "-c", CLIENTS, "10", up, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_file(up, clients)
        took, err = _stop(server, signal.SIGHUP)
        out, cerr = clients.communicate(timeout=20)
        left = os.listdir(ctl) if os.path.isdir(ctl) else []  # serve removes the directory it leaves empty
    assert took < 2.0 and server.returncode == 0
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("tcpwave serve: stopped; 10 open"), err
    assert left == []  # the control socket is gone
    ended = json.loads(out)
    assert len(ended) == 10 and set(ended) <= {"fin", "rst"}, (ended, cerr)
