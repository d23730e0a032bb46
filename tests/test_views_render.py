"""Views as files: SVG ladder and state diagram, PNG plots, the HTML report (stepped through in
headless Chromium), and the --html/--svg/--png options of demo and trace."""

import contextlib
import os
import pathlib
import shutil
import xml.etree.ElementTree as ET

import pytest
from browser import chromium

from tcpwave.cli.main import main
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.scenarios import SCENARIOS, run_lossy
from tcpwave.views import infer_connections
from tcpwave.views.html import report, step_states
from tcpwave.views.infer import ConnectionView
from tcpwave.views.svg import ladder_steps, ladder_svg, state_svg

GOLDEN = pathlib.Path(__file__).parent / "golden"
SVG = "{http://www.w3.org/2000/svg}"


def demo(name: str, seed: int = 1):
    sink, packets = ListSink(), []
    result = SCENARIOS[name].run(seed, Tracer(sink), [lambda t, p: packets.append((t, bytes(p)))])
    view = ConnectionView("client", "server", list(sink), 0.0, result.end_time)
    return view, packets


# ------------------------------------------------------------------ SVG
def test_ladder_svg_has_one_row_per_segment_and_state_change_and_marks_losses():
    view, _ = demo("lost-final-ack")
    root = ET.fromstring(ladder_svg(view.events, "client", "server"))
    rows = root.findall(f".//{SVG}g[@class='step']")
    sends = [e for e in view.events if e["type"] == "send"]
    states = [e for e in view.events if e["type"] == "state"]
    drops = [e for e in view.events if e["type"] == "drop" and e.get("where") != "link"]  # noted by the receiver
    handled = [e for e in view.events if e["type"] == "handled"]  # the FIN again in TIME_WAIT, re-ACKed
    assert len(handled) == 1 and len(rows) == len(sends) + len(states) + len(drops) + len(handled)
    notes = [t.text for t in root.iter(f"{SVG}text") if t.get("fill") == "#2e7d32"]
    assert notes == ["retransmitted FIN: re-ACKed, 2×MSL restarted"]
    arrows = root.findall(f".//{SVG}line[@class='arrow']")
    lost = [e for e in view.events if e["type"] == "drop" and e.get("where") == "link"]
    assert lost and len(arrows) == len(sends) - len(lost)  # a lost segment ends in an X, not an arrowhead
    texts = "".join(root.itertext())
    assert "(lost)" in texts and "TIME_WAIT → CLOSED" in texts and "(rtx)" in texts


def test_state_svg_highlights_exactly_the_transitions_taken():
    view, _ = demo("simultaneous-close")
    root = ET.fromstring(state_svg(view.events, ["client", "server"]))
    bold = {g.get("id") for g in root.findall(f".//{SVG}g") if g.get("class", "").startswith("edge")
            and g.find(f"{SVG}path").get("stroke-width") == "3"}
    marked = {g.get("id") for g in root.findall(f".//{SVG}g[@class='edge taken']")}
    assert marked == bold  # the report's script finds them by class
    assert "edge-FIN_WAIT_1-CLOSING" in bold and "edge-CLOSING-TIME_WAIT" in bold
    assert "edge-CLOSE_WAIT-LAST_ACK" not in bold and "edge-FIN_WAIT_1-FIN_WAIT_2" not in bold
    taken = {(e["from"], e["to"]) for e in view.events if e["type"] == "state"}
    assert len(bold) == len(taken)
    filled = {g.get("id") for g in root.findall(f".//{SVG}g") if g.get("class", "").startswith("state")
              and g.find(f"{SVG}rect").get("fill") != "#ffffff"}
    assert filled == {g.get("id") for g in root.findall(f".//{SVG}g[@class='state seen']")}
    assert root.find(f".//{SVG}text[@class='legend-both']").text == "━ both endpoints"
    assert "state-CLOSING" in filled and "state-CLOSE_WAIT" not in filled
    assert "state-CLOSED_END" in filled  # TIME_WAIT → CLOSED ends at the lower CLOSED


@pytest.mark.parametrize("name", ["handshake", "simultaneous-close", "lost-final-ack"])
def test_golden_svg(name):
    view, _ = demo(name)
    for ext, text in (("ladder.svg", ladder_svg(view.events, "client", "server", name)),
                      ("states.svg", state_svg(view.events, ["client", "server"], name))):
        path = GOLDEN / f"{name}.{ext}"
        if os.environ.get("TCPWAVE_UPDATE_GOLDEN"):
            path.write_text(text)
        assert path.read_text() == text, f"{path.name} changed; rerun with TCPWAVE_UPDATE_GOLDEN=1 if intended"


# ------------------------------------------------------------------ PNG plots
def _png_size(path) -> tuple[int, int]:
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plots_from_an_event_log_have_every_series(tmp_path):
    from tcpwave.views.plots import cc_plots, time_sequence

    events = run_lossy(3, size=300_000, loss=0.03).events
    seq = time_sequence(events, "client", "server", tmp_path / "seq.png")
    assert seq == ["segments", "retransmissions", "ACK", "receive window", "SACK blocks"]
    cc = cc_plots(events, "client", tmp_path / "cc.png")
    assert [s for s in cc if not s.startswith("loss found")][:6] == [
        "cwnd", "ssthresh", "recovery periods", "RTT sample", "SRTT", "RTO"]
    assert "loss found by rack" in cc  # 3% loss with SACK: RACK finds them
    assert _png_size(tmp_path / "seq.png")[0] >= 800 and _png_size(tmp_path / "cc.png")[1] >= 600


def test_plots_from_a_capture_estimate_flight_and_rtt(tmp_path):
    from tcpwave.views.plots import capture_rtt_samples, cc_plots, time_sequence

    packets: list = []
    run_lossy(3, None, [lambda t, p: packets.append((t, bytes(p)))], size=200_000, loss=0.0)
    view = infer_connections(packets)[0][0]
    client = view.left
    assert time_sequence(view.events, view.left, view.right, tmp_path / "s.png", client)[:1] == ["segments"]
    assert "receive window" in time_sequence(view.events, view.left, view.right, tmp_path / "s.png", client)
    assert cc_plots(view.events, client, tmp_path / "c.png") == ["bytes in flight", "RTT sample"]
    samples = capture_rtt_samples(view.events, client)
    # the demo taps see each packet as it is sent, so data to the ACK it draws is one way: 10 ms + queueing
    assert samples and all(0.0099 < rtt < 0.2 for _, rtt in samples)


# ------------------------------------------------------------------ HTML
def test_step_states_follow_the_state_changes():
    view, _ = demo("simultaneous-close")
    steps = step_states(view)
    assert steps["initial"]["states"] == ["CLOSED", "CLOSED"]
    rows = ladder_steps(view.events, "client", "server")
    assert len(steps["rows"]) == len(rows)
    seen = [tuple(r["states"]) for r in steps["rows"]]
    assert ("CLOSING", "CLOSING") in seen
    assert steps["rows"][-1]["nodes"] == ["CLOSED_END", "CLOSED_END"]


def test_report_is_self_contained():
    view, _ = demo("handshake")
    html = report([view], "handshake")
    assert "<script" in html and "<svg" in html and "data:image/png;base64," in html
    for remote in ("http://", "https://", "src='//"):
        assert remote not in html.replace("http://www.w3.org/2000/svg", "")


@contextlib.contextmanager
def _demo_report(tmp_path, scenario: str):
    """The demo's HTML report open in headless Chromium: (browser, the first connection's section)."""
    from selenium.webdriver.common.by import By

    out = tmp_path / f"{scenario}.html"
    assert main(["demo", scenario, "--html", str(out)]) == 0
    browser, profile = chromium()
    try:
        browser.get(out.as_uri())
        yield browser, browser.find_element(By.CSS_SELECTOR, "section.conn")
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_html_report_steps_through_closing_in_headless_chromium(tmp_path):
    from selenium.webdriver.common.by import By

    with _demo_report(tmp_path, "simultaneous-close") as (browser, sec):
        cur = [sec.find_element(By.CSS_SELECTOR, f".cur-{i}") for i in (0, 1)]
        assert [c.text for c in cur] == ["CLOSED", "CLOSED"]
        ladder, states = (sec.find_element(By.CSS_SELECTOR, f"svg.{c}").rect for c in ("ladder", "states"))
        assert states["x"] >= ladder["x"] + ladder["width"] - 1 and states["y"] < ladder["y"] + 100  # side by side

        def stroke(edge):
            path = sec.find_element(By.CSS_SELECTOR, f"svg.states #{edge} path")
            return browser.execute_script("return getComputedStyle(arguments[0]).strokeWidth", path)

        assert stroke("edge-FIN_WAIT_1-CLOSING") == "1px"  # not reached yet: drawn plain
        seen = [(cur[0].text, cur[1].text)]
        for _ in range(60):
            sec.find_element(By.CSS_SELECTOR, "button.next").click()
            now = (cur[0].text, cur[1].text)
            if now != seen[-1]:
                seen.append(now)
            if "CLOSING" in now:
                break
        assert len(seen) > 2 and "CLOSING" in seen[-1]  # stepping forward changed the states, up to CLOSING
        assert stroke("edge-FIN_WAIT_1-CLOSING") == "3px" and stroke("edge-CLOSING-TIME_WAIT") == "1px"
        here = browser.find_elements(By.CSS_SELECTOR, "svg.states g.state.here-0, svg.states g.state.here-1")
        assert "state-CLOSING" in {g.get_attribute("id") for g in here}
        current = browser.find_elements(By.CSS_SELECTOR, "svg.ladder:not(.timed) g.step.current")
        assert len(current) == 1
        sec.find_element(By.CSS_SELECTOR, "button.prev").click()
        assert browser.find_elements(By.CSS_SELECTOR, "svg.ladder:not(.timed) g.step.current") != current
        shot = tmp_path / "shot.png"
        browser.save_screenshot(str(shot))
    from PIL import Image

    with Image.open(shot) as img:
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50  # not blank: text, arrows, coloured states
    assert max(n for n, _ in colors) < 0.97 * sum(n for n, _ in colors)


def test_state_diagram_colours_a_transition_by_the_endpoints_that_took_it_so_far(tmp_path):
    """Issue 27, defect 4: in a simultaneous close, while only one endpoint has gone ESTABLISHED →
    FIN_WAIT_1 (or FIN_WAIT_1 → CLOSING), that edge is drawn in its colour, not as "both endpoints";
    once the other has taken it too, it turns purple; stepping back undoes it."""
    from selenium.webdriver.common.by import By

    client, server, both = "rgb(31, 119, 180)", "rgb(214, 39, 40)", "rgb(148, 103, 189)"
    with _demo_report(tmp_path, "simultaneous-close") as (browser, sec):
        cur = [sec.find_element(By.CSS_SELECTOR, f".cur-{i}") for i in (0, 1)]

        def stroke(edge):
            path = sec.find_element(By.CSS_SELECTOR, f"svg.states #{edge} path")
            return browser.execute_script("return getComputedStyle(arguments[0]).stroke", path)

        seen = {}  # (client's state, server's state) -> the two edges' colours then
        for _ in range(40):
            sec.find_element(By.CSS_SELECTOR, "button.next").click()
            now = (cur[0].text, cur[1].text)
            seen.setdefault(now, (stroke("edge-ESTABLISHED-FIN_WAIT_1"), stroke("edge-FIN_WAIT_1-CLOSING")))
            if now == ("TIME_WAIT", "TIME_WAIT"):
                break
        assert seen[("FIN_WAIT_1", "ESTABLISHED")][0] == client  # only the client has closed
        assert seen[("FIN_WAIT_1", "FIN_WAIT_1")][0] == both
        assert seen[("FIN_WAIT_1", "CLOSING")] == (both, server)  # only the server is in CLOSING
        assert seen[("CLOSING", "CLOSING")] == (both, both)
        while (cur[0].text, cur[1].text) != ("FIN_WAIT_1", "ESTABLISHED"):
            sec.find_element(By.CSS_SELECTOR, "button.prev").click()
        plain = "rgb(187, 187, 187)"  # not reached yet
        assert (stroke("edge-ESTABLISHED-FIN_WAIT_1"), stroke("edge-FIN_WAIT_1-CLOSING")) == (client, plain)


def test_time_scaled_ladder_shows_the_fins_of_a_simultaneous_close_crossing(tmp_path):
    from selenium.webdriver.common.by import By

    with _demo_report(tmp_path, "simultaneous-close") as (browser, sec):
        timed = sec.find_element(By.CSS_SELECTOR, "svg.ladder.timed")
        assert not timed.is_displayed()
        sec.find_element(By.CSS_SELECTOR, "input.timed").click()
        assert timed.is_displayed() and not sec.find_element(By.CSS_SELECTOR, "svg.ladder:not(.timed)").is_displayed()
        sec.find_element(By.CSS_SELECTOR, "button.last").click()
        assert len(timed.find_elements(By.CSS_SELECTOR, "g.step.current")) == 1  # stepping drives it too
        fins = []
        for g in timed.find_elements(By.CSS_SELECTOR, "g.step"):
            label = " ".join(t.get_attribute("textContent") for t in g.find_elements(By.CSS_SELECTOR, "text"))
            lines = g.find_elements(By.CSS_SELECTOR, "line.arrow")
            if "FIN,ACK" in label and lines:
                fins.append([float(lines[0].get_attribute(a)) for a in ("x1", "y1", "x2", "y2")])
        assert len(fins) == 2
        (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = fins
        assert ax1 == bx2 and ax2 == bx1  # opposite directions
        assert (ay1 - by2) * (ay2 - by1) < 0  # one is above the other at one lifeline, below at the other
        assert ay2 > ay1 and by2 > by1  # each slopes down: it arrives after it was sent


def test_html_report_of_the_lossy_demo_pages_and_steps_to_the_end_and_back(tmp_path):
    """Thousands of ladder rows: shown a page at a time, each step touches only the rows it changes,
    and stepping reaches the last segment and comes back."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with _demo_report(tmp_path, "lossy") as (browser, sec):
        svg = sec.find_element(By.CSS_SELECTOR, "svg.ladder")
        n = len(sec.find_elements(By.CSS_SELECTOR, "svg.ladder:not(.timed) g.step"))
        assert n > 1000
        full = int(svg.get_attribute("data-top")) + int(svg.get_attribute("data-row")) * (n + 1)
        assert int(svg.get_attribute("height")) < 3000 < full  # one page, not a 60,000-pixel ladder
        label = sec.find_element(By.CSS_SELECTOR, ".pglabel")
        assert label.text.startswith("rows 1–100 of ")
        now = sec.find_element(By.CSS_SELECTOR, ".now")
        nxt = sec.find_element(By.CSS_SELECTOR, "button.next")
        nxt.click()
        changes = browser.execute_script("""
            var calls = 0, proto = DOMTokenList.prototype, saved = {};
            ['add', 'remove', 'toggle'].forEach(function (f) {
              saved[f] = proto[f];
              proto[f] = function () { calls++; return saved[f].apply(this, arguments); };
            });
            try { arguments[1].click(); } finally { for (var f in saved) proto[f] = saved[f]; }
            return calls;""", svg, nxt)
        assert changes <= 24, changes  # a step touches a row or two per ladder and the states, not every row
        assert now.text.startswith("step 2/")
        sec.find_element(By.CSS_SELECTOR, "button.last").click()
        assert now.text.startswith(f"step {n}/{n} ")
        pages = -(-n // 100)
        assert label.text.endswith(f"(page {pages}/{pages})")
        inside = browser.execute_script("""
            var r = arguments[0].querySelector('g.step.current').getBoundingClientRect();
            var s = arguments[0].getBoundingClientRect();
            return r.height > 0 && r.top >= s.top - 1 && r.bottom <= s.bottom + 1;""", svg)
        assert inside  # the last segment is on the page shown
        sec.find_element(By.CSS_SELECTOR, "button.prev").click()
        assert now.text.startswith(f"step {n - 1}/{n} ")
        sec.find_element(By.CSS_SELECTOR, "button.first").click()
        assert now.text == "before the first segment" and label.text.endswith(f"(page 1/{pages})")
        assert not sec.find_elements(By.CSS_SELECTOR, "svg.ladder g.step:not(.future)")
        Select(sec.find_element(By.CSS_SELECTOR, ".pager select")).select_by_value("0")
        assert int(svg.get_attribute("height")) == int(svg.get_dom_attribute("viewBox").split()[3]) >= full - 30


# ------------------------------------------------------------------ CLI
def test_demo_and_trace_write_svg_png_and_html(tmp_path, capsys):
    pcapng = tmp_path / "d.pcapng"
    assert main(["demo", "lost-final-ack", "--pcapng", str(pcapng), "--svg", str(tmp_path / "d.svg"),
                 "--png", str(tmp_path / "d")]) == 0
    for name in ("d.svg", "d-timed.svg", "d-states.svg"):
        ET.parse(tmp_path / name)
    # a 4-byte exchange is too small to plot: skipped with the reason
    assert not (tmp_path / "d-seq.png").exists() and not (tmp_path / "d-cc.png").exists()
    assert "1 data segment (4 bytes) from client are too few to plot" in capsys.readouterr().err
    assert main(["demo", "lossy", "--png", str(tmp_path / "l")]) == 0
    for name in ("l-seq.png", "l-cc.png"):
        assert _png_size(tmp_path / name)[0] > 0
    assert main(["trace", str(pcapng), "--html", str(tmp_path / "t.html"), "--svg", str(tmp_path / "t.svg")]) == 0
    html = (tmp_path / "t.html").read_text()
    assert "section class='conn'" in html and "TIME_WAIT" in html
    assert (tmp_path / "t-states.svg").exists()
    err = capsys.readouterr().err
    assert "wrote" in err and str(tmp_path / "t.html") in err
