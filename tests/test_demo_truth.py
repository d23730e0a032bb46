"""What `tcpwave demo` shows is what happened: every segment that arrives was drawn as sent, every
run a scenario makes is drawn, and every note under --explain is computed from the events it
explains (issue 27)."""

import subprocess

import pytest

from tcpwave.cli.main import main
from tcpwave.scenarios import SCENARIOS


def _key(e: dict) -> tuple:
    return (e["src"], e["dst"], e["flags"], e["seq"], e["ack"], e["len"])


def unsent_arrivals(events: list[dict]) -> list[dict]:
    """recv events with no send of the same segment at or before them."""
    sent: dict[tuple, int] = {}
    missing = []
    for e in events:
        if e["type"] == "send":
            sent[_key(e)] = sent.get(_key(e), 0) + 1
        elif e["type"] == "recv" and not sent.get(_key(e)):
            missing.append(e)
    return missing


def test_old_duplicate_draws_the_late_segment_as_sent_in_both_runs(tmp_path, capsys):
    r = SCENARIOS["old-duplicate"].run(1, None, [])
    runs = [events for _, events, _ in r.before] + [r.events]
    assert len(runs) == 2
    for events in runs:
        assert unsent_arrivals(events) == []
        late = [e for e in events if e["type"] == "send" and e.get("note", "").startswith("old copy of")]
        assert len(late) == 1 and late[0]["len"] == len(b"OLD DATA from the first connection")
    pcap, svg = tmp_path / "od.pcap", tmp_path / "od.svg"
    assert main(["demo", "old-duplicate", "--pcap", str(pcap), "--svg", str(svg), "--html",
                 str(tmp_path / "od.html"), "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "run 1 of 2: with TIME_WAIT (60 s)" in out and "run 2 of 2: without TIME_WAIT (2 ms)" in out
    assert out.count("(old copy of ") == 2  # one ladder per run, each with the late segment
    for n in (1, 2):
        assert "old copy of" in (tmp_path / f"od-{n}.svg").read_text()
    assert (tmp_path / "od.html").read_text().count("old copy of") >= 2
    dump = subprocess.run(["tcpdump", "-nr", str(pcap)], capture_output=True, text=True, check=True).stdout
    assert sum("length 34" in line for line in dump.splitlines()) == 2  # the original and the late copy


# ---------------------------------------------------------------- --explain notes, checked against the events
def _notes(name: str) -> tuple[list[dict], list[str]]:
    from tcpwave.views.explain import notes

    events = SCENARIOS[name].run(1, None, []).events
    return events, list(notes(events).values())


def _one(texts: list[str], start: str) -> str:
    found = [t for t in texts if start in t]
    assert len(found) == 1, (start, texts)
    return found[0]


def _state_t(events, host, frm, to) -> float:
    return next(e["t"] for e in events if e["type"] == "state" and e["host"] == host and e["from"] == frm
                and e["to"] == to)


def _sends(events, host, flags):
    return [e for e in events if e["type"] == "send" and e["host"] == host and e["flags"] == flags]


def _recvs(events, host, flags):
    return [e for e in events if e["type"] == "recv" and e["host"] == host and e["flags"] == flags]


def test_syn_rcvd_note_is_a_round_trip_of_the_run():
    events, texts = _notes("handshake")
    note = _one(texts, "SYN_RCVD lasted")
    lasted = _state_t(events, "server", "SYN_RCVD", "ESTABLISHED") - _state_t(events, "server", "LISTEN", "SYN_RCVD")
    out = _sends(events, "server", "SYN,ACK")[0]["t"]
    there = _recvs(events, "client", "SYN,ACK")[0]["t"] - out
    back = _recvs(events, "server", "ACK")[0]["t"] - _sends(events, "client", "ACK")[0]["t"]
    assert f"SYN_RCVD lasted {lasted * 1000:.3f} ms" in note and "one trip" not in note
    assert f"one round trip, the SYN,ACK took {there * 1000:.3f} ms to arrive and the ACK {back * 1000:.3f} ms" in note


def test_syn_rcvd_note_in_lost_syn_ack_names_the_answered_retransmission():
    events, texts = _notes("lost-syn-ack")
    note = _one(texts, "SYN_RCVD lasted")
    first, *again = _sends(events, "server", "SYN,ACK")
    assert any(e["type"] == "drop" and e.get("where") == "link" and e["t"] == first["t"] for e in events)
    ack = next(e for e in _sends(events, "client", "ACK") if e["t"] > again[0]["t"])
    assert f"the SYN,ACK sent at {first['t']:.6f} s was lost" in note
    assert f"until the SYN,ACK sent again at {again[0]['t']:.6f} s" in note
    assert f"answered, by the ACK sent at {ack['t']:.6f} s" in note and "one trip" not in note


def test_time_wait_note_says_the_configured_wait_and_what_happened():
    events, texts = _notes("no-time-wait")
    note = _one(texts, "TIME_WAIT waits")
    arm = next(e for e in events if e["type"] == "timer" and e.get("name") == "time_wait" and e["action"] == "arm")
    ended = _state_t(events, "client", "TIME_WAIT", "CLOSED")
    fin = next(e for e in events if e["type"] == "drop" and e.get("reason") == "no_socket")
    assert f"2×MSL, {arm['delay']:g} s in this run" in note and "60 s" not in note
    assert f"ended at {ended:.6f} s, before the peer's FIN came again at {fin['t']:.6f} s" in note
    _, texts = _notes("lost-final-ack")
    again = next(e for e in SCENARIOS["lost-final-ack"].run(1, None, []).events if e["type"] == "handled")
    assert f"the peer's FIN came again at {again['t']:.6f} s and was ACKed again" in _one(texts, "TIME_WAIT waits")


def _acks_of_fin(events, fin_sender):
    fin = next(e for e in events if e["type"] == "send" and e["host"] == fin_sender and "FIN" in e["flags"])
    end = (fin["seq"] + fin["len"] + 1) % 2**32
    return [e for e in events if e["type"] == "send" and e["host"] != fin_sender and e["ack"] == end]


@pytest.mark.parametrize("name,count", [("three-way-close", "Three"), ("handshake", "Four")])
def test_close_notes_count_the_segments_and_say_who_acked_what(name, count):
    events, texts = _notes(name)
    first_ack = _acks_of_fin(events, "client")[0]  # the server's ACK of the client's FIN: alone, or on its FIN
    rides = "FIN" in first_ack["flags"]
    assert (count == "Three") == rides  # the expected count follows from the events
    closed = _one(texts, "segments closed this connection")
    assert closed.startswith(f"{count} segments closed") or f". {count} segments closed" in closed
    close_wait = _one(texts, "the peer has finished sending")
    if rides:
        assert f"its own FIN at {first_ack['t']:.6f} s to carry the ACK" in close_wait
        assert "server sent its FIN with the ACK of client's FIN" in closed
    else:
        fin_in = next(e for e in events if e["type"] == "recv" and e["host"] == "server" and "FIN" in e["flags"])
        waited = first_ack["t"] - fin_in["t"]
        assert f"ACKed on its own at {first_ack['t']:.6f} s, {waited * 1000:.3f} ms after it arrived" in close_wait
        assert "server sent the ACK of client's FIN; server sent its FIN" in closed
    assert not any("four segments to close" in t for t in texts)


def test_first_ack_and_syn_notes_match_the_events():
    events, texts = _notes("handshake")
    ack = _one(texts, "this ACK answers")
    data = next(e for e in events if e["type"] == "recv" and e["len"])  # the first data, whoever sent it
    reply = next(e for e in _sends(events, data["host"], "ACK") if e["t"] >= data["t"])
    when = "at once" if reply["t"] == data["t"] else f"{(reply['t'] - data['t']) * 1000:.3f} ms later"
    assert f"the {data['len']} bytes that reached {data['host']} at {data['t']:.6f} s: {when}" in ack
    syn = _one(texts, "a SYN carries no data")
    syn_ack = _sends(events, "server", "SYN,ACK")[0]
    assert f"server's ACK of it, at {syn_ack['t']:.6f} s, reads ack=ISN+1" in syn


def test_trace_explain_of_a_capture_counts_the_close_it_shows(tmp_path, capsys):
    pcap = tmp_path / "twc.pcap"
    assert main(["demo", "three-way-close", "--pcap", str(pcap)]) == 0
    capsys.readouterr()
    assert main(["trace", str(pcap), "--explain", "--color", "never", "--width", "200"]) == 0
    out = capsys.readouterr().out
    assert "Three segments closed this connection" in out and "four segments to close" not in out


def test_explain_names_the_close_call_actually_made(capsys):
    assert main(["demo", "half-close", "--explain", "--color", "never", "--width", "200"]) == 0
    out = capsys.readouterr().out
    assert "client: shutdown(): a CLOSE of the sending direction only" in out  # the client half-closes
    assert "server: close(): a CLOSE" in out and "close() or shutdown()" not in out


def test_a_mistyped_demo_flag_prints_demos_usage_and_the_flag_meant(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["demo", "--explian"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: tcpwave demo ") and "--msl S" in err  # demo's usage, not the top-level one
    assert "unrecognized arguments: --explian (did you mean --explain?)" in err


def test_svg_help_names_all_three_files(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "FILE-timed.svg" in text and "FILE-states.svg" in text


def test_lossy_says_which_direction_each_hash_covers():
    r = SCENARIOS["lossy"].run(1, None, [])
    hashes = {k: v for k, v in r.info.items() if "SHA-256" in k}
    assert set(hashes) == {"SHA-256 of the client → server data", "SHA-256 of the server → client data"}
    assert all("(sent by the " in v and " = received by the " in v for v in hashes.values())


# ---------------------------------------------------------------- demo --drop/--delay/--dup
def _demo_events(tmp_path, *argv) -> tuple[str, list[dict]]:
    import json

    log = tmp_path / "run.jsonl"
    main(["demo", *argv, "--events", str(log), "--color", "never", "--width", "250"])
    return log.name, [json.loads(line) for line in log.read_text().splitlines()]


def test_dropping_the_handshakes_last_ack_shows_syn_rcvd_until_the_syn_ack_is_sent_again(tmp_path, capsys):
    _, events = _demo_events(tmp_path, "handshake", "--drop", "client:ACK#1", "--explain")
    out = capsys.readouterr().out
    assert "faults: drop client:ACK#1" in out and "[3] ACK seq=1 ack=1 win=32768 ---" in out and "lost (fault)" in out
    lost = [e for e in events if e["type"] == "drop" and e.get("where") == "link"]
    assert [(e["host"], e["flags"]) for e in lost] == [("client", "ACK")]  # only the handshake's ACK
    first, again = _sends(events, "server", "SYN,ACK")[:2]
    assert again.get("note", "").startswith("retransmission")
    entered = _state_t(events, "server", "LISTEN", "SYN_RCVD")
    left = _state_t(events, "server", "SYN_RCVD", "ESTABLISHED")
    answer = next(e for e in _sends(events, "client", "ACK") if e["t"] > again["t"])
    assert again["t"] < answer["t"] < left  # SYN_RCVD ended only once the SYN,ACK sent again was answered
    note = " ".join(out.split())
    assert f"SYN_RCVD lasted {(left - entered) * 1000:.3f} ms" in note
    assert (f"the SYN,ACK sent at {first['t']:.6f} s was answered by an ACK that was lost (sent at "
            f"{lost[0]['t']:.6f} s), so it lasted until the SYN,ACK sent again at {again['t']:.6f} s was answered, "
            f"by the ACK sent at {answer['t']:.6f} s") in note


def test_a_row_number_names_the_same_segment_and_delay_and_dup_act_on_it(tmp_path, capsys):
    _, by_row = _demo_events(tmp_path, "handshake", "--drop", "3")
    assert "faults: drop client:ACK#1" in capsys.readouterr().out
    _, by_name = _demo_events(tmp_path, "handshake", "--drop", "client:ACK#1")
    capsys.readouterr()
    assert by_row == by_name
    _, delayed = _demo_events(tmp_path, "handshake", "--delay", "server:FIN=0.5")
    out = capsys.readouterr().out
    fin = _sends(delayed, "server", "FIN,ACK")[0]
    arrivals = [e["t"] - fin["t"] for e in _recvs(delayed, "client", "FIN,ACK")]
    assert any(0.5 < dt < 0.6 for dt in arrivals) and "(delayed 0.5 s)" in out  # 10 ms + 0.5 s
    _, dup = _demo_events(tmp_path, "handshake", "--dup", "server:FIN")
    assert len(_recvs(dup, "client", "FIN,ACK")) == 2 and len(_sends(dup, "server", "FIN,ACK")) == 1


def test_a_bad_spec_is_refused_with_the_form_to_use(capsys):
    assert main(["demo", "handshake", "--drop", "client:ACK#"]) == 2
    assert "write HOST:FLAGS#N" in capsys.readouterr().err
    assert main(["demo", "handshake", "--drop", "99"]) == 2
    assert "there is no row 99" in capsys.readouterr().err
    assert main(["demo", "handshake", "--delay", "server:FIN"]) == 2
    assert "SPEC=SECONDS" in capsys.readouterr().err
    assert main(["demo", "handshake", "--drop", "router:SYN"]) == 2
    assert "no host 'router'" in capsys.readouterr().err
