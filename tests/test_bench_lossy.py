"""`tcpwave bench --lossy` compares like with like: every Linux sender runs the congestion control
tcpwave runs, whatever the kernel's default (this machine's is bbr), and the output says which; and
data is really lost in both directions, so the receiving rows exercise recovery too. Speeds are its
output, not assertions here."""

import json
import os
import shutil
import sys

import pytest
from netns import namespaces_of, run_command

from tcpwave.bench.lossy import linux_cc

pytestmark = pytest.mark.skipif(
    not (os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "tc", "iptables", "ethtool"))
         and os.path.exists("/dev/net/tun")),
    reason="needs root, iproute2, iptables, ethtool and /dev/net/tun")


def _available() -> set[str]:
    with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
        return set(f.read().split())


SIZE, LOSS = 2_000_000, 0.03


def test_the_linux_senders_run_tcpwaves_congestion_control_and_lose_data_both_ways():
    assert linux_cc({}) == "cubic"  # tcpwave's default
    if "reno" not in _available():
        pytest.skip("the kernel has no reno")
    r = run_command([sys.executable, "-m", "tcpwave.cli.main", "bench", "--lossy", "--loss", str(LOSS * 100),
                     "--bytes", str(SIZE), "--cc", "reno", "--runs", "2", "--json"], timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(r.stdout)
    assert data["verified"] and data["settings"]["congestion_control"] == "reno"
    (row,) = data["rows"]
    # two runs, each direction's figure their median; each run's RTOs counted where they happened
    assert len(row["runs"]) == 2
    for kind in ("tcpwave_send", "linux_send", "tcpwave_recv", "linux_recv"):
        speeds = sorted(run[kind]["mbps"] for run in row["runs"])
        assert row[kind]["mbps"] == (speeds[0] + speeds[1]) / 2
    for run in row["runs"]:
        assert run["tcpwave_send"]["timeouts"] >= 0 and run["tcpwave_send"]["srtt_us"] > 0
        for kind in ("tcpwave_recv", "linux_recv"):
            sender = run[kind]["sender"]  # the Linux sender's own kernel: nstat and tcp_info
            assert sender["timeouts"] >= 0 and sender["srtt_us"] > 0 and 0 <= sender["rwnd_limited"] <= 1
    assert row["linux_cc"] == "reno" and row["kernel_default_cc"]
    assert row["linux_send"]["cc"] == "reno"  # what the Linux socket reported it used
    assert row["tcpwave_recv"]["sender_cc"] == row["linux_recv"]["sender_cc"] == "reno"
    # each Linux sender really lost data (a drop on the way out of a local socket would be refused
    # and sent again, not lost): at least a quarter of the segments the loss rate should cost
    expected = SIZE / 1448 * LOSS
    for retrans in (row["linux_send"]["retransmitted_segments"], row["tcpwave_recv"]["sender_retransmitted_segments"],
                    row["linux_recv"]["sender_retransmitted_segments"]):
        assert retrans >= expected / 4, row
    assert not namespaces_of("tcpwave-lossy-", r.pid)
