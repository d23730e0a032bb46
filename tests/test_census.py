"""The state census (issue 27, build 5): how many endpoints are in each state over time, for trace
(a line per second, a chart in the HTML report) and watch (--census live, --explain at the end)."""

import io
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from netns import needs_netns

from tcpwave.cli.main import main
from tcpwave.scenarios import SCENARIOS
from tcpwave.views import load
from tcpwave.views.census import census, census_line, census_lines, counts_at
from tcpwave.views.html import report
from tcpwave.views.live_census import CensusLive


def _state_at(events, host, t):
    state = None
    for e in events:
        if e["type"] == "state" and e["host"] == host and e["t"] <= t:
            state = e["to"]
    return state


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """backlog-full on the wire: two connections, one waiting for its SYN to be taken."""
    path = tmp_path_factory.mktemp("census") / "bf.pcap"
    assert main(["demo", "backlog-full", "--pcap", str(path), "--color", "never"]) == 0
    return str(path)


def test_census_counts_each_endpoints_inferred_state_per_second(capture):
    views, _ = load(capture)
    samples = census(views)
    assert [round(t - views[0].start, 3) for t, _ in samples][:5] == [1.0, 2.0, 3.0, 4.0, 5.0]
    for t, counts in samples:
        expected: dict[str, int] = {}
        for v in views:
            for host in (v.left, v.right):
                s = _state_at(v.events, host, t)
                if s not in (None, "CLOSED", "LISTEN"):
                    expected[s] = expected.get(s, 0) + 1
        assert counts == expected
    assert samples[0][1] == {"SYN_SENT": 1, "ESTABLISHED": 2}  # one SYN dropped, one connection unaccepted


def test_trace_prints_the_census_for_several_connections_and_on_request(capture, capsys):
    assert main(["trace", capture]) == 0
    out = capsys.readouterr().out
    views, _ = load(capture)
    lines = census_lines(census(views))
    assert "# state census" in out and "\n".join(lines) in out
    assert "SYN_SENT 1  ESTABLISHED 2  (total 3)" in out and "… the same until" in out
    assert main(["trace", capture, "--format", "census"]) == 0
    only = capsys.readouterr().out
    assert "# connection" not in only and only.splitlines()[1:] == lines


def test_the_html_report_of_several_connections_has_a_census_chart(capture):
    views, _ = load(capture)
    html = report(views, "census", plots=False)
    svg = html[html.index("<svg xmlns='http://www.w3.org/2000/svg' class='census'"):]
    root = ET.fromstring(svg[: svg.index("</svg>") + 6])
    bands = {p.get("data-state") for p in root.iter("{http://www.w3.org/2000/svg}polygon")}
    assert bands == {s for _, c in census(views) for s in c}
    one = report(views[:1], "one", plots=False)
    assert "class='census'" not in one  # one connection: its timeline says it all


def test_watch_census_prints_a_settled_line_each_second():
    packets = []
    SCENARIOS["backlog-full"].run(1, None, [lambda t, p: packets.append((t, bytes(p)))])
    now = [0.0]
    out = io.StringIO()
    live = CensusLive(out=out, clock=lambda: now[0])
    for t, p in packets:
        live.add(100.0 + t, p)
    now[0] = live.t0 + 3.2  # 3.2 s in: seconds 1 and 2 are settled, 3 is not yet
    assert live.redraw() is True
    views = live.views()
    assert out.getvalue().splitlines()[0].startswith("state census: endpoints in each state")
    assert out.getvalue().splitlines()[1:] == [census_line(float(k), counts_at(views, live.t0 + k)) for k in (1, 2)]
    now[0] = live.t0 + 3.7
    live.redraw(final=True)
    assert out.getvalue().splitlines()[3:] == [census_line(3.0, counts_at(views, live.t0 + 3)),
                                               census_line(3.7, counts_at(views, live.t0 + 3.7))]


PILE_UP = r"""
import socket, time
srv = socket.socket()
srv.bind(("127.0.0.1", 9000))
srv.listen()
kept = []
for _ in range(4):
    c = socket.create_connection(("127.0.0.1", 9000))
    kept.append(srv.accept()[0])  # the server never closes its side: CLOSE_WAIT piles up
    c.sendall(b"bye")
    c.close()
time.sleep(2.3)
"""


@needs_netns
@pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2")
def test_watch_census_shows_a_close_wait_pile_up_and_explain_follows(tmp_path):
    script = tmp_path / "pile.py"
    script.write_text(PILE_UP)
    r = subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "watch", "--census", "--explain", "--",
                        sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    census_out = [line for line in r.stdout.splitlines() if line.strip().endswith(")") and " s  " in line]
    assert any("CLOSE_WAIT 4" in line for line in census_out), r.stdout
    assert "|-" not in r.stdout.split("explained")[0]  # no live ladder with --census
    assert r.stdout.count(": explained") == 4 and "※ note:" in r.stdout
