"""Checked by tools, not by eye: ruff on the whole tree and mypy on src/tcpwave (kept at zero
errors), as `./run test` runs them."""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TYPED = ["src/tcpwave"]


def _tool(name: str) -> list[str]:
    exe = pathlib.Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    if shutil.which(name):
        return [name]
    pytest.fail(f"{name} is not installed: ./run test installs it (the `test` extra)")


def test_ruff_finds_nothing():
    r = subprocess.run([*_tool("ruff"), "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_finds_nothing():
    r = subprocess.run([*_tool("mypy"), *TYPED], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
