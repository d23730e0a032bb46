"""Under CI (CI=true, as root, after `./run test` installed its tools) a test may not quietly skip
because a tool or privilege is missing: that would hide a broken install step. Such a skip fails."""

import os

import pytest

# Skip reasons that mean "the machine lacks what ./run test provides" (tools, root, /dev/net/tun).
_SET_UP_BY_RUN = ("needs ", "not installed", "./run test")


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
