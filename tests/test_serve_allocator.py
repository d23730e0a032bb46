"""`tcpwave serve`, started as a program on glibc, runs itself again under PYTHONMALLOC=malloc (see
cli/allocator.py: Python's arenas would keep the memory of connections long gone); a PYTHONMALLOC set
by the user is kept, and only serve does it. The exec is replaced by a recorder."""

import os
import sys

import pytest

from tcpwave.cli import allocator, main, serve


class Exec(Exception):
    pass


def _run(monkeypatch, argv: list[str]) -> list:
    execs: list = []

    def execve(path, args, env):
        execs.append((path, list(args), env))
        raise Exec

    monkeypatch.setattr(os, "execve", execve)
    monkeypatch.setattr(sys, "argv", ["tcpwave", *argv])
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-m", "tcpwave.cli.main", *argv])
    try:
        main.main()
    except (Exec, SystemExit):
        pass
    return execs


@pytest.mark.skipif(not allocator.glibc(), reason="glibc only")
def test_serve_as_a_program_starts_again_on_the_c_allocator(monkeypatch):
    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    [(path, args, env)] = _run(monkeypatch, ["serve", "echo", "--port", "7"])
    assert path == sys.executable
    assert args == [sys.executable, "-m", "tcpwave.cli.main", "serve", "echo", "--port", "7"]
    assert env["PYTHONMALLOC"] == "malloc"


def test_a_pythonmalloc_the_user_set_is_kept(monkeypatch):
    monkeypatch.setenv("PYTHONMALLOC", "pymalloc")
    monkeypatch.setattr(serve, "run", lambda args: 0)  # (the set_defaults func: serve itself not run)
    assert _run(monkeypatch, ["serve", "echo"]) == []


def test_other_commands_and_calls_from_code_keep_the_allocator(monkeypatch):
    monkeypatch.delenv("PYTHONMALLOC", raising=False)
    assert _run(monkeypatch, ["--version"]) == []
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("exec from main(argv)"))
    with pytest.raises(SystemExit):
        main.main(["serve", "--help"])
