"""The what-ifs that end abruptly (issue 27): close() with unread data, SO_LINGER 0, a full backlog,
a peer that rebooted. Each is checked here on its events, not only on the scenario's own checks."""

import pytest

from tcpwave.scenarios import SCENARIOS
from tcpwave.views.ladder import render_ladder


def _sends(events, host, flag):
    return [e for e in events if e["type"] == "send" and e["host"] == host and flag in e["flags"].split(",")]


def _states(events, host):
    return [(e["from"], e["to"]) for e in events if e["type"] == "state" and e["host"] == host]


@pytest.mark.parametrize("name", ["close-unread", "linger-zero", "backlog-full", "peer-reboot"])
def test_new_whatif_passes_its_own_checks(name):
    r = SCENARIOS[name].run(1, None, [])
    assert r.checks and r.ok, r.checks


def test_close_with_unread_data_sends_rst_and_the_peer_loses_the_rest_of_the_answer():
    r = SCENARIOS["close-unread"].run(1, None, [])
    rst = _sends(r.events, "server", "RST")
    assert rst and rst[0]["note"] == "CLOSE with unread data" and not _sends(r.events, "server", "FIN")
    written = sum(e["len"] for e in _sends(r.events, "server", "ACK") if e["t"] < rst[0]["t"])
    assert r.info["bytes client read"] < r.info["bytes written"]
    assert r.info["bytes client read"] <= written  # what reached the client was sent before the RST
    assert ("ESTABLISHED", "CLOSED") in _states(r.events, "client") and r.closed["client"] == "reset"


def test_linger_zero_aborts_with_a_rst_and_no_time_wait():
    r = SCENARIOS["linger-zero"].run(1, None, [])
    rst = [e for e in _sends(r.events, "client", "RST") if e.get("note") == "SO_LINGER 0 close()"]
    assert len(rst) == 1 and not _sends(r.events, "client", "FIN")
    assert all(to != "TIME_WAIT" for h in ("client", "server") for _, to in _states(r.events, h))
    assert r.closed == {"client": "aborted", "server": "reset"}
    assert r.info["bytes server read"] < r.info["bytes written"]


def test_a_full_backlog_drops_the_syn_silently_and_the_client_retries():
    r = SCENARIOS["backlog-full"].run(1, None, [])
    drops = [e for e in r.events if e["type"] == "drop" and e["host"] == "server" and e["reason"] == "backlog_full"]
    syns = [e for e in _sends(r.events, "client", "SYN") if e["src"].endswith(":40002")]
    answers = [e for e in _sends(r.events, "server", "SYN") if e["dst"].endswith(":40002")]
    assert len(drops) >= 2 and len(syns) == len(drops) + 1
    assert answers and all(a["t"] > d["t"] for a in answers for d in drops)  # no answer while full
    assert render_ladder(r.events).count("SYN,ACK seq=0 ack=1 ") == 2  # each connection from its own ISN


def test_a_rebooted_peer_answers_the_next_segment_with_rst():
    r = SCENARIOS["peer-reboot"].run(1, None, [])
    reboot = next(e["t"] for e in r.events if e["type"] == "handled" and e.get("what") == "reboot")
    after = [e for e in r.events if e["type"] == "send" and e["t"] > reboot]
    assert after[0]["host"] == "client" and after[0]["len"]  # nothing happens until the client writes
    assert "RST" in after[1]["flags"] and after[1]["host"] == "server"
    assert _states(r.events, "client")[-1] == ("ESTABLISHED", "CLOSED") and r.closed["client"] == "reset"
