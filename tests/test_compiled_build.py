"""The compiled build (setup.py compiles wire/, core/, cc/, stack.py and the simulator's loop with
mypyc) and the pure one, from one install: `tcpwave --version` says which runs, TCPWAVE_PURE=1 runs the
sources, and the install falls back to pure Python (or fails, when told to compile) without a C
compiler."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "tcpwave"
TCPWAVE = [sys.executable, "-m", "tcpwave.cli.main"]
# what actually loads, counted without tcpwave's own code: every module of the compiled packages
# imported, those not run from a .py file counted
PROBE = ("import importlib, pathlib, tcpwave\n"
         "root = pathlib.Path(tcpwave.__file__).parent\n"
         "names = [f'tcpwave.{p.parent.name}' + ('' if p.stem == '__init__' else f'.{p.stem}')\n"
         "         for part in ('wire', 'core', 'cc') for p in (root / part).glob('*.py')]\n"
         "names += ['tcpwave.stack', 'tcpwave.sim.network', 'tcpwave.sim.link']\n"
         "print(sum(not importlib.import_module(n).__file__.endswith('.py') for n in names))")


def _env(pure: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TCPWAVE_PURE"}
    if pure is not None:
        env["TCPWAVE_PURE"] = pure
    return env


def _run(args: list[str], pure: str | None) -> str:
    r = subprocess.run(args, capture_output=True, text=True, timeout=120, env=_env(pure), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _installed_compiled() -> int:
    return sum(1 for p in PACKAGE.rglob("*.so"))


@pytest.mark.parametrize("pure", [None, "1"])
def test_version_names_the_build_actually_loaded(pure):
    version = _run([*TCPWAVE, "--version"], pure)
    loaded = int(_run([sys.executable, "-c", PROBE], pure))
    installed = _installed_compiled()
    if pure == "1":  # the sources run, even where a compiled module sits beside them
        assert loaded == 0
        assert "pure Python (" in version
        if installed:
            assert f"TCPWAVE_PURE=1; {installed} compiled modules installed, not loaded" in version
    elif installed:  # a compiled install runs compiled, and says how much
        assert loaded > 0
        assert installed == loaded  # (every compiled module loads compiled)
        assert version.endswith(f", compiled with mypyc: {loaded} modules")
    else:
        assert loaded == 0 and "pure Python (this install has no compiled modules)" in version


def _setup(env_changes: dict[str, str]) -> subprocess.CompletedProcess:
    """setup.py's choice of build, without building: `--name` runs the choice and prints the name."""
    env = {**os.environ, **env_changes}
    return subprocess.run([sys.executable, "setup.py", "--name"], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)


def test_install_without_a_c_compiler_falls_back_to_pure_python():
    r = _setup({"CC": "/nonexistent/cc", "TCPWAVE_COMPILE": ""})
    assert r.returncode == 0, r.stderr
    assert "tcpwave: no working C compiler" in r.stderr and "installing pure Python" in r.stderr
    assert r.stdout.strip().splitlines()[-1] == "tcpwave"


def test_compile_forced_without_a_c_compiler_fails_loudly():
    r = _setup({"CC": "/nonexistent/cc", "TCPWAVE_COMPILE": "1"})
    assert r.returncode != 0
    assert "TCPWAVE_COMPILE=1 but no working C compiler" in r.stderr


def test_compile_0_installs_pure_python_without_looking_for_a_compiler():
    r = _setup({"CC": "/nonexistent/cc", "TCPWAVE_COMPILE": "0"})
    assert r.returncode == 0, r.stderr
    assert "TCPWAVE_COMPILE=0: installing pure Python" in r.stderr and "C compiler" not in r.stderr
