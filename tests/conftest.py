"""Under CI (CI=true, as root, after `./run test` installed its tools) a test may not quietly skip
because a tool or privilege is missing: that would hide a broken install step. Such a skip fails."""

import os

import pytest

# A packet that raises inside the stack is dropped and counted on a real server (stack.py); under test
# it raises, here and in every server a test starts, so that no bug hides behind the count
os.environ["TCPWAVE_STRICT"] = "1"

# Skip reasons that mean "the machine lacks what ./run test provides" (tools, root, /dev/net/tun).
_SET_UP_BY_RUN = ("needs ", "not installed", "./run test")


def pytest_addoption(parser):
    parser.addoption("--reverse", action="store_true",
                     help="run the tests in reverse order: ./run test's pure-Python pass, which runs beside the "
                          "compiled one, so the two meet at one test midway rather than racing through the same ones")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse"):
        items.reverse()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped:
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(marker in reason for marker in _SET_UP_BY_RUN):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI for a missing tool or privilege: {reason}"


def pytest_sessionstart(session):
    """A compiled module older than its source would test stale code: stop and say how to rebuild
    (./run test rebuilds by itself). TCPWAVE_PURE=1 runs the sources, so nothing can be stale then."""
    if os.environ.get("TCPWAVE_PURE") == "1":
        return
    import pathlib

    package = pathlib.Path(__file__).resolve().parent.parent / "src" / "tcpwave"
    sources = {so: so.with_name(so.name.split(".")[0] + ".py") for so in package.rglob("*.so")}
    stale = [str(so.relative_to(package)) for so, src in sources.items()
             if src.exists() and src.stat().st_mtime > so.stat().st_mtime]
    if stale:
        pytest.exit(f"compiled modules older than their sources ({', '.join(sorted(stale)[:5])}...): rebuild with "
                    "`.venv/bin/pip install -e .` (./run test does), or run the sources with TCPWAVE_PURE=1", 2)
