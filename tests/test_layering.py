"""The tree shows the architecture, and the imports keep to it. Each package may import only the
packages ALLOWED names (the command line may import everything, nothing imports the command line);
no two files import each other, directly or round a circle, except the core's documented
back-references to Connection under TYPE_CHECKING; programs embedded as strings (the benches run
them in other processes) are held to their file's rules. Checked on the source, so a violation
fails here; the checker itself is shown to catch planted violations in a copy of the tree."""

import ast
import functools
import pathlib
import shutil

import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "tcpwave"

_BASE = {"wire", "cc"}
ALLOWED = {  # package (or top-level module) -> the packages it may import, besides itself
    "wire": set(),                                      # segments and sequence arithmetic: stdlib only
    "cc": set(),                                        # congestion control works on numbers it is given
    "core": _BASE,                                      # sans-IO: no stack, driver, loop, view or command
    "stack": _BASE | {"core"},                          # the front door: demux, listeners, ports
    "sim": _BASE | {"core", "stack"},
    "drivers": {"wire"},                                # devices and namespaces know nothing of TCP state
    "aio": _BASE | {"core", "stack", "drivers"},
    "views": _BASE | {"core"},                          # read captures and event logs, never run a stack
    "scenarios": _BASE | {"core", "stack", "sim"},
    "packetdrill": _BASE | {"core", "stack", "drivers"},
    "bench": _BASE | {"core", "stack", "sim", "drivers", "aio", "views"},
    "testing": _BASE | {"core", "stack", "sim", "aio", "views"},  # networks for users' tests: runs stacks on
    #                                                     a loop, sim's seeded links, pcaps of what failed
    "cli": None,                                        # None: anything
    "__init__": {"aio", "stack", "core", "views"},     # (its lazy names: the public surface)
}

TOP_LEVEL_FILES = {"__init__.py", "__main__.py", "stack.py"}

# The sanctioned way back up inside core/: these parts name the Connection they are handed, for
# annotations only (core/__init__.py's docstring).
BACK_REFERENCES = {(f"core/{part}", "core/connection") for part in ("arrival", "receiver", "recovery", "sender",
                                                                      "time_wait")}


class Module:
    """One file: the modules it imports (resolved to files under the root), those it imports only
    under TYPE_CHECKING, and the packages its embedded programs import."""

    def __init__(self, root: pathlib.Path, path: pathlib.Path):
        self.root, self.path = root, path
        rel = path.relative_to(root).with_suffix("")
        self.name = "/".join(rel.parts)  # e.g. "core/connection", "stack", "scenarios/__init__"
        self.package = rel.parts[0]
        self.dotted = ["tcpwave", *rel.parts[:-1]]  # the package a relative import starts from
        self.imports: set[str] = set()
        self.type_checking: set[str] = set()
        self.embedded: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {id(n) for node in ast.walk(tree) if _is_type_checking(node) for n in _walk_body(node)}
        for node in ast.walk(tree):
            targets = self._targets(node)
            (self.type_checking if id(node) in guarded else self.imports).update(targets)
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.embedded |= self._embedded(node.value)

    def _targets(self, node: ast.AST) -> set[str]:
        """The files an import statement loads: `from pkg import sub` the submodule when there is one,
        else the package (or module) the names come from."""
        if isinstance(node, ast.Import):
            found = [self._resolve(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = self.dotted[: len(self.dotted) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found = [self._resolve(f"{module}.{a.name}") or self._resolve(module) for a in node.names]
        else:
            return set()
        return {f for f in found if f}

    def _resolve(self, name: str) -> str | None:
        """The file under the root that a dotted tcpwave name is, or None (not ours, or not a module)."""
        parts = name.split(".")
        if parts[0] != "tcpwave":
            return None
        rel = parts[1:]
        if not rel:
            return "__init__"
        if (self.root.joinpath(*rel)).with_suffix(".py").is_file():
            return "/".join(rel)
        if (self.root.joinpath(*rel) / "__init__.py").is_file():
            return "/".join(rel) + "/__init__"
        return None

    def _embedded(self, text: str) -> set[str]:
        """The top-level tcpwave packages a string that is a Python program imports."""
        if "tcpwave" not in text or "import" not in text:
            return set()
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return set()
        out = set()
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            out |= {n.split(".")[1] for n in names if n.startswith("tcpwave.")}
        return out


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def _walk_body(node: ast.If):
    for stmt in node.body:
        yield from ast.walk(stmt)


def load(root: pathlib.Path) -> dict[str, Module]:
    return {m.name: m for m in (Module(root, p) for p in sorted(root.rglob("*.py")))}


@functools.cache
def source() -> dict[str, Module]:
    """The source tree, parsed once for all the tests here (none of them changes it)."""
    return load(SRC)


def _package_of(name: str) -> str:
    return name.split("/")[0]


def rule_violations(modules: dict[str, Module]) -> list[str]:
    bad = []
    for m in modules.values():
        allowed = ALLOWED.get(m.package, set())
        if allowed is None:
            continue
        reached = {_package_of(t): f"imports tcpwave/{t}.py" for t in m.imports | m.type_checking}
        reached |= {p: f"embeds a program importing tcpwave.{p}" for p in m.embedded}
        for package, how in sorted(reached.items()):
            if package != m.package and package not in allowed:
                bad.append(f"{m.name}.py {how} ({m.package} may import only {sorted(allowed) or 'nothing'})")
    return bad


def circles(modules: dict[str, Module]) -> list[list[str]]:
    """The files that import each other, directly or round a circle (each group once, sorted),
    TYPE_CHECKING imports included, the sanctioned back-references excepted."""
    edges = {name: {t for t in m.imports | m.type_checking if t != name and (name, t) not in BACK_REFERENCES}
             for name, m in modules.items()}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reached = {name: reach(name) for name in edges}
    groups = {tuple(sorted(n for n in reached[name] if name in reached[n])) for name in edges if name in reached[name]}
    return sorted(list(g) for g in groups)


def test_every_package_has_a_rule():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    modules = {p.stem for p in SRC.glob("*.py")}
    assert packages | modules == set(ALLOWED), "give each package a rule in ALLOWED"


def test_the_top_level_holds_only_packages_and_the_front_door():
    loose = {p.name for p in SRC.glob("*.py")} - TOP_LEVEL_FILES
    assert not loose, f"move into a package: {sorted(loose)}"


def test_packages_import_only_what_their_rule_allows():
    bad = rule_violations(source())
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    found = circles(source())
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_the_core_names_connection_only_where_documented():
    modules = source()
    back = {(name, t) for name, m in modules.items() for t in m.type_checking if t == "core/connection"}
    assert back == BACK_REFERENCES
    assert not [name for name, m in modules.items() if name.startswith("core/") and "core/connection" in m.imports
                and name != "core/__init__"]


def test_the_checker_sees_relative_imports_and_embedded_programs():
    modules = source()
    assert {"core/sender", "core/events", "cc/__init__"} <= modules["core/connection"].imports
    assert "core/connection" in modules["core/sender"].type_checking
    assert {"aio", "drivers", "stack", "views"} <= modules["bench/tun"].embedded


def with_plants(tmp_path: pathlib.Path, *plants: tuple[str, str]) -> dict[str, Module]:
    """The tree with code appended to some files, in a copy of it: those files parsed again there, the
    others as parsed from the source (their text is the same)."""
    root = tmp_path / "tcpwave"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__"))
    modules = dict(source())
    for file, code in plants:
        path = root / file
        path.write_text(path.read_text() + "\n" + code)
        module = Module(root, path)
        modules[module.name] = module
    return modules


@pytest.mark.parametrize("file, planted", [
    ("views/ladder.py", "import tcpwave.cli.main\n"),
    ("core/rtt.py", "from ..cli import knobs\n"),
    ("stack.py", "from .cli.tun_options import end_child\n"),
    ("bench/tun.py", 'PROGRAM = """\nimport sys\nfrom tcpwave.cli.tun_options import end_child\n"""\n'),
], ids=["absolute", "relative", "top-level", "embedded"])
def test_a_planted_import_of_the_command_line_fails(tmp_path, file, planted):
    bad = rule_violations(with_plants(tmp_path, (file, planted)))
    assert len(bad) == 1 and bad[0].startswith(file) and "cli" in bad[0], bad


@pytest.mark.parametrize("file, planted, circle", [
    ("packetdrill/iocalls.py", "from . import sockets\n", "packetdrill/iocalls"),
    ("core/rtt.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .connection import Connection\n",
     "core/rtt"),
    ("cli/trace.py", "from . import watch\n", "cli/trace"),
], ids=["packetdrill", "undocumented-back-reference", "cli"])
def test_a_planted_circle_fails(tmp_path, file, planted, circle):
    plants = [(file, planted)]
    if file == "cli/trace.py":
        plants.append(("cli/watch.py", "from . import trace\n"))
    found = circles(with_plants(tmp_path, *plants))
    assert found and any(circle in c for c in found), found
