"""The explanations textbooks skip (issue 27, build 4), each checked against the events of the run
it explains: why every segment after the SYN carries ACK, three segments to open, what a RST
means, 2×MSL and the MSLs of RFC 9293 and Linux, ss's spellings, and the jargon's glosses."""

import re

from tcpwave.cli.main import main
from tcpwave.scenarios import SCENARIOS
from tcpwave.views.ladder import render_ladder
from tcpwave.wire.seq import seq_diff


def _explained(name: str, seed: int = 1) -> tuple[list[dict], str]:
    r = SCENARIOS[name].run(seed, None, [])
    return r.events, " ".join(render_ladder(r.events, explain=True).split())


def _sends(events, host=None):
    return [e for e in events if e["type"] == "send" and (host is None or e["host"] == host)]


def test_every_segment_after_the_syn_carries_ack_counted_from_the_run():
    events, text = _explained("linger-zero")
    syn_in = {e["host"]: e["t"] for e in reversed(events) if e["type"] == "recv" and "SYN" in e["flags"]}
    after = [e for e in _sends(events) if e["host"] in syn_in and e["t"] >= syn_in[e["host"]]]
    without = [e for e in after if "ACK" not in e["flags"].split(",")]
    assert without and all("RST" in e["flags"] for e in without)
    assert (f"of the {len(after)} segments sent after each side had the other's SYN, {len(after) - len(without)} "
            f"carry it") in text
    assert f"the {len(without)} without it are RSTs" in text


def test_three_segments_open_each_isn_acknowledged_with_the_times_of_the_run():
    events, text = _explained("handshake")
    syn = next(e for e in _sends(events, "client") if e["flags"] == "SYN")
    syn_ack = next(e for e in _sends(events, "server") if e["ack"] == syn["seq"] + 1)
    ack = next(e for e in _sends(events, "client") if "ACK" in e["flags"] and e["ack"] == syn_ack["seq"] + 1)
    assert (f"Three segments opened this connection: each side's ISN has to be acknowledged by the other (client's ISN "
            f"by server's SYN,ACK sent at {syn_ack['t']:.6f} s; server's ISN by client's ACK sent at {ack['t']:.6f} s)"
            ) in text
    assert "old duplicate" in text and "tcpwave demo old-duplicate" in text
    _, both = _explained("simultaneous-open")
    assert "Four segments opened this connection" in both


def test_a_rst_note_says_who_closed_when_and_what_was_never_acknowledged():
    events, text = _explained("linger-zero")
    rst = next(e for e in _sends(events, "client") if e.get("note") == "SO_LINGER 0 close()")
    acked = max((e["ack"] for e in events if e["type"] == "recv" and e["host"] == "client" and e["t"] <= rst["t"]
                 and "ACK" in e["flags"]), key=lambda a: seq_diff(a, rst["seq"]))
    closed = {e["host"]: e for e in events if e["type"] == "state" and e["to"] == "CLOSED"}
    assert "a RST is never ACKed and never sent again" in text
    for host in ("client", "server"):
        e = closed[host]
        said = f"{host} went {e['from']} → CLOSED at {e['t']:.6f} s, with no TIME_WAIT and without sending a FIN"
        assert said in text
    events, late = _explained("no-time-wait")  # the server had sent its FIN: the RST met it in LAST_ACK
    end = next(e for e in events if e["type"] == "state" and e["host"] == "server" and e["from"] == "LAST_ACK")
    assert f"server went LAST_ACK → CLOSED at {end['t']:.6f} s, with no TIME_WAIT (" in late
    assert f"client had sent {seq_diff(rst['seq'], acked)} bytes server had not acknowledged" in text


def test_time_wait_note_gives_this_runs_msl_and_rfc_and_linux_figures(capsys):
    _, text = _explained("handshake")
    tw = re.search(r"TIME_WAIT lasted ([0-9.]+) s: 2×MSL with an MSL of ([0-9.]+) s", text)
    assert tw and float(tw.group(1)) == 60.0 and float(tw.group(2)) == 30.0
    assert "RFC 9293 takes the MSL as 2 minutes, a TIME_WAIT of 4 minutes" in text
    assert "Linux's TIME_WAIT is a fixed 60 s with no MSL setting, the wait this run used" in text
    assert main(["demo", "handshake", "--explain", "--msl", "5", "--color", "never"]) == 0
    short = " ".join(capsys.readouterr().out.split())
    assert "TIME_WAIT lasted 10.000 s: 2×MSL with an MSL of 5 s" in short and "the wait this run used" not in short


def test_ss_spellings_are_given_once_each_next_to_the_rfc_names():
    _, text = _explained("handshake")
    for rfc, ss in (("SYN_RCVD", "SYN-RECV"), ("TIME_WAIT", "TIME-WAIT"), ("ESTABLISHED", "ESTAB"),
                    ("CLOSE_WAIT", "CLOSE-WAIT")):
        assert text.count(f"ss shows {rfc} as {ss}") == 1
    assert "ss shows LISTEN" not in text  # spelled the same


def test_jargon_is_glossed_once_where_it_first_appears_with_the_runs_figures():
    events, text = _explained("lost-final-ack")
    probe = next(e for e in events if e["type"] == "loss" and e["rule"] == "tlp")
    last = [e for e in _sends(events, probe["host"]) if e["t"] < probe["t"]][-1]
    assert text.count("tail loss probe: ") == 1
    assert f"tail loss probe: {(probe['t'] - last['t']) * 1000:.3f} ms after server's last segment" in text
    assert text.count("recovery is the sender's loss-recovery state") == 2  # cwr, then open: each once
    assert "cwr: the congestion window is cut once" in text
    plain = render_ladder(events)
    assert "tail loss probe" in plain and "tail loss probe:" not in plain  # only under --explain


def test_a_lost_handshake_ack_is_not_counted_as_acknowledging_the_isn(capsys):
    assert main(["demo", "handshake", "--drop", "client:ACK#1", "--explain", "--color", "never"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Five segments opened this connection (1 lost, 1 sent again)" in text
    named = float(re.search(r"server's ISN by client's ACK sent at ([0-9.]+) s", text).group(1))
    rows = re.findall(r"([0-9.]+) \| *-* *\[(\d+)\] ACK seq=1 ack=1 win", text)
    lost, answered = (float(t) for t, _ in rows[:2])
    assert named == answered and named != lost  # the ACK that arrived, not the lost one
