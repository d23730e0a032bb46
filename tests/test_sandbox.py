"""`tcpwave serve` and `tcpwave sandbox`: a real kernel (curl, Python sockets) talking to tcpwave in a
throwaway namespace that the command creates and removes."""

import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest
from netns import namespaces_of, run_command

from tcpwave.cli.main import main

ROOT_REASON = None if os.geteuid() == 0 and shutil.which("ip") and os.path.exists("/dev/net/tun") else \
    "needs root, iproute2 and /dev/net/tun"
needs_root = pytest.mark.skipif(ROOT_REASON is not None, reason=ROOT_REASON or "")
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (./run test installs it)")


def sandbox(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The run's result, with its `pid`: the sandbox's namespace is tcpwave-sbx-PID."""
    return run_command([sys.executable, "-m", "tcpwave.cli.main", "sandbox", *args], timeout=timeout)


@needs_root
@needs_curl
def test_sandbox_serves_the_page_to_curl():
    r = sandbox("--serve", "http", "--", "curl", "-s", "http://192.0.2.2/")
    assert r.returncode == 0, r.stderr
    assert "Hello from tcpwave" in r.stdout
    assert not namespaces_of("tcpwave-sbx-", r.pid)


@needs_root
@needs_curl
def test_http_keep_alive_reuses_one_connection():
    fmt = "%{num_connects} %{http_code}\\n"
    r = sandbox("--", "curl", "-s", "-o", "/dev/null", "-o", "/dev/null", "-w", fmt,
                "http://192.0.2.2/", "http://192.0.2.2/bytes/1000")
    assert r.stdout.split("\n")[:2] == ["1 200", "0 200"], r.stdout  # one connect, two responses


@needs_root
@needs_curl
def test_large_download_arrives_intact():
    n = 5_000_000
    r = sandbox("--", "sh", "-c", f"curl -s http://192.0.2.2/bytes/{n} | sha256sum")
    expected = hashlib.sha256((bytes(range(256)) * (n // 256 + 1))[:n]).hexdigest()
    assert r.stdout.split()[0] == expected


@needs_root
def test_echo_service_against_a_python_client():
    client = ("import socket,os,hashlib;d=os.urandom(300000);s=socket.create_connection(('192.0.2.2',7));"
              "s.sendall(d);s.shutdown(socket.SHUT_WR);g=b''.join(iter(lambda:s.recv(65536),b''));"
              "print('same' if g==d else 'different')")
    r = sandbox("--serve", "echo", "--", sys.executable, "-c", client)
    assert r.stdout.strip() == "same", r.stderr


@needs_root
def test_the_commands_exit_status_is_passed_on_and_the_namespace_removed():
    r = sandbox("--serve", "discard", "--", "sh", "-c", "ip netns identify; exit 3")
    assert r.returncode == 3
    assert r.stdout.split() == [f"tcpwave-sbx-{r.pid}"]  # the command ran in the sandbox's namespace
    assert not namespaces_of("tcpwave-sbx-", r.pid)  # which is gone


def test_serve_refuses_the_kernels_own_address(capsys):
    assert main(["serve", "http", "--addr", "192.0.2.1", "--host", "192.0.2.1/24"]) == 1
    assert "must differ from the kernel side" in capsys.readouterr().err


@needs_root
@needs_curl
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (./run test installs it as root)")
def test_sandbox_writes_pcap_pcapng_and_event_log_of_a_real_connection(tmp_path):
    from tcpwave.views import load

    pcap, pcapng, events = tmp_path / "s.pcap", tmp_path / "s.pcapng", tmp_path / "s.jsonl"
    r = sandbox("--pcap", str(pcap), "--pcapng", str(pcapng), "--events", str(events),
                "--", "curl", "-s", "-o", "/dev/null", "http://192.0.2.2/bytes/100000")
    assert r.returncode == 0, r.stderr
    out = subprocess.run(["tshark", "-r", str(pcapng), "-T", "fields", "-e", "tcp.flags.str", "-e", "frame.comment"],
                         capture_output=True, text=True, check=True).stdout
    comments = [line.split("\t", 1)[1] for line in out.strip().splitlines() if "\t" in line]
    # the kernel's SYN put tcpwave's connection in SYN_RCVD, its ACK made it ESTABLISHED, and so on
    assert any(re.fullmatch(r"tcpwave 192\.0\.2\.2:80-192\.0\.2\.1:\d+: LISTEN → SYN_RCVD", c) for c in comments)
    assert any(re.fullmatch(r"tcpwave 192\.0\.2\.2:80-192\.0\.2\.1:\d+: SYN_RCVD → ESTABLISHED", c)
               for c in comments)
    assert any("→ CLOSE_WAIT" in c or "→ FIN_WAIT_1" in c for c in comments)
    def frames(path):
        return subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number"],
                              capture_output=True, text=True, check=True).stdout.split()

    assert len(frames(pcap)) == len(frames(pcapng)) > 10  # the same packets in both
    views, _ = load(str(events))
    assert len(views) == 1  # one connection in the log: the listener's own events go with it
    v = views[0]
    kinds = {e["type"] for e in v.events}
    assert {"send", "recv", "state", "timer", "rtt", "cc", "window"} <= kinds
    # only tcpwave was traced: the kernel's segments are drawn from what tcpwave received
    assert v.left.startswith("192.0.2.1:") and v.right == "tcpwave"
    assert {e["host"] for e in v.events if e["type"] == "send"} == {v.left, v.right}
    path = [e["to"] for e in v.events if e["type"] == "state" and e["host"] == "tcpwave"]
    assert path[:6] == ["LISTEN", "SYN_RCVD", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
    assert path[6:] in ([], ["CLOSED"])  # and the listener's own LISTEN → CLOSED when serve stopped
    inferred, _ = load(str(pcap))
    assert [e["to"] for e in inferred[0].events if e["type"] == "state" and e["host"] == inferred[0].right][:2] == \
        ["LISTEN", "SYN_RCVD"]


@needs_root
@pytest.mark.skipif(shutil.which("iptables") is None, reason="needs iptables (./run test installs it)")
def test_sandbox_warns_when_impairments_meet_offloads_and_takes_no_offload_and_mtu():
    rule = "iptables -A INPUT -p tcp -m statistic --mode random --probability 0.01 -j DROP"
    r = sandbox("--serve", "echo", "--", "sh", "-c", rule)
    assert r.returncode == 0, r.stderr
    assert "has iptables rules" in r.stderr and "--no-offload" in r.stderr
    r = sandbox("--serve", "echo", "--no-offload", "--mtu", "1280", "--", "sh", "-c", f"{rule}; ip link show tcpw0")
    assert r.returncode == 0, r.stderr
    assert "has iptables rules" not in r.stderr
    assert "mtu 1280" in r.stdout
