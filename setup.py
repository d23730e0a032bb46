"""The compiled build: the sans-IO core compiled with mypyc, from the same source (issue 28).

pip runs this (pyproject.toml holds the metadata). TCPWAVE_COMPILE chooses the build:
  unset  compile when a C compiler works, else install pure Python (and say why)
  0      pure Python, mypyc is not even imported
  1      compile, and fail the install if that is impossible
The package runs either way; `tcpwave --version` says which build is loaded, and TCPWAVE_PURE=1 makes
one compiled install run its .py sources instead.
"""

import os
import sys
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
# The hot path: everything a segment goes through from the wire to the application and back.
# (and the simulator's loop, which the simulated runs and sweeps spend much of their time in)
COMPILED = ["wire", "core", "cc", "stack.py", "sim/network.py", "sim/link.py"]  # packages, and modules
# Left pure, on no hot path: classes mypyc cannot compile as written. Subclasses of list, int and
# KeyError on the public surface; IPv4Address's subclass (a class with __slots__); TcpError and the
# stack's errors, which combine it with OSError (a compiled exception's layout conflicts with OSError's);
# Config, whose field annotations are the knobs' types for `--set` (a compiled dataclass keeps
# only approximate ones).
PURE = {"core/tcpinfo.py", "core/sockopts.py", "core/trace.py", "wire/address.py", "core/errors.py",
        "core/config.py"}


def _sources() -> list[str]:
    package = HERE / "src" / "tcpwave"
    paths = [path for part in COMPILED
             for path in ([package / part] if part.endswith(".py") else (package / part).glob("*.py"))]
    return sorted(str(path.relative_to(HERE)) for path in paths
                  if str(path.relative_to(package)) not in PURE)


def _note(text: str) -> None:
    print(f"tcpwave: {text}", file=sys.stderr)


def _compiler_problem() -> str | None:
    """Why no C extension can be built here (None: one can): compiles and links a trivial one."""
    from setuptools import Distribution

    cmd = build_ext(Distribution())
    cmd.finalize_options()
    from distutils.ccompiler import new_compiler
    from distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "probe.c")
        source.write_text("#include <Python.h>\nint probe(void) { return 0; }\n")
        try:
            objects = compiler.compile([str(source)], output_dir=tmp, include_dirs=cmd.include_dirs)
            compiler.link_shared_object(objects, str(Path(tmp, "probe.so")))
        except Exception as e:  # noqa: BLE001 (any failure means: no compiled build)
            last = (str(e).strip().splitlines() or [""])[-1]
            return f"no working C compiler ({type(e).__name__}: {last})"
    return None


class _BuildExt(build_ext):
    """Unless TCPWAVE_COMPILE=1, a failed compile installs the pure build instead of failing."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:
            if os.environ.get("TCPWAVE_COMPILE") == "1":
                raise
            _note(f"compiling failed ({e}); installing pure Python")
            if self.inplace:
                _remove_old_build()  # no half-compiled package: what was built so far goes too
            self.extensions = []


def _remove_old_build() -> None:
    """An editable install builds in place: drop the last build's extension modules first, or a module
    now left pure (or a pure reinstall) would still load them."""
    src = HERE / "src"
    for path in [*src.glob("*__mypyc*.so"), *(src / "tcpwave").rglob("*.so")]:
        path.unlink()


def _extensions() -> list:
    args = sys.argv[1:]
    if {"editable_wheel", "develop"} & set(args) or "build_ext" in args and {"--inplace", "-i"} & set(args):
        _remove_old_build()  # (only builds into the source tree: a wheel is built apart from it)
    choice = os.environ.get("TCPWAVE_COMPILE", "")
    if choice == "0":
        _note("TCPWAVE_COMPILE=0: installing pure Python")
        return []
    problem = _compiler_problem()
    if problem:
        if choice == "1":
            raise SystemExit(f"tcpwave: TCPWAVE_COMPILE=1 but {problem}")
        _note(f"{problem}: installing pure Python")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as e:
        if choice == "1":
            raise
        _note(f"mypyc is not available ({e}): installing pure Python")
        return []
    _note(f"compiling {len(_sources())} modules with mypyc")
    # mypy notes about untyped code outside the compiled modules (imports it follows) are not errors here
    return mypycify(["--disable-error-code=annotation-unchecked", *_sources()], opt_level="3")


setup(ext_modules=_extensions(), cmdclass={"build_ext": _BuildExt})
