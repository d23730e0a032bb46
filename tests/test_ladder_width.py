"""The terminal ladder fits the terminal it is printed on (issue 27); --width overrides it, and
output that is not a terminal keeps the full layout (so files and README samples do not change
with the window)."""

import os
import shutil
import sys

import pytest

from tcpwave.cli.main import main
from tcpwave.views.ladder import FULL_WIDTH


def _demo_lines(monkeypatch, capsys, columns: int, tty: bool, *args: str) -> list[str]:
    monkeypatch.setattr(shutil, "get_terminal_size", lambda *a, **k: os.terminal_size((columns, 24)))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    main(["demo", "lost-final-ack", "--explain", "--color", "never", *args])
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_the_ladder_fits_the_terminals_width_by_default(monkeypatch, capsys, columns):
    lines = _demo_lines(monkeypatch, capsys, columns, True)
    assert any("lost" in line for line in lines) and any("TIME_WAIT" in line for line in lines)
    assert max(map(len, lines)) <= columns


def test_width_overrides_the_terminal_and_a_pipe_gets_the_full_layout(monkeypatch, capsys):
    wide = _demo_lines(monkeypatch, capsys, 80, True, "--width", "200")
    assert max(map(len, wide)) > 80
    piped = _demo_lines(monkeypatch, capsys, 80, False)
    assert max(map(len, piped)) > FULL_WIDTH - 10  # the full layout, as before
