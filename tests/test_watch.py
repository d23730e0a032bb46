"""`tcpwave watch -- COMMAND`: a Python client and server in one script, watched live in a namespace of
their own. The ladder shows every state in its place, and at three moments the script asks `ss` for
the kernel's view: the states watch inferred must be the kernel's. Also `trace --live` until SIGINT."""

import json
import shutil
import signal
import subprocess
import sys
import time

import pytest
from netns import namespace, needs_netns, wait_until

from tcpwave.views import load

pytestmark = [needs_netns, pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")]

PAIR = r"""
import json, socket, subprocess, sys, time
NAMES = {"ESTAB": "ESTABLISHED", "FIN-WAIT-2": "FIN_WAIT_2", "CLOSE-WAIT": "CLOSE_WAIT", "TIME-WAIT": "TIME_WAIT",
         "FIN-WAIT-1": "FIN_WAIT_1", "LAST-ACK": "LAST_ACK", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RCVD"}

def ss():
    seen = {}
    for row in subprocess.run(["ss", "-tanH"], capture_output=True, text=True, check=True).stdout.splitlines():
        f = row.split()
        if f[0] != "LISTEN":
            seen[f[3]] = NAMES.get(f[0], f[0])
    return seen

def until(want):
    deadline = time.monotonic() + 10
    while True:
        seen = ss()
        if want(seen) or time.monotonic() > deadline:
            return {"t": time.time(), "ss": seen}
        time.sleep(0.01)

srv = socket.socket()
srv.bind(("127.0.0.1", 9000))
srv.listen()
cli = socket.create_connection(("127.0.0.1", 9000))
conn, _ = srv.accept()
c, s = "127.0.0.1:%d" % cli.getsockname()[1], "127.0.0.1:9000"
cli.sendall(b"ping")
conn.sendall(conn.recv(100))
cli.recv(100)
checks = [until(lambda x: x.get(c) == x.get(s) == "ESTABLISHED")]
cli.shutdown(socket.SHUT_WR)
checks.append(until(lambda x: x.get(c) == "FIN_WAIT_2" and x.get(s) == "CLOSE_WAIT"))
conn.close()
checks.append(until(lambda x: x.get(c) == "TIME_WAIT" and s not in x))
json.dump({"client": c, "server": s, "checks": checks}, open(sys.argv[1], "w"))
"""


def _paths(stdout: str) -> tuple[list[str], list[str]]:
    """The state changes printed beside each lifeline, in order: (left, right)."""
    left, right = [], []
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or "→" not in line:
            continue
        if "→" in parts[0]:
            left.append(parts[0].split("→")[1].strip())
        if "→" in parts[2]:
            right.append(parts[2].split("→")[1].strip())
    return left, right


def test_watch_shows_a_python_pair_and_agrees_with_ss(tmp_path):
    script, result, pcapng = tmp_path / "pair.py", tmp_path / "ss.json", tmp_path / "watch.pcapng"
    script.write_text(PAIR)
    r = subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "watch", "--pcapng", str(pcapng), "--",
                        sys.executable, str(script), str(result)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    left, right = _paths(r.stdout)
    assert left == ["SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"], r.stdout
    assert right == ["LISTEN", "SYN_RCVD", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"], r.stdout
    assert "TIME_WAIT" in r.stdout.split("states\n")[-1] and "2×MSL countdown" in r.stdout  # the timeline
    run = json.loads(result.read_text())
    views, _ = load(str(pcapng))
    assert len(views) == 1
    events = views[0].events
    for check in run["checks"]:
        for host in (run["client"], run["server"]):
            state = "CLOSED"
            for e in events:
                if e["type"] == "state" and e["host"] == host and e["t"] <= check["t"]:
                    state = e["to"]
            assert state == check["ss"].get(host, "CLOSED"), (host, check)


def test_trace_live_draws_until_interrupted(tmp_path):
    with namespace("tcpwave-live") as ns:
        out = tmp_path / "live.txt"
        with open(out, "w") as f:
            tracer = ns.popen(sys.executable, "-m", "tcpwave.cli.main", "trace", "--live", "lo", stdout=f,
                              stderr=subprocess.PIPE, text=True)
            wait_until(lambda: tracer.stderr.readline().startswith("capturing"), tracer)
            ns.call(sys.executable, "-c", "import socket\ns = socket.socket(); s.bind(('127.0.0.1', 9001)); "
                    "s.listen(); c = socket.create_connection(('127.0.0.1', 9001)); a, _ = s.accept(); "
                    "c.close(); a.close()", check=True)
            wait_until(lambda: "FIN" in out.read_text(), tracer, 10)
            t0 = time.monotonic()
            tracer.send_signal(signal.SIGINT)
            _, err = tracer.communicate(timeout=5)
        assert tracer.returncode == 0 and time.monotonic() - t0 < 3
        assert "Traceback" not in err and "stopped" in err
        text = out.read_text()
        assert "SYN_SENT" in text and "TIME_WAIT" in text and "127.0.0.1:9001" in text
