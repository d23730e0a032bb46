"""`tcpwave sweep`: a grid of deterministic simulated transfers gives the same rows serially, on a
process pool and on a real Dask cluster; a rerun skips the points its output has; bad values are one
line; the plot is written; Ctrl-C ends it with one line and no worker left. Tiny grids, short runs."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from tcpwave.bench import sweep as sw
from tcpwave.cli.main import main

ROOT = pathlib.Path(__file__).resolve().parent.parent


def tiny(seconds: float = 0.5) -> sw.Grid:
    return sw.Grid({"cc": ["reno", "cubic"], "loss": [0.0, 2.0], "rtt_ms": [20.0], "rate_mbit": [10.0],
                    "queue_bdp": [1.0], "seed": [1], "set:sack": [True, False]}, seconds)


def test_dask_local_cluster_gives_the_local_rows_point_for_point(tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = tiny()
    sw.sweep(grid, tmp_path / "local.json", sw.run_serial)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        with distributed.Client(c.scheduler_address) as client:
            pids = set(client.run(os.getpid).values())
        ran, skipped = sw.sweep(grid, tmp_path / "dask.json",
                                lambda points: sw.run_dask(points, c.scheduler_address))
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, not this one
    assert (ran, skipped) == (8, 0)
    local, remote = sw.load(tmp_path / "local.json"), sw.load(tmp_path / "dask.json")
    assert {grid.key(r): r for r in remote} == {grid.key(r): r for r in local}
    assert len(local) == 8 and all(r["verified"] for r in local)
    assert len({r["goodput_bps"] for r in local}) > 1  # the points differ, so equal rows mean something


def test_a_process_pool_gives_the_serial_rows_in_the_same_file(tmp_path):
    grid = tiny()
    sw.sweep(grid, tmp_path / "serial.csv", sw.run_serial)
    sw.sweep(grid, tmp_path / "pool.csv", lambda points: sw.run_pool(points, 2))
    assert (tmp_path / "pool.csv").read_bytes() == (tmp_path / "serial.csv").read_bytes()
    assert len(sw.load(tmp_path / "pool.csv")) == 8


def test_a_rerun_skips_the_points_already_in_the_output(tmp_path):
    """An interrupted sweep keeps the rows it finished; the rerun runs only the others."""
    grid, out, ran = tiny(), tmp_path / "rows.csv", []

    def counting(points, stop_at=None):
        for p in points:
            if len(ran) == stop_at:
                raise KeyboardInterrupt
            ran.append(p)
            yield sw.run_point(p)

    with pytest.raises(KeyboardInterrupt):
        sw.sweep(grid, out, lambda points: counting(points, stop_at=2))
    kept = {grid.key(r) for r in sw.load(out)}
    assert len(kept) == 2
    ran.clear()
    assert sw.sweep(grid, out, counting) == (6, 2)
    assert len(ran) == 6 and kept.isdisjoint(grid.key(p) for p in ran)
    sw.sweep(grid, tmp_path / "whole.csv", sw.run_serial)
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()  # the same file as one whole run
    ran.clear()
    assert sw.sweep(grid, out, counting) == (0, 8) and ran == []


@pytest.mark.parametrize("args, message", [
    (["--loss", "150"], "--loss 150: must be in 0..100"),
    (["--rtt", "0"], "--rtt 0: must be in (0, 10000] ms"),
    (["--cc", "vegas"], "unknown congestion control 'vegas'"),
    (["--set", "rto_min=0.2,abc"], "--set rto_min=abc: not a valid float"),
    (["--set", "nosuch=1,2"], "--set nosuch=1: expected KNOB=VALUE"),
    (["--queue", "0.001"], "holds no full packet"),
    (["--seeds", "0"], "--seeds 0: must be in 1..100000"),
    (["--jobs", "0"], "--jobs 0: must be at least 1"),
    (["-o", "rows.txt"], "the output is .csv or .json"),
])
def test_bad_values_are_one_line_not_a_traceback(tmp_path, capsys, args, message):
    argv = ["sweep", "-o", str(tmp_path / "rows.csv"), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_plot_is_written_with_a_panel_per_rtt(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from tcpwave.bench.sweep_plot import plot

    png = tmp_path / "sweep.png"
    assert main(["sweep", "--cc", "reno", "cubic", "--loss", "0", "1", "--rtt", "20", "40", "--seconds", "0.3",
                 "--jobs", "1", "-o", str(tmp_path / "rows.csv"), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {png}" in capsys.readouterr().err
    assert plot(sw.load(tmp_path / "rows.csv"), str(tmp_path / "again.png")) == ["RTT 20 ms", "RTT 40 ms"]


def test_readme_sample_is_a_real_sweep(tmp_path, capsys):
    """The README's sweep sample is the file the command it shows writes."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## `tcpwave sweep`.*?```\n(.*?)```", text, re.S).group(1).splitlines()
    command = block[0].removeprefix("$ ").split()
    assert command[:2] == ["tcpwave", "sweep"] and command[-2:] == ["-o", "rows.csv"]
    out = tmp_path / "rows.csv"
    assert main([*command[1:-2], "-o", str(out)]) == 0
    lines = block[1:]
    assert lines[0] == "$ cat rows.csv"
    assert lines[1:] == out.read_text().splitlines()


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def test_ctrl_c_ends_it_with_one_line_and_no_worker_left(tmp_path):
    out = tmp_path / "rows.csv"
    proc = subprocess.Popen([sys.executable, "-m", "tcpwave.cli.main", "sweep", "--cc", "reno", "cubic", "--loss",
                             "0", "1", "2", "--seeds", "20", "--seconds", "1", "--jobs", "2", "-o", str(out)],
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    deadline = time.monotonic() + 120
    while not (out.exists() and len(sw.load(out)) >= 1) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) == 2 and proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if not re.fullmatch(r"tcpwave sweep: \d+/\d+ points", line)]
    assert len(lines) == 1 and lines[0].startswith("tcpwave sweep: interrupted after "), err
    deadline = time.monotonic() + 30
    while any(pathlib.Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pathlib.Path(f"/proc/{w}").exists() for w in workers)
    assert 1 <= len(sw.load(out)) < 120  # what it finished stays for the rerun
