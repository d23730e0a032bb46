"""`tcpwave lab` (issue 27, build 2): the page served on 127.0.0.1, driven in headless Chromium with
the mouse and with the keyboard only; its query validated (400 and one line, never a traceback);
its exports; one line on Ctrl-C and SIGTERM; and the segment names it puts on the ladder naming the
very segments the simulator's faults hit."""

import contextlib
import json
import os
import pathlib
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from xml.sax.saxutils import escape

import pytest
from browser import chromium

from tcpwave.cli.lab_runs import LabError, Query, Runs, parse, segment_names, simulate
from tcpwave.views.svg import ladder_steps

WAIT = 60  # seconds: generous, for a loaded 2-CPU machine


@contextlib.contextmanager
def lab(*args: str, env: dict | None = None):
    """`tcpwave lab ARGS` in a subprocess: (process, its URL). Stopped with SIGTERM after."""
    proc = subprocess.Popen([sys.executable, "-m", "tcpwave.cli.main", "lab", *(args or ["--no-browser"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], WAIT)
        line = proc.stdout.readline() if ready else ""
        m = re.fullmatch(r"tcpwave lab: (http://127\.0\.0\.1:\d+/)  \(Ctrl-C to stop\)\n", line)
        assert m, (line, proc.poll())
        yield proc, m[1]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=WAIT)
        proc.stdout.close()
        proc.stderr.close()


@contextlib.contextmanager
def browsing():
    browser, profile = chromium()
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _until(browser, what, cond):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT).until(lambda b: cond(b), message=what)


def _ladder(browser) -> list[str]:
    """The rows of the (first) ladder, as the page shows them."""
    from selenium.webdriver.common.by import By

    return [" ".join(g.get_attribute("textContent").split()) for g in
            browser.find_elements(By.CSS_SELECTOR, "section.conn svg.ladder:not(.timed) g.step")]


def _now(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, "section.conn .now").text


def _states(browser) -> tuple[str, str]:
    from selenium.webdriver.common.by import By

    return tuple(browser.find_element(By.CSS_SELECTOR, f"section.conn .cur-{i}").text for i in (0, 1))


def test_lab_drop_the_handshakes_last_ack_and_see_syn_rcvd_wait_for_the_retransmitted_syn_ack():
    from selenium.webdriver.common.by import By

    with lab() as (_, url), browsing() as browser:
        browser.get(url)
        plain = _ladder(browser)
        assert any("SYN,ACK" in row for row in plain) and not any("(lost)" in row for row in plain)
        browser.find_element(By.CSS_SELECTOR, "section.conn button.last").click()  # step to the end
        steps = len(plain)
        assert _now(browser).startswith(f"step {steps}/{steps} ")
        assert _states(browser) == ("CLOSED", "CLOSED")
        # the handshake's last ACK: the client's first segment after the server's SYN,ACK
        segs = browser.find_elements(By.CSS_SELECTOR, "section.conn svg.ladder:not(.timed) g.step.seg")
        labels = [" ".join(g.get_attribute("textContent").split()) for g in segs]  # "t label"
        k = next(i for i, t in enumerate(labels) if "SYN,ACK" in t) + 1
        assert labels[k].split(" ", 1)[1].startswith("ACK seq=1 ack=1")
        assert segs[k].get_attribute("aria-label").startswith("client:")
        segs[k].click()
        _until(browser, "the rerun", lambda b: "drop=client%3AACK%231" in b.current_url
               and any("(lost) ACK seq=1 ack=1" in row for row in _ladder(b)))
        rerun = _ladder(browser)
        lost = next(i for i, row in enumerate(rerun) if "(lost)" in row)
        rtx = next(i for i, row in enumerate(rerun) if "(rtx) SYN,ACK" in row)
        established = next(i for i, row in enumerate(rerun) if "SYN_RCVD → ESTABLISHED" in row)
        assert lost < rtx < established  # the server stays in SYN_RCVD until its SYN,ACK is sent again
        assert "lost on the wire" in browser.find_element(By.CSS_SELECTOR, "section.conn .explain").text
        nxt = browser.find_element(By.CSS_SELECTOR, "section.conn button.next")
        while not _now(browser).startswith(f"step {rtx + 1}/"):
            nxt.click()
        assert "(rtx) SYN,ACK" in _now(browser) and _states(browser) == ("ESTABLISHED", "SYN_RCVD")
        nxt.click()
        # the state diagram outlines where each endpoint is
        here = browser.find_elements(By.CSS_SELECTOR, "svg.states g.state.here-1")
        assert [g.get_attribute("id") for g in here] == ["state-SYN_RCVD"]
        share = browser.find_element(By.CSS_SELECTOR, "a.share").get_attribute("href")
        assert share == browser.current_url
        browser.get("about:blank")
        browser.get(share)  # the shared URL, in a fresh page: the same run
        assert _ladder(browser) == rerun
        assert browser.find_element(By.CSS_SELECTOR, "ul.faults").text.startswith("drop client:ACK#1")
        browser.find_element(By.CSS_SELECTOR, "button.clear").click()
        _until(browser, "no faults", lambda b: "drop=" not in b.current_url and _ladder(b) == plain)
        browser.find_element(By.CSS_SELECTOR, "input[name=action][value=delay]").click()
        browser.find_element(By.CSS_SELECTOR, "g.step.seg[aria-label^='client:SYN#1']").click()
        _until(browser, "the SYN delayed", lambda b: "delay=client%3ASYN%231%3D0.5" in b.current_url)
        assert "client's segment on the wire: delayed 0.5 s" in browser.find_element(By.CSS_SELECTOR, ".explain").text
        assert _ladder(browser)[3].startswith("0.510005 ")  # the server's SYN_RCVD, half a second later


def test_lab_by_keyboard_only():
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def focused() -> str:
        return browser.switch_to.active_element.get_attribute("aria-label") or ""

    def press(key) -> None:
        ActionChains(browser).send_keys(key).perform()

    with lab() as (_, url), browsing() as browser:
        browser.get(url + "?scenario=handshake")
        for _ in range(60):  # Tab through the form and the controls to the first segment
            press(Keys.TAB)
            if focused().startswith("client:SYN#1"):
                break
        assert focused().startswith("client:SYN#1") and "SYN" in _now(browser)  # the step follows the focus
        for _ in range(10):  # → steps, and the focus follows onto the next segments
            if focused().startswith("client:ACK#1"):
                break
            press(Keys.ARROW_RIGHT)
        assert focused().startswith("client:ACK#1") and _now(browser).startswith("step ")
        assert "client: ACK seq=1 ack=1" in _now(browser)
        press(Keys.ENTER)  # drop it (the action chosen by default)
        _until(browser, "the rerun", lambda b: "drop=client%3AACK%231" in b.current_url and "(drop" in focused())
        assert any("(rtx) SYN,ACK" in row for row in _ladder(browser))
        press(Keys.SPACE)  # the same action again takes the fault off
        _until(browser, "the fault off", lambda b: "drop=" not in b.current_url and focused().startswith("client:ACK#1")
               and "(drop" not in focused())
        assert not any("(rtx)" in row for row in _ladder(browser))
        press(Keys.ARROW_LEFT)  # back over the client's state change (the focus stays on its segment)...
        assert "SYN_SENT → ESTABLISHED" in _now(browser) and focused().startswith("client:ACK#1")
        press(Keys.ARROW_LEFT)  # ...to the SYN,ACK
        assert "server: SYN,ACK" in _now(browser) and focused().startswith("server:SYN,ACK#1")
        # a knob by keyboard: Shift-Tab back to the form, Space toggles delayed ACK off
        box = browser.find_element(By.CSS_SELECTOR, "input[name=delayed_ack]")
        for _ in range(80):
            if browser.switch_to.active_element == box:
                break
            ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        press(Keys.SPACE)
        _until(browser, "delayed ACK off", lambda b: "delayed_ack=off" in b.current_url)


def _get(url: str, host: str | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def test_lab_answers_bad_queries_with_400_and_why_and_exports_the_run():
    with lab() as (proc, url):
        for query, why in (("scenario=nope", b"no scenario 'nope'"), ("scenario=lossy", b"too long for the lab"),
                           ("drop=client:XYZ", b"unknown flag 'XYZ'"), ("drop=mallory:ACK", b"no host 'mallory'"),
                           ("delay=client:ACK%231=1e9", b"0 < SECONDS <= 60"), ("msl=nan", b"msl 'nan'"),
                           ("seed=-3", b"seed '-3'"), ("seed=1&seed=2", b"seed is given twice"),
                           ("time_wait=maybe", b"on or off"), ("evil=1", b"unknown query word 'evil'"),
                           ("profile=plan9", b"known: linux, freebsd, rfc"), ("drop=" + "%23" * 100, b"longer than"),
                           ("&".join(["drop=client:ACK"] * 13), b"at most 12")):
            status, kind, body = _get(f"{url}run?{query}")
            assert (status, kind) == (400, "application/json") and why in json.loads(body)["error"].encode(), query
            status, kind, body = _get(f"{url}?{query}")  # the page says it too, over the default run
            assert status == 400 and escape(why.decode()).encode() in body and b"section class='conn'" in body
            status, kind, body = _get(f"{url}export/x.svg?{query}")
            assert (status, kind) == (400, "text/plain") and why in body
        assert _get(url, host="lab.example.com")[0] == 400  # another name pointing here (DNS rebinding)
        assert _get(url + "nothing")[0] == 404
        drop = "scenario=lost-fin&drop=server:ACK%231"
        status, kind, pcap = _get(f"{url}export/tcpwave.pcapng?{drop}")
        assert status == 200 and pcap[:4] == b"\x0a\x0d\x0d\x0a"  # a pcapng section header
        status, kind, svg = _get(f"{url}export/tcpwave.svg?{drop}")
        assert kind == "image/svg+xml" and svg.startswith(b"<svg") and b"(lost) ACK" in svg
        assert b"<svg" in _get(f"{url}export/tcpwave-states.svg?{drop}")[2]
        status, kind, html = _get(f"{url}export/tcpwave.html?{drop}")
        assert kind.startswith("text/html") and b"drop server:ACK#1" in html and b"section class='conn'" in html
        assert _get(f"{url}run?{drop}")[2] == _get(f"{url}run?{drop}")[2]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 0
        assert proc.stderr.read() == "tcpwave lab: stopped\n"  # no request left a traceback either


def test_lab_ctrl_c_stops_it_with_one_line():
    with lab() as (proc, _):
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=WAIT) == 0
        assert proc.stderr.read() == "tcpwave lab: stopped\n"
        assert time.monotonic() - start < WAIT


@pytest.mark.parametrize("scenario", ["handshake", "simultaneous-open", "lost-syn-ack"])
def test_every_segment_name_on_the_ladder_drops_that_very_segment(scenario):
    """The page names each segment HOST:FLAGS#N; dropping by that name loses the segment on that row
    (a lone SYN counts every segment carrying SYN, as faults.parse reads it)."""
    runs = Runs()
    plain = simulate(parse(f"scenario={scenario}", runs.offered))
    names = plain.names[-1]
    lost = sum(r.get("lost", False) for r in ladder_steps(plain.views[-1].events, "client", "server"))
    assert sum(1 for n in names if n) == sum(1 for e in plain.views[-1].events if e["type"] == "send")
    for k, name in enumerate(names):
        if name is None:
            continue
        run = simulate(Query(scenario, faults=(("drop", name),)))
        rows = ladder_steps(run.views[-1].events, "client", "server")
        assert rows[k]["lost"] and segment_names(run.views[-1].events)[k] == name, (k, name)
        assert sum(r.get("lost", False) for r in rows) == lost + 1  # (lost-syn-ack loses one of its own)


def test_a_query_reads_back_the_same():
    offered = Runs().offered
    q = parse("scenario=half-close&seed=7&drop=client:FIN&delay=server:ACK%232=0.25&msl=5&nagle=off&timestamps=0",
              offered)
    assert q.text() == ("scenario=half-close&seed=7&drop=client%3AFIN&delay=server%3AACK%232%3D0.25&msl=5&"
                        "nagle=off&timestamps=off")
    assert parse(q.text(), offered) == q
    config = q.config()
    assert config is not None and (config.msl, config.nodelay, config.timestamps) == (5.0, True, False)
    assert parse("time_wait=off", offered).config().msl == 0.001
    # a stack profile, and the switches on top of it
    freebsd = parse("profile=freebsd&timestamps=off", offered)
    assert parse(freebsd.text(), offered) == freebsd
    config = freebsd.config()
    assert config is not None and config.closing_resends_fin and not config.timestamps
    with pytest.raises(LabError):
        parse("profile=plan9", offered)
    with pytest.raises(LabError):
        parse("scenario=half-close&scenario=handshake", offered)


def test_readme_lab_url_is_the_query_the_lab_writes():
    """The README's sample URL is what the page's address bar shows for that run."""
    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    sample = re.search(r"## `tcpwave lab`.*?\n```\nhttp://127\.0\.0\.1:PORT/\?(\S+)\n```", text, re.S)
    q = Query("handshake", faults=(("drop", "client:ACK#1"),))
    assert sample and sample[1] == q.text() and parse(sample[1], Runs().offered) == q


def test_lab_opens_the_browser_there_is(tmp_path):
    """Without --no-browser the page is handed to the browser ($BROWSER here: a script that notes the
    URL it was given)."""
    seen = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f"#!/bin/sh\necho \"$1\" > {seen}\n")
    browser.chmod(0o755)
    with lab("--port", "0", env={**os.environ, "BROWSER": str(browser)}) as (_, url):
        deadline = time.monotonic() + WAIT
        while not (seen.exists() and seen.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen.read_text() == url + "\n"


def test_lab_serves_a_bounded_number_of_connections_at_once():
    """MAX_CLIENTS idle connections hold every slot: the next request is told 503 at once; when they
    close, the lab answers again."""
    import socket

    from tcpwave.cli.lab import MAX_CLIENTS

    def ask(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
            s.sendall(b"GET /favicon.ico HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(100)

    with lab() as (_, url):
        port = int(url.rsplit(":", 1)[1].strip("/"))
        idle = [socket.create_connection(("127.0.0.1", port), timeout=WAIT) for _ in range(MAX_CLIENTS)]
        try:
            assert ask(port).startswith(b"HTTP/1.0 503 ")
        finally:
            for s in idle:
                s.close()
        deadline = time.monotonic() + WAIT
        while not (answer := ask(port)).startswith(b"HTTP/1.0 204 ") and time.monotonic() < deadline:
            pass
        assert answer.startswith(b"HTTP/1.0 204 ")
