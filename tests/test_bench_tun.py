"""`tcpwave bench` (TUN vs veth) runs, verifies its data and cleans up. Speeds are its output, not
assertions here."""

import json
import os
import shutil
import sys

import pytest
from netns import namespace, namespaces_of, run_command

from tcpwave.bench.tun import background

pytestmark = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("ip") and os.path.exists("/dev/net/tun")),
    reason="needs root, iproute2 and /dev/net/tun")


def test_bench_reports_verified_figures_and_leaves_nothing_behind(tmp_path):
    r = run_command([sys.executable, "-m", "tcpwave.cli.main", "bench", "--bytes", "5000000", "--cycles", "100",
                     "--churn-seconds", "2", "--json", "--pcap", str(tmp_path / "b.pcap")], timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(r.stdout)
    assert data["verified"]
    for side in ("tcpwave_offload", "tcpwave_no_offload", "linux_veth"):
        assert data[side]["linux_to_tcpwave"]["verified"] and data[side]["tcpwave_to_linux"]["verified"]
        assert data[side]["linux_to_tcpwave"]["mbps"] > 0 and data[side]["cycles_8"]["per_s"] > 0
        for row, clients in (("cycles_1", 1), ("cycles_8", 8), ("cycles_8_2w", 8)):  # every cycle done, none
            # failed or left open (each client does its share of --cycles)
            assert data[side][row]["cycles"] == 100 // clients * clients, data[side][row]
            assert data[side][row]["errors"] == 0
            assert data[side][row]["unfinished"] == 0
    assert not namespaces_of("tcpwave-bench-", r.pid)
    # each tcpwave run wrote its capture (tcpwave's side of every connection in it)
    from tcpwave.views import load

    for run in ("linux_to_tcpwave", "cycles", "tcpwave_to_linux"):
        for offload in ("on", "off"):
            views, _ = load(str(tmp_path / f"b-{run}-offload_{offload}.pcap"))
            assert views and any(e["len"] for v in views for e in v.events if e["type"] == "send") \
                or run == "cycles"
    cycles, _ = load(str(tmp_path / "b-cycles-offload_on.pcap"))
    assert len(cycles) >= 100  # one connection per connect+close cycle (each run does 100, 1 and 8 at a time)


def test_a_server_is_waited_for_even_when_an_earlier_run_left_its_ready_file(tmp_path):
    """bench --lossy --runs 2 reuses its ready-file names: the second run's clients went off at once
    and, when they beat the server to listen(), failed with ECONNREFUSED."""
    ready, started = tmp_path / "ready", tmp_path / "started"
    ready.touch()  # left by an earlier run
    with namespace("tcpwave-bready") as ns:
        with background(ns.name, "sh", "-c", f"echo yes > {started}; touch {ready}; exec sleep 30",
                        ready=str(ready)) as proc:
            assert started.read_text() == "yes\n"  # the server's own ready file, not the stale one
            assert proc.poll() is None
