"""Every demo scenario runs and shows the textbook lifecycle; the CLI and its output files."""

import json
import shutil
import struct
import subprocess

import pytest

from tcpwave.cli.main import main
from tcpwave.scenarios import SCENARIOS

REQUIRED = {"handshake", "simultaneous-open", "simultaneous-close", "half-close", "lost-syn", "lost-syn-ack",
            "lost-fin", "lost-final-ack", "refused", "reset", "lossy", "three-way-close",
            "no-time-wait", "close-wait-lingers", "old-duplicate", "close-linux-vs-freebsd"}


def transitions(result, host):
    return [(e["from"], e["to"]) for e in result.events if e["type"] == "state" and e["host"] == host]


def test_all_required_scenarios_exist():
    assert REQUIRED <= set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_scenario_passes_its_own_checks(name):
    result = SCENARIOS[name].run(1, None, [])
    assert result.checks and result.ok, result.checks


def test_handshake_shows_the_textbook_lifecycle():
    r = SCENARIOS["handshake"].run(1, None, [])
    assert transitions(r, "client") == [("CLOSED", "SYN_SENT"), ("SYN_SENT", "ESTABLISHED"),
                                        ("ESTABLISHED", "FIN_WAIT_1"), ("FIN_WAIT_1", "FIN_WAIT_2"),
                                        ("FIN_WAIT_2", "TIME_WAIT"), ("TIME_WAIT", "CLOSED")]
    assert transitions(r, "server") == [("CLOSED", "LISTEN"), ("LISTEN", "SYN_RCVD"), ("SYN_RCVD", "ESTABLISHED"),
                                        ("ESTABLISHED", "CLOSE_WAIT"), ("CLOSE_WAIT", "LAST_ACK"),
                                        ("LAST_ACK", "CLOSED")]
    tw = [e["t"] for e in r.events if e["type"] == "state" and e["host"] == "client"]
    assert tw[-1] - tw[-2] == pytest.approx(60.0)  # 2 x MSL of 30 s


def test_simultaneous_open_passes_through_syn_rcvd_on_both_sides():
    r = SCENARIOS["simultaneous-open"].run(1, None, [])
    for host in ("client", "server"):
        assert transitions(r, host)[:3] == [("CLOSED", "SYN_SENT"), ("SYN_SENT", "SYN_RCVD"),
                                            ("SYN_RCVD", "ESTABLISHED")]


def test_simultaneous_close_passes_through_closing_on_both_sides():
    r = SCENARIOS["simultaneous-close"].run(1, None, [])
    for host in ("client", "server"):
        assert transitions(r, host)[-4:] == [("ESTABLISHED", "FIN_WAIT_1"), ("FIN_WAIT_1", "CLOSING"),
                                             ("CLOSING", "TIME_WAIT"), ("TIME_WAIT", "CLOSED")]


def test_lost_final_ack_makes_last_ack_retransmit_and_time_wait_reack():
    r = SCENARIOS["lost-final-ack"].run(1, None, [])
    server_fins = [e for e in r.events if e["type"] == "send" and e["host"] == "server" and "FIN" in e["flags"]]
    assert len(server_fins) == 2 and server_fins[1]["note"] == "retransmission"
    reack = [e for e in r.events
             if e["type"] == "handled" and e["host"] == "client" and e["what"] == "retransmitted_fin"]
    assert len(reack) == 1 and reack[0]["done"] == "re-ACKed, 2×MSL restarted"
    assert not [e for e in r.events if e["type"] == "drop" and e["host"] == "client" and e.get("where") != "link"]


def test_every_event_has_the_documented_fields():
    r = SCENARIOS["lost-fin"].run(3, None, [])
    for e in r.events:
        assert {"t", "host", "type"} <= e.keys()
        if e["type"] == "state":
            assert {"from", "to"} <= e.keys()
        if e["type"] in ("send", "recv"):
            assert {"flags", "seq", "ack", "len", "win"} <= e.keys()
    assert {e["type"] for e in r.events} >= {"state", "send", "recv", "drop", "timer"}


def test_demo_list_names_every_scenario(capsys):
    assert main(["demo", "--list"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert name in out


def test_demo_prints_a_ladder_with_states_and_lost_segments(capsys):
    assert main(["demo", "lost-syn", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "CLOSED → SYN_SENT" in out and "LISTEN → SYN_RCVD" in out and "TIME_WAIT → CLOSED" in out
    lost = [line for line in out.splitlines() if "lost" in line and "X" in line]
    assert len(lost) == 1 and "SYN" in lost[0]
    assert "(rtx) SYN seq=0" in out


def test_demo_unknown_scenario_fails_cleanly(capsys):
    assert main(["demo", "no-such-thing"]) == 2
    assert "no scenario" in capsys.readouterr().err


def test_demo_writes_events_as_json_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    assert main(["demo", "handshake", "--events", str(path)]) == 0
    events = [json.loads(line) for line in path.read_text().splitlines()]
    states = [(e["host"], e["to"]) for e in events if e["type"] == "state"]
    assert ("client", "TIME_WAIT") in states and ("server", "LAST_ACK") in states
    assert all(e["host"] in ("client", "server") for e in events)


def _read_pcap(data: bytes) -> list[bytes]:
    magic, major, minor, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    assert magic == 0xA1B23C4D and (major, minor) == (2, 4) and linktype == 101
    off, packets = 24, []
    while off < len(data):
        _, _, caplen, origlen = struct.unpack_from("<IIII", data, off)
        packets.append(data[off + 16 : off + 16 + caplen])
        off += 16 + caplen
    return packets


def test_demo_writes_a_pcap_of_every_packet(tmp_path):
    path = tmp_path / "out.pcap"
    events = tmp_path / "events.jsonl"
    assert main(["demo", "handshake", "--pcap", str(path), "--events", str(events)]) == 0
    packets = _read_pcap(path.read_bytes())
    sends = [json.loads(x) for x in events.read_text().splitlines() if '"type":"send"' in x]
    assert len(packets) == len(sends) > 0  # one record per segment put on the wire
    assert packets[0][0] >> 4 == 4  # raw IPv4, no link header


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (./run test installs it)")
def test_tcpdump_reads_the_pcap(tmp_path):
    path = tmp_path / "out.pcap"
    assert main(["demo", "handshake", "--pcap", str(path)]) == 0
    out = subprocess.run(["tcpdump", "-nn", "-v", "-r", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Flags [S]" in out and "Flags [S.]" in out and "Flags [F.]" in out
    assert "192.0.2.1" in out and "192.0.2.2.80" in out
    assert "incorrect" not in out  # tcpdump verifies IP and TCP checksums with -v


def test_lost_syn_ack_tells_its_two_syn_acks_apart():
    from tcpwave.views.ladder import render_ladder

    r = SCENARIOS["lost-syn-ack"].run(1, None, [])
    again = [e.get("note") for e in r.events if e["type"] == "send" and e["host"] == "server"
             and e["flags"] == "SYN,ACK"][1:]
    assert sorted(again) == ["retransmission", "retransmission: answers a duplicate SYN"]
    ladder = render_ladder(r.events)
    assert "(rtx, dup SYN) SYN,ACK" in ladder and "SYN again: SYN,ACK again" in ladder


def test_three_way_close_carries_the_ack_on_the_fin():
    r = SCENARIOS["three-way-close"].run(1, None, [])
    assert transitions(r, "client")[-3:] == [("ESTABLISHED", "FIN_WAIT_1"), ("FIN_WAIT_1", "TIME_WAIT"),
                                             ("TIME_WAIT", "CLOSED")]
    server_fin = [e for e in r.events if e["type"] == "send" and e["host"] == "server" and "FIN" in e["flags"]]
    assert len(server_fin) == 1 and server_fin[0]["flags"] == "FIN,ACK"
    client_fin = [e for e in r.events if e["type"] == "send" and e["host"] == "client" and "FIN" in e["flags"]][0]
    assert server_fin[0]["ack"] == (client_fin["seq"] + 1) & 0xFFFFFFFF  # it acknowledges the client's FIN


def test_demo_msl_sets_time_wait(capsys):
    assert main(["demo", "handshake", "--msl", "5", "--color", "never"]) == 0
    out = capsys.readouterr().out
    into = next(float(ln.split()[0]) for ln in out.splitlines() if "→ TIME_WAIT" in ln)
    out_of = next(float(ln.split()[0]) for ln in out.splitlines() if "TIME_WAIT → CLOSED" in ln)
    assert abs(out_of - into - 10.0) < 1e-6  # 2 x MSL


def test_without_time_wait_the_retransmitted_fin_draws_a_rst():
    r = SCENARIOS["no-time-wait"].run(1, None, [])
    assert r.ok, r.checks
    with_it = SCENARIOS["lost-final-ack"].run(1, None, [])  # the same run with TIME_WAIT: re-ACKed
    assert with_it.closed == {"client": "normal", "server": "normal"}
    assert [e for e in with_it.events if e["type"] == "handled" and e["what"] == "retransmitted_fin"]


def test_old_duplicate_is_discarded_with_time_wait_and_corrupts_without():
    r = SCENARIOS["old-duplicate"].run(1, None, [])
    assert r.ok, r.checks
    assert r.info["with TIME_WAIT (60 s), the second connection read"] == "new data, second connection"
    assert r.info["without TIME_WAIT (2 ms), the second connection read"].startswith("OLD DATA")
