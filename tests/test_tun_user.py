"""Without root: `tcpwave tun add DEV --user nobody` (as root, once), then `tcpwave serve echo --tun DEV`
run as nobody, with no privileges, answers a Linux client. In a namespace the test makes and removes."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from netns import namespace, needs_netns, wait_for_file

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
        os.chmod(tmp, 0o755)
        code = os.path.join(tmp, "code")  # tcpwave needs only the standard library: a readable copy will do
        shutil.copytree(os.path.join(SRC, "tcpwave"), os.path.join(code, "tcpwave"),
                        ignore=shutil.ignore_patterns("*.so"))  # the sources (compiled ones need their shared library)
        subprocess.run(["chmod", "-R", "a+rX", code], check=True)
        run = os.path.join(tmp, "run")
        os.mkdir(run)
        os.chmod(run, 0o777)
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
        client = ns.call(sys.executable, "-c", ECHO_CLIENT, capture_output=True, text=True, timeout=30)
        assert client.stdout.strip() == "hello from the kernel", client.stderr
        server.terminate()
        _, err = server.communicate(timeout=10)
        assert "attached to the existing device tcpwu0" in err and "Traceback" not in err, err
        removed = ns.call(*tcpwave, "tun", "del", "tcpwu0", capture_output=True, text=True)
        assert removed.returncode == 0, removed.stderr
        assert ns.call("ip", "link", "show", "tcpwu0", capture_output=True).returncode != 0
