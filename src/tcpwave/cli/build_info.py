"""Which build is running: the modules mypyc compiled (setup.py), or the pure-Python sources.

Computed from what is installed and what the import system loads, for `tcpwave --version` and the
benchmarks; TCPWAVE_PURE=1 (tcpwave/__init__.py) runs the sources of a compiled install."""

import importlib
import os
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import tcpwave


def _compiled(path: str | None) -> bool:
    return path is not None and path.endswith(tuple(EXTENSION_SUFFIXES))


def installed_compiled() -> list[str]:
    """The package's modules that have a compiled extension beside their source (dotted names)."""
    root = Path(tcpwave.__file__).parent
    names = []
    for path in root.rglob("*"):
        if _compiled(str(path)):
            parts = path.relative_to(root).parts
            module = parts[-1].split(".")[0]
            names.append(".".join(["tcpwave", *parts[:-1], *([] if module == "__init__" else [module])]))
    return sorted(names)


def describe() -> str:
    """One line: which build runs. Imports each module installed compiled and counts those that load
    compiled."""
    installed = installed_compiled()
    loaded = [name for name in installed if _compiled(importlib.import_module(name).__file__)]
    if loaded and len(loaded) == len(installed):
        return f"compiled with mypyc: {len(loaded)} modules"
    if loaded:
        return f"partly compiled with mypyc: {len(loaded)} of {len(installed)} compiled modules load compiled"
    if not installed:
        return "pure Python (this install has no compiled modules)"
    if os.environ.get("TCPWAVE_PURE") == "1":
        return f"pure Python (TCPWAVE_PURE=1; {len(installed)} compiled modules installed, not loaded)"
    return f"pure Python ({len(installed)} compiled modules installed, none loaded)"
