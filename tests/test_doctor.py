"""`tcpwave doctor` finds what silently breaks a TUN set-up: a healthy one passes (its SYN draws the
kernel's RST), and a deliberately broken one (same address, device down, no rights) is reported with
a fix for each. In a namespace the test makes and removes."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from netns import namespace, needs_netns

pytestmark = [needs_netns, pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")]

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
TCPWAVE = [sys.executable, "-m", "tcpwave.cli.main"]


def _doctor(ns, *args, user: tuple[str, str] | None = None, code: str = ""):
    prefix = [] if user is None else ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups",
                                      "--inh-caps=-all", "--bounding-set=-all", "env", f"PYTHONPATH={code}",
                                      "/usr/bin/python3", "-m", "tcpwave.cli.main"]
    r = ns.call(*(prefix or TCPWAVE), "doctor", *args, capture_output=True, text=True, timeout=30)
    assert "Traceback" not in r.stderr, r.stderr
    fails = [line for line in r.stdout.splitlines() if line.startswith("FAIL")]
    return r.returncode, r.stdout, fails


def test_doctor_passes_a_healthy_device_and_reports_a_broken_one():
    with namespace("tcpwave-doctor") as ns:
        assert ns.call(*TCPWAVE, "tun", "add", "tcpwd0", "--user", "nobody", capture_output=True).returncode == 0
        rc, out, fails = _doctor(ns, "--tun", "tcpwd0")
        assert rc == 0 and fails == [], out
        assert "drew the kernel's RST" in out  # the SYN test ran: checksums and routing work

        rc, out, fails = _doctor(ns, "--tun", "tcpwd0", "--addr", "192.0.2.1")  # the kernel side's own address
        assert rc == 1 and any("is the kernel side's own" in f for f in fails), out
        assert "fix: give tcpwave another address" in out

        ns.call("ip", "link", "set", "tcpwd0", "down", check=True)
        rc, out, fails = _doctor(ns, "--tun", "tcpwd0")
        assert rc == 1 and fails == ["FAIL  tcpwd0 is down: the kernel sends it nothing"], out
        assert "fix: sudo ip link set tcpwd0 up" in out
        ns.call("ip", "link", "set", "tcpwd0", "up", check=True)

        with tempfile.TemporaryDirectory() as tmp:  # a copy of the code the unprivileged users may read
            os.chmod(tmp, 0o755)
            shutil.copytree(os.path.join(SRC, "tcpwave"), os.path.join(tmp, "tcpwave"),
                            ignore=shutil.ignore_patterns("*.so"))  # the sources: compiled ones need their shared lib
            subprocess.run(["chmod", "-R", "a+rX", tmp], check=True)
            rc, out, fails = _doctor(ns, "--tun", "tcpwd0", user=("daemon", "daemon"), code=tmp)  # no rights
            assert rc == 1 and any("not yours" in f for f in fails), out
            rc, out, fails = _doctor(ns, "--tun", "tcpwd0", user=("nobody", "nogroup"), code=tmp)  # the owner
            assert rc == 0 and "is yours" in out and "drew the kernel's RST" in out, out
        ns.call(*TCPWAVE, "tun", "del", "tcpwd0", check=True, capture_output=True)



def test_doctor_json_lists_each_check_and_suggests_a_free_address():
    """`doctor --json`: one JSON document, each check with its status and fix; and the address it
    suggests instead of one already on this host is free (not the stack's own, not the kernel side's)."""
    import json

    with namespace("tcpwave-doctor") as ns:
        assert ns.call(*TCPWAVE, "tun", "add", "tcpwd1", "--user", "root", capture_output=True).returncode == 0
        r = ns.call(*TCPWAVE, "doctor", "--tun", "tcpwd1", "--json", capture_output=True, text=True, timeout=30)
        doc = json.loads(r.stdout)
        assert r.returncode == 0 and doc["failed"] == 0
        assert {c["status"] for c in doc["checks"]} <= {"ok", "note"}
        assert any("drew the kernel's RST" in c["what"] for c in doc["checks"])
        ns.call("ip", "addr", "add", "192.0.2.3/32", "dev", "lo", check=True)  # an address taken on this host
        r = ns.call(*TCPWAVE, "doctor", "--tun", "tcpwd1", "--addr", "192.0.2.3", "--json", capture_output=True,
                    text=True, timeout=30)
        doc = json.loads(r.stdout)
        fails = [c for c in doc["checks"] if c["status"] == "fail"]
        assert r.returncode == 1 and doc["failed"] == len(fails) == 2  # the local address, and its route via lo
        (fail,) = [c for c in fails if "is a local address of this host" in c["what"]]
        assert "e.g. 192.0.2.2)" in fail["fix"]  # not .1 (the kernel side's) nor .3 (taken)
        ns.call(*TCPWAVE, "tun", "del", "tcpwd1", check=True, capture_output=True)


def test_doctor_leaves_a_device_in_use_alone():
    """A device a server holds: doctor's SYN test would add a queue beside the server's and take some
    of its packets (and the steering program's choice would change for all of them): it is skipped,
    naming the process, and the server's connections carry on."""
    from netns import wait_for_file

    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-doctor") as ns:
        assert ns.call(*TCPWAVE, "tun", "add", "tcpwd2", "--user", "root", capture_output=True).returncode == 0
        ready = os.path.join(tmp, "ready")
        server = ns.popen(*TCPWAVE, "serve", "echo", "--tun", "tcpwd2", "--control", "none", "--ready-file", ready,
                          stderr=subprocess.DEVNULL)
        wait_for_file(ready, server)
        rc, out, fails = _doctor(ns, "--tun", "tcpwd2")
        assert rc == 0 and fails == [], out
        assert "SYN test skipped: tcpwd2 is in use (process " in out and "drew the kernel's RST" not in out, out
        client = ("import socket; s = socket.create_connection(('192.0.2.2', 7), timeout=10); "
                  "s.sendall(b'still here'); print(s.recv(64).decode())")
        echo = ns.call(sys.executable, "-c", client, capture_output=True, text=True, timeout=30)
        assert echo.stdout.strip() == "still here", echo.stderr
        server.terminate()
        server.wait(10)
        ns.call(*TCPWAVE, "tun", "del", "tcpwd2", check=True, capture_output=True)
