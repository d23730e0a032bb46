"""The simulator-only benchmarks still run and check what they measure (they assert no speed): a
benchmark nobody runs breaks unseen (serve_cycles.py did, when the services came to need a running
loop for their idle timers)."""

import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).parent.parent / "benchmarks"


@pytest.mark.parametrize("script, args, said", [
    ("serve_cycles.py", ["--cycles", "200"], "200 cycles checked"),
    ("syn_path.py", ["--syns", "2000"], "SYN"),
    ("core_speed.py", ["--mb", "1", "--cycles", "50"], "connect+close"),
])
def test_benchmark_runs_and_checks_its_work(script, args, said):
    r = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert said in r.stdout, r.stdout
    assert "Traceback" not in r.stderr and "Error" not in r.stderr, r.stderr[-3000:]
