"""Without root: `tcpwave tun add DEV --user nobody` (as root, once), then `tcpwave serve echo --tun DEV`
run as nobody, with no privileges, answers a Linux client. In a namespace the test makes and removes."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from netns import namespace, needs_netns, wait_for_file
from test_workers import STEERING, _bpf_refused

from tcpwave.wire.tcp import ACK, SYN

pytestmark = [needs_netns, pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")]

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
ECHO_CLIENT = r"""
import socket
s = socket.create_connection(("192.0.2.2", 7), timeout=10)
s.sendall(b"hello from the kernel")
s.shutdown(socket.SHUT_WR)
print(b"".join(iter(lambda: s.recv(4096), b"")).decode())
"""


def _as(user: str, group: str) -> list[str]:
    return ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", "env"]


def _python_for(ns, user: str, group: str) -> str:
    """A Python interpreter `user` may run (the test's own may sit in root's home)."""
    for py in (os.path.realpath(sys.executable), "/usr/bin/python3"):
        if ns.call(*_as(user, group), py, "-c", "import enum; enum.StrEnum", capture_output=True).returncode == 0:
            return py
    pytest.fail("no Python 3.11+ that an unprivileged user may run")


def test_a_user_runs_serve_on_a_tun_device_root_made_for_them():
    tcpwave = [sys.executable, "-m", "tcpwave.cli.main"]
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-user") as ns:
        code, run = _readable_copy(tmp)
        made = ns.call(*tcpwave, "tun", "add", "tcpwu0", "--user", "nobody", "--host", "192.0.2.1/24",
                       capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        owner = ns.call("cat", "/sys/class/net/tcpwu0/owner", capture_output=True, text=True).stdout.strip()
        assert owner == "65534"
        py = _python_for(ns, "nobody", "nogroup")
        # someone else may not attach: a clear error, exit status 1
        other = ns.call(*_as("daemon", "daemon"), f"PYTHONPATH={code}", py, "-m", "tcpwave.cli.main", "serve",
                        "echo", "--tun", "tcpwu0", "--control", "none", capture_output=True, text=True, timeout=30)
        assert other.returncode == 1 and "exists but is not yours" in other.stderr, other.stderr
        ready = os.path.join(run, "ready")
        server = ns.popen(*_as("nobody", "nogroup"), f"PYTHONPATH={code}", py, "-m", "tcpwave.cli.main",
                          "serve", "echo", "--tun", "tcpwu0", "--control", "none", "--ready-file", ready,
                          stderr=subprocess.PIPE, text=True)
        wait_for_file(ready, server)
        with open(f"/proc/{server.pid}/status") as f:  # (ip netns exec, setpriv and env each exec the next)
            status = dict(line.split(":", 1) for line in f)
        assert status["Uid"].split()[:2] == ["65534", "65534"] and int(status["CapEff"], 16) == 0
        # `tun add` gave the device a lane for new connections (where root may load the program): the
        # user's server attached its queue and the lane beside it
        lanes = _bpf_refused() is None
        assert _queues_held(server.pid, "tcpwu0") == (2 if lanes else 1)
        client = ns.call(sys.executable, "-c", ECHO_CLIENT, capture_output=True, text=True, timeout=30)
        assert client.stdout.strip() == "hello from the kernel", client.stderr
        server.terminate()
        _, err = server.communicate(timeout=10)
        assert "attached to the existing device tcpwu0" in err and "Traceback" not in err, err
        assert ("new connections' first packets on a lane read first" in err) == lanes, err
        removed = ns.call(*tcpwave, "tun", "del", "tcpwu0", capture_output=True, text=True)
        assert removed.returncode == 0, removed.stderr
        assert ns.call("ip", "link", "show", "tcpwu0", capture_output=True).returncode != 0


def _queues_held(pid: int, device: str) -> int:
    """How many queues of TUN device `device` process `pid` holds open (/proc/PID/fdinfo: "iff: NAME")."""
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                held += f"iff:\t{device}\n" in f.read()
        except OSError:
            pass
    return held


def _readable_copy(tmp: str) -> tuple[str, str]:
    """A copy of tcpwave any user may read (tcpwave needs only the standard library), and a
    directory any user may write to."""
    os.chmod(tmp, 0o755)
    code = os.path.join(tmp, "code")
    shutil.copytree(os.path.join(SRC, "tcpwave"), os.path.join(code, "tcpwave"),
                    ignore=shutil.ignore_patterns("*.so"))  # the sources (compiled ones need their shared library)
    subprocess.run(["chmod", "-R", "a+rX", code], check=True)
    run = os.path.join(tmp, "run")
    os.mkdir(run)
    os.chmod(run, 0o777)
    return code, run


def test_root_steers_a_multi_queue_device_once_and_its_user_serves_with_workers_on_it():
    """`tun add --queues 2` (root) attaches the steering program, which stays with the persistent
    device: `serve --workers 2` as nobody, who may not load BPF programs, runs on it steered; two
    stacks opening connections there as nobody get every reply on their own queue, where on a device
    made without steering about half the SYN,ACKs reach the other queue and are handed over. (Those
    stacks run without offloads after a serve that asked for them: the device must forget them.)"""
    if (refused := _bpf_refused()) is not None:
        pytest.skip(f"no steering here: {refused}")
    tcpwave = [sys.executable, "-m", "tcpwave.cli.main"]
    said = {"auto": ("tcpwu1: queues steered by port, each with a lane for new connections' first packets (eBPF)",
                     "queues steered by port, new connections' first packets on lanes read first (the eBPF program "
                     "`tcpwave tun add` attached)"),
            "off": ("tcpwu1: not steered ($TCPWAVE_STEERING=off): workers hand each other what reaches the wrong one",
                    "packets for another worker's port handed over (tcpwu1 was made without steering)")}
    handed = {}
    with tempfile.TemporaryDirectory() as tmp:
        code, run = _readable_copy(tmp)
        for steering in ("auto", "off"):
            with namespace("tcpwave-userq") as ns:
                made = ns.call(*tcpwave, "tun", "add", "tcpwu1", "--user", "nobody", "--queues", "2",
                               capture_output=True, text=True, env=dict(os.environ, TCPWAVE_STEERING=steering))
                assert made.returncode == 0, made.stderr
                py = _python_for(ns, "nobody", "nogroup")
                user = [*_as("nobody", "nogroup"), f"PYTHONPATH={code}", py]
                assert made.stdout.splitlines()[-1] == said[steering][0], made.stdout
                ready = os.path.join(run, "ready")
                server = ns.popen(*user, "-m", "tcpwave.cli.main", "serve", "echo", "--tun", "tcpwu1",
                                  "--workers", "2", "--control", "none", "--ready-file", ready,
                                  stderr=subprocess.PIPE, text=True)
                wait_for_file(ready, server)
                for _ in range(8):
                    client = ns.call(sys.executable, "-c", ECHO_CLIENT, capture_output=True, text=True, timeout=30)
                    assert client.stdout.strip() == "hello from the kernel", client.stderr
                server.terminate()
                _, err = server.communicate(timeout=10)
                assert f"2 workers; {said[steering][1]}\n" in err, err
                assert err.strip().endswith(", 0 packet(s) handed over between workers"), err
                r = ns.call(*user, "-c", STEERING, "32", "hash", "tcpwu1", capture_output=True, text=True,
                            timeout=120)
                assert r.returncode == 0, r.stderr[-2000:]
                result = json.loads(r.stdout)
                assert result["ok"] == 32, result
                handed[steering] = result["handed"]
                assert ns.call(*tcpwave, "tun", "del", "tcpwu1", capture_output=True).returncode == 0
    assert handed["auto"] == [], handed
    assert handed["off"] and all(flags == SYN | ACK for flags in handed["off"]), handed
