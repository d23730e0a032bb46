"""The pytest plugin (entry point `tcpwave` in the pytest11 group): the `tcpwave_network` fixture, an
in-memory network of tcpwave stacks on a virtual clock with seeded impairments, and a pcap of its
packets saved when the test fails.

    @pytest.mark.tcpwave(loss=0.01, delay=0.02)
    def test_my_app(tcpwave_network):
        server, client = tcpwave_network.host("192.0.2.1"), tcpwave_network.host("192.0.2.2")
        tcpwave_network.run(main(server, client))

The seed is, in order: --tcpwave-seed, the marker's `seed=`, or one derived from the test's id (so a
test replays the same run every time). A failing test's report names the pcap and the seed.
"""

import pathlib
import re
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # (imported when a test asks for the fixture: every pytest run loads this plugin)
    from .network import Network

_NETWORKS = pytest.StashKey[list["Network"]]()
_SAVED = pytest.StashKey[list[str]]()
_MARKER_OPTIONS = {"loss", "delay", "reorder", "rate", "duplicate", "seed", "config"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tcpwave", "tcpwave in-memory networks")
    group.addoption("--tcpwave-seed", type=int, default=None,
                    help="seed every tcpwave_network with this (replays a failing run)")
    group.addoption("--tcpwave-pcap-dir", default=None,
                    help="where a failing test's tcpwave pcap goes (default: tcpwave-pcaps under pytest's basetemp)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tcpwave(loss=0, delay=0.005, reorder=0, rate=0, duplicate=0, seed=None, "
                                       "config=None): the links of the test's tcpwave_network")
    config.stash[_SAVED] = []


@pytest.fixture
def tcpwave_network(request: pytest.FixtureRequest) -> Iterator["Network"]:
    """An in-memory network of tcpwave stacks (add hosts with .host(address)); its packets are saved as a
    pcap if the test fails."""
    from .network import Network

    marker = request.node.get_closest_marker("tcpwave")
    options = dict(marker.kwargs) if marker is not None else {}
    unknown = set(options) - _MARKER_OPTIONS
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.tcpwave: unknown option(s) {sorted(unknown)}")
    seed = request.config.getoption("tcpwave_seed")
    marker_seed = options.pop("seed", None)
    if seed is None:
        seed = marker_seed if marker_seed is not None else zlib.crc32(request.node.nodeid.encode())
    net = Network(seed, **options)
    request.node.stash.setdefault(_NETWORKS, []).append(net)
    yield net
    net.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    networks = item.stash.get(_NETWORKS, [])
    if report.when != "call" or not report.failed or not networks:
        return
    folder = _pcap_dir(item.config)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-150:]
    for i, net in enumerate(networks):
        path = folder / (f"{stem}.pcap" if len(networks) == 1 else f"{stem}-{i}.pcap")
        try:
            n = net.write_pcap(str(path))
        except OSError as e:
            line = f"tcpwave: could not save the pcap ({e})"
        else:
            line = (f"tcpwave: {n} packets saved to {path} (seed {net.seed}; replay with "
                    f"--tcpwave-seed {net.seed})")
        report.sections.append(("tcpwave", line))
        item.config.stash[_SAVED].append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    saved = terminalreporter.config.stash.get(_SAVED, [])
    if saved:
        terminalreporter.section("tcpwave")
        for line in saved:
            terminalreporter.write_line(line)


def _pcap_dir(config: pytest.Config) -> pathlib.Path:
    given = config.getoption("tcpwave_pcap_dir")
    folder = pathlib.Path(given) if given else config._tmp_path_factory.getbasetemp() / "tcpwave-pcaps"  # type: ignore[attr-defined]
    folder.mkdir(parents=True, exist_ok=True)
    return folder
