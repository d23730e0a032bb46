"""The tree shows the architecture, and the imports keep to it: the sans-IO core never imports a
driver, the asyncio layer, the command line or the views; the wire format never imports the core;
library code never imports the command line. Checked on the source, so a violation fails here."""

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "tcpwave"


def _imports(path: pathlib.Path) -> set[str]:
    """Fully qualified tcpwave modules (packages) that `path` imports."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("tcpwave")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("tcpwave"):
                out.add(name)
                out |= {f"{name}.{a.name}" for a in node.names}
    return out


RULES = [
    ("core", ("tcpwave.drivers", "tcpwave.aio", "tcpwave.cli", "tcpwave.views", "tcpwave.sim",
              "tcpwave.stack", "tcpwave.packetdrill")),
    ("cc", ("tcpwave.core", "tcpwave.drivers", "tcpwave.aio", "tcpwave.cli", "tcpwave.views")),
    ("wire", ("tcpwave.core", "tcpwave.cc", "tcpwave.drivers", "tcpwave.aio", "tcpwave.cli", "tcpwave.views")),
    ("", ("tcpwave.cli",)),  # library code (everything outside cli/) never imports the command line
]


@pytest.mark.parametrize("package, forbidden", RULES, ids=[r[0] or "library" for r in RULES])
def test_layers_import_only_downwards(package, forbidden):
    root = SRC / package if package else SRC
    files = [p for p in root.rglob("*.py") if "cli" not in p.relative_to(SRC).parts[:1]]
    assert files
    bad = []
    for path in files:
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)


def test_the_rule_checker_sees_relative_imports():
    names = _imports(SRC / "core" / "connection.py")
    assert "tcpwave.core.sender" in names and "tcpwave.cc" in names
