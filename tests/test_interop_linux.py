"""Interop with the Linux kernel's TCP: tcpwave on a TUN device in a network namespace that each
test creates and removes. Skipped with a reason where that is impossible (not root, no TUN)."""

import itertools
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

PEER = pathlib.Path(__file__).parent / "interop" / "peer.py"
_names = itertools.count()


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) to create a network namespace and a TUN device"
    if not shutil.which("ip"):
        return "needs iproute2's ip"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def in_namespace(scenario: str, family: int, *extra: str) -> dict:
    name = f"tcpwave-t{os.getpid()}-{next(_names)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        proc = subprocess.run(["ip", "netns", "exec", name, sys.executable, str(PEER), scenario, str(family), *extra],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("family", [4, 6])
def test_linux_client_against_tcpwave_echo_server(family):
    r = in_namespace("echo", family)
    assert r["echo_equal"] and r["bytes"] == 1_000_000
    assert r["closed"] == ["normal"]
    # Linux half-closed first, so tcpwave is the passive closer and Linux waits in TIME_WAIT
    assert r["tcpwave_states"] == ["SYN_RCVD", "ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSED"]
    assert "TIME-WAIT" in r["linux_states"]


@pytest.mark.parametrize("family", [4, 6])
def test_tcpwave_client_against_linux_server(family):
    r = in_namespace("client", family)
    assert r["linux_saw_everything"]
    assert r["closed"] == {"8080": "normal", "9": "refused"}
    # tcpwave closed first, so it is the active closer and ends in TIME_WAIT (MSL 1 s in this test)
    assert r["tcpwave_states"] == ["SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT", "CLOSED"]
    # when Linux's FIN reached us, our ACK was not yet written: Linux's own view is LAST_ACK
    assert "LAST-ACK" in r["linux_states_at_eof"]


@pytest.mark.parametrize("family", [4, 6])
def test_linux_reset_reaches_the_application_and_closed_port_is_refused(family):
    r = in_namespace("resets", family)
    assert r["reason"] == "reset" and r["error"] == "ConnectionResetError"
    assert r["linux_connect"] == "ECONNREFUSED"


@pytest.mark.parametrize("family", [4, 6])
def test_asyncio_streams_on_tun_against_a_linux_client(family):
    r = in_namespace("aio_echo", family)
    assert r["echo_equal"]
    assert r["peer"] == ("192.0.2.1" if family == 4 else "2001:db8::1")


@pytest.mark.parametrize("family", [4, 6])
def test_two_hundred_concurrent_linux_connections(family):
    r = in_namespace("many", family)
    assert r == {"ok": 200, "count": 200}  # every connection echoed its own data exactly


@pytest.mark.skipif(shutil.which("iptables") is None, reason="needs iptables (./run test installs it)")
@pytest.mark.parametrize("family, size", [(4, 10_000_000), (6, 3_000_000)])
def test_megabytes_each_way_through_five_percent_loss_and_20ms_delay(family, size):
    # 5% loss both ways from iptables in the namespace, 20 ms from tcpwave's own FaultyLink; 10 MB over
    # IPv4, 3 MB over IPv6 (the same recovery code: a shorter run keeps the suite's time down)
    r = in_namespace("lossy", family, str(size))
    assert r["to_linux"] and r["to_us"]
    assert r["retransmitted"] > 0  # the loss was real, and recovered from


def test_bbr_lite_moves_data_to_and_from_linux_through_loss():
    r = in_namespace("lossy", 4, "4000000", "bbr-lite")
    assert r["cc"] == "bbr-lite" and r["to_linux"] and r["to_us"]
    assert r["retransmitted"] > 0


@pytest.mark.parametrize("family", [4, 6])
def test_close_orders_as_linux_sees_them(family):
    r = in_namespace("close_orders", family)
    # Linux closes first: it waits in FIN-WAIT-2 while tcpwave's application still holds CLOSE_WAIT;
    # once tcpwave closes (LAST_ACK -> CLOSED), Linux, the active closer, is in TIME-WAIT
    assert r["linux_first"] == {"tcpwave": "CLOSE_WAIT", "linux": "FIN-WAIT-2",
                                "after": {"tcpwave": "CLOSED", "linux": "TIME-WAIT"}}
    # tcpwave closes first: FIN_WAIT_2 against Linux's CLOSE-WAIT; then tcpwave holds TIME_WAIT
    assert r["tcpwave_first"] == {"tcpwave": "FIN_WAIT_2", "linux": "CLOSE-WAIT",
                                  "after": {"tcpwave": "TIME_WAIT", "linux": "gone"}}


def test_no_namespace_is_left_behind():
    in_namespace("resets", 4)
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"tcpwave-t{os.getpid()}-" not in left
