"""Views: pcap/pcapng reading for every link type, pcapng comments, state inference from segments
(checked against tcpwave's own record of the same run), and golden ladder/Mermaid/DOT files."""

import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys

import pytest

from tcpwave.cli.main import main
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.scenarios import SCENARIOS
from tcpwave.views import infer_connections, load, read_capture
from tcpwave.views.capture import PcapngWriter, strip_link
from tcpwave.views.diagrams import mermaid, state_dot, taken_transitions, timeline
from tcpwave.views.ladder import render_ladder

GOLDEN = pathlib.Path(__file__).parent / "golden"
LOSS_FREE = ["handshake", "simultaneous-open", "simultaneous-close", "half-close", "refused", "reset"]


def run_scenario(name: str):
    sink, packets = ListSink(), []
    result = SCENARIOS[name].run(1, Tracer(sink), [lambda t, p: packets.append((t, bytes(p)))])
    return result, list(sink), packets


def _states(events, host):
    return [(e["from"], e["to"]) for e in events if e["type"] == "state" and e["host"] == host]


def _conn_states(events, host):
    """A host's transitions on the connection itself: the listener's passive OPEN and the 2 x MSL
    expiry have no segment, so a capture cannot show them."""
    return [(a, b) for a, b in _states(events, host) if b != "LISTEN" and a != "TIME_WAIT"]


@pytest.mark.parametrize("name", LOSS_FREE)
def test_states_inferred_from_the_capture_match_what_tcpwave_did(name):
    result, events, packets = run_scenario(name)
    views, skipped = infer_connections(packets)
    assert len(views) == 1 and not skipped
    v = views[0]
    client, server = (v.left, v.right) if v.left.endswith(":80") is False else (v.right, v.left)
    assert _conn_states(v.events, client) == _conn_states(events, "client")
    assert [t for t in _conn_states(v.events, server) if t[0] != "CLOSED" or t[1] != "LISTEN"] == \
        _conn_states(events, "server")


def test_inference_sees_several_connections_and_presumed_losses():
    _, _, a = run_scenario("handshake")
    sink, b = ListSink(), []
    SCENARIOS["lost-fin"].run(2, Tracer(sink), [lambda t, p: b.append((t, bytes(p)))])  # another port
    views, _ = infer_connections(a + [(t + 100, p) for t, p in b])
    assert len(views) == 2 and views[0].left != views[1].left
    v = views[1]
    rtx = [e for e in v.events if e["type"] == "send" and e.get("note") == "retransmission"]
    assert any("FIN" in e["flags"] and e["src"] == v.left for e in rtx)
    assert any(e["type"] == "drop" and e["reason"] == "not received" and "FIN" in e["flags"] for e in v.events)
    assert "lost (not received)" in render_ladder(v.events, v.left, v.right)


def test_mid_connection_capture_starts_established():
    _, _, packets = run_scenario("handshake")
    v = infer_connections(packets[3:])[0][0]
    first = [e for e in v.events if e["type"] == "state"][:2]
    assert {(e["from"], e["to"]) for e in first} == {("CLOSED", "ESTABLISHED")}


# ------------------------------------------------------------------ captures
def _pcap(linktype: int, frames, endian="<", nano=False) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for t, frame in frames:
        sec, frac = int(t), round((t - int(t)) * (1e9 if nano else 1e6))
        out += struct.pack(endian + "IIII", sec, frac, len(frame), len(frame)) + frame
    return out


def _ethertype(ip: bytes) -> bytes:
    return b"\x08\x00" if ip[0] >> 4 == 4 else b"\x86\xdd"


WRAPS = {
    "ethernet": (1, lambda ip: b"\x02" * 6 + b"\x04" * 6 + _ethertype(ip) + ip),
    "ethernet+vlan": (1, lambda ip: b"\x02" * 6 + b"\x04" * 6 + b"\x81\x00\x00\x05" + _ethertype(ip) + ip),
    "sll": (113, lambda ip: b"\x00\x00\x00\x01\x00\x06" + b"\x02" * 8 + _ethertype(ip) + ip),
    "sll2": (276, lambda ip: _ethertype(ip) + b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x01\x00\x06"
             + b"\x02" * 8 + ip),
    "null": (0, lambda ip: struct.pack("<I", 2 if ip[0] >> 4 == 4 else 24) + ip),
    "loop": (108, lambda ip: struct.pack(">I", 2 if ip[0] >> 4 == 4 else 24) + ip),
    "raw": (101, lambda ip: ip),
}


@pytest.mark.parametrize("kind", sorted(WRAPS))
def test_every_link_type_yields_the_same_ip_packets(tmp_path, kind):
    _, _, packets = run_scenario("handshake")
    linktype, wrap = WRAPS[kind]
    frames = [(t, wrap(p)) for t, p in packets] + [(9.0, wrap(b"\x45" + bytes(19))[:-20] + b"\x00" * 4)]
    path = tmp_path / "c.pcap"
    path.write_bytes(_pcap(linktype, frames, endian=">" if kind == "loop" else "<", nano=kind == "raw"))
    got = read_capture(str(path))
    assert [p for _, p in got[:len(packets)]] == [p for _, p in packets]
    assert [round(t, 6) for t, _ in got[:len(packets)]] == [round(t, 6) for t, _ in packets]


def test_non_ip_frames_are_skipped():
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)
    assert strip_link(1, arp) is None


def test_pcapng_round_trip_and_ipv6(tmp_path):
    from tcpwave.stack import Stack
    a, b = Stack(["2001:db8::1"], seed=1), Stack(["2001:db8::2"], seed=2)
    b.listen(80, 0.0)
    a.connect("2001:db8::2", 80, 0.0)
    packets, now = [], 0.0
    for _ in range(4):
        for src, dst in ((a, b), (b, a)):
            for p in src.packets_to_send():
                packets.append((now, p))
                dst.receive_packet(p, now)
        now += 0.01
    path = tmp_path / "v6.pcapng"
    with open(path, "wb") as f:
        w = PcapngWriter(f)
        for t, p in packets:
            w.write(t, p, "hello")
    assert read_capture(str(path)) == packets
    v = infer_connections(packets)[0][0]
    assert v.left.startswith("[2001:db8::") and "ESTABLISHED" in timeline(v.events, [v.left, v.right], v.end)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (./run test installs it as root)")
def test_tshark_reads_the_pcapng_comments(tmp_path):
    path = tmp_path / "sc.pcapng"
    assert main(["demo", "simultaneous-close", "--pcapng", str(path)]) == 0
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "frame.comment"],
                         capture_output=True, text=True, check=True).stdout
    comments = dict(line.split("\t", 1) for line in out.strip().splitlines() if "\t" in line)
    assert re.fullmatch(r"client 192\.0\.2\.1:(\d+)-192\.0\.2\.2:80: CLOSED → SYN_SENT; "
                        r"server 192\.0\.2\.2:80-192\.0\.2\.1:\1: LISTEN → SYN_RCVD", comments["1"]), comments["1"]
    assert any(re.search(r"server \S+: FIN_WAIT_1 → CLOSING", c) for c in comments.values())
    assert any(re.search(r"client \S+: CLOSING → TIME_WAIT", c) for c in comments.values())
    status = subprocess.run(["tshark", "-r", str(path), "-o", "tcp.check_checksum:TRUE", "-T", "fields",
                             "-e", "tcp.checksum.status"], capture_output=True, text=True, check=True).stdout.split()
    assert status and set(status) == {"1"}  # every TCP checksum verified good (0 would be bad)


# ------------------------------------------------------------------ golden files
GOLDEN_SCENARIOS = ["handshake", "simultaneous-open", "simultaneous-close", "lost-final-ack", "three-way-close"]


def _renders(name: str) -> dict[str, str]:
    _, events, _ = run_scenario(name)
    return {
        "ladder.txt": render_ladder(events) + "\n",
        "explain.txt": render_ladder(events, explain=True) + "\n",  # --explain: reasons, timers, notes
        "mmd": mermaid(events, "client", "server"),
        "dot": state_dot(events, ["client", "server"], name),
    }


@pytest.mark.parametrize("name", GOLDEN_SCENARIOS)
def test_golden_ladder_mermaid_and_dot(name):
    for ext, text in _renders(name).items():
        path = GOLDEN / f"{name}.{ext}"
        if os.environ.get("TCPWAVE_UPDATE_GOLDEN"):
            path.write_text(text)
        assert path.read_text() == text, f"{path.name} changed; rerun with TCPWAVE_UPDATE_GOLDEN=1 if intended"


def test_dot_highlights_exactly_the_transitions_taken():
    _, events, _ = run_scenario("simultaneous-close")
    dot = state_dot(events, ["client", "server"])
    taken = taken_transitions(events, ["client", "server"])
    assert ("FIN_WAIT_1", "CLOSING") in taken and ("CLOSE_WAIT", "LAST_ACK") not in taken
    bold = [line for line in dot.splitlines() if "penwidth" in line]
    assert len(bold) == len(taken)
    assert any(line.strip().startswith("FIN_WAIT_1 -> CLOSING") for line in bold)
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg"], input=dot, text=True, check=True, capture_output=True)


def test_trace_cli_on_a_capture_and_an_event_log(tmp_path, capsys):
    pcap, log = tmp_path / "h.pcap", tmp_path / "h.jsonl"
    assert main(["demo", "handshake", "--pcap", str(pcap), "--events", str(log)]) == 0
    capsys.readouterr()
    assert main(["trace", str(pcap), "--list"]) == 0
    assert "192.0.2.1:" in capsys.readouterr().out
    assert main(["trace", str(pcap)]) == 0
    out = capsys.readouterr().out
    assert "SYN_SENT → ESTABLISHED" in out and "2×MSL countdown" in out
    assert main(["trace", str(log), "-f", "mermaid"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("sequenceDiagram") and "Note over R: LAST_ACK → CLOSED" in out
    assert main(["trace", str(pcap), "-c", "7"]) == 2
    views, _ = load(str(log))
    assert (views[0].left, views[0].right) == ("client", "server")
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"nonsense")
    assert main(["trace", str(bad)]) == 2


def test_trace_command_runs_from_the_shell(tmp_path):
    pcap = tmp_path / "r.pcap"
    assert main(["demo", "refused", "--pcap", str(pcap)]) == 0
    out = subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "trace", str(pcap), "-f", "dot"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("digraph tcp_states") and "SYN_SENT -> CLOSED" in out


def test_an_event_log_with_several_connections_and_one_side_traced_splits_into_views(tmp_path):
    import asyncio

    from tcpwave.aio import MemoryLink, Runtime, open_connection, start_server
    from tcpwave.core.trace import JsonLinesSink
    from tcpwave.stack import Stack

    log = tmp_path / "server.jsonl"

    async def run(f):
        a, b = MemoryLink.pair(delay=0.001)
        client = Runtime(Stack(["192.0.2.1"], seed=1, host="client"), a)
        server = Runtime(Stack(["192.0.2.2"], seed=2, host="tcpwave", tracer=Tracer(JsonLinesSink(f))), b)

        async def echo(reader, writer):
            writer.write(await reader.read())
            writer.close()

        await start_server(echo, "192.0.2.2", 7, runtime=server)
        ports = []
        for i in range(2):
            reader, writer = await open_connection("192.0.2.2", 7, runtime=client)
            ports.append(writer.get_extra_info("sockname")[1])
            writer.write(b"x" * (i + 1))
            writer.write_eof()
            assert await reader.read() == b"x" * (i + 1)
            writer.close()
            await writer.wait_closed()
        return ports

    with open(log, "w") as f:
        ports = asyncio.run(asyncio.wait_for(run(f), 30))
    views, _ = load(str(log))
    assert [(v.left, v.right) for v in views] == [(f"192.0.2.1:{p}", "tcpwave") for p in ports]
    for v, n in zip(views, (1, 2), strict=True):
        data = [e for e in v.events if e["type"] == "send" and e["len"]]
        assert [(e["host"], e["len"]) for e in data] == [(v.left, n), ("tcpwave", n)]  # both directions
        assert "LISTEN → SYN_RCVD" in render_ladder(v.events, v.left, v.right)


def test_the_ladder_shows_losses_by_rule_and_recovery_states():
    from tcpwave.scenarios import run_lossy
    from tcpwave.views.ladder import render_ladder

    events = run_lossy(3, size=200_000, loss=0.03).events
    text = render_ladder(events)
    losses = [e for e in events if e["type"] == "loss" and e["host"] == "client"]
    assert losses
    assert text.count("lost (rack): seq=") + text.count("tail loss probe") + text.count("lost (rto)") \
        == len([e for e in events if e["type"] == "loss"])
    assert "recovery: disorder → recovery" in text and "recovery: recovery → open" in text


def test_a_one_sided_event_log_draws_the_handshake_in_order(tmp_path):
    """A log of the server side only (what `serve --events` writes): the client's segments are drawn
    from what the server received, before what the server did about them; the listener's later
    LISTEN -> CLOSED is not part of the connection."""
    import json

    from tcpwave.core.trace import ListSink, Tracer
    from tcpwave.views import load

    sink = ListSink()
    SCENARIOS["handshake"].run(1, Tracer(sink), [])
    log = tmp_path / "server.jsonl"
    server_only = [e for e in sink if e["host"] == "server"]
    server_only.append({"t": server_only[-1]["t"] + 1, "host": "server", "type": "state", "from": "LISTEN",
                        "to": "CLOSED", "why": "shut down", "conn": "192.0.2.2:80 (listening)"})
    log.write_text("".join(json.dumps(e) + "\n" for e in server_only))
    [view], _ = load(str(log))
    steps = [(e["host"], e["flags"]) if e["type"] == "send" else (e["host"], e["to"]) for e in view.events
             if e["type"] in ("send", "state")]
    client = view.left
    assert steps[:5] == [("server", "LISTEN"), (client, "SYN"), ("server", "SYN_RCVD"), ("server", "SYN,ACK"),
                         (client, "ACK")], steps
    assert steps[5] == ("server", "ESTABLISHED")  # after the ACK that completed the handshake
    assert not [e for e in view.events if e["type"] == "state" and e["from"] == "LISTEN" and e["to"] == "CLOSED"]


def test_memory_pair_sides_are_named_apart():
    from tcpwave.aio.blocking import Network
    from tcpwave.core.trace import ListSink, Tracer

    sink = ListSink()
    a, b = Network.memory_pair(tracer=Tracer(sink))
    try:
        with b.socket() as srv:
            srv.bind(("192.0.2.2", 7))
            srv.listen()
            with a.socket() as s:
                s.settimeout(10)
                s.connect(("192.0.2.2", 7))
                conn, _ = srv.accept()
                conn.close()
    finally:
        a.close()
        b.close()
    senders = {e["host"] for e in sink if e["type"] == "send"}
    assert senders == {"192.0.2.1", "192.0.2.2"}


def test_a_comment_waits_for_its_own_connections_packet():
    """close() on one connection, then another connection's SYN,ACK goes out before the FIN: the
    CLOSE_WAIT -> LAST_ACK comment goes on the FIN, not on the other connection's packet."""
    import ipaddress

    from tcpwave.views.annotate import state_comments
    from tcpwave.wire.ip import build_ip
    from tcpwave.wire.tcp import ACK, FIN, SYN, Segment, build_tcp

    me, peer = ipaddress.ip_address("192.0.2.2"), ipaddress.ip_address("192.0.2.1")
    fin = Segment(80, 40001, 100, 200, FIN | ACK, 1000)
    synack = Segment(80, 40002, 500, 301, SYN | ACK, 1000)
    packets = [(1.0, build_ip(me, peer, 6, build_tcp(synack, me, peer))),
               (1.0, build_ip(me, peer, 6, build_tcp(fin, me, peer)))]

    def send(seg):
        return {"t": 1.0, "host": "h", "type": "send", "src": f"192.0.2.2:{seg.src_port}",
                "dst": f"192.0.2.1:{seg.dst_port}", "flags": "SYN,ACK" if seg.flags & SYN else "FIN,ACK",
                "seq": seg.seq, "ack": seg.ack, "len": 0}

    events = [{"t": 1.0, "host": "h", "type": "state", "from": "CLOSE_WAIT", "to": "LAST_ACK", "why": "close",
               "conn": "192.0.2.2:80-192.0.2.1:40001"}, send(synack), send(fin)]
    assert state_comments(packets, events) == [None, "h 192.0.2.2:80-192.0.2.1:40001: CLOSE_WAIT → LAST_ACK"]


def test_a_header_only_capture_draws_every_packet(tmp_path):
    """tcpdump -s 128 keeps every header but not the data: trace draws all of it, with the lengths
    the packets had on the wire."""
    import struct

    from tcpwave.views import load

    full = tmp_path / "full.pcap"
    assert main(["demo", "lossy", "--pcap", str(full)]) == 0
    data = full.read_bytes()
    out, off = bytearray(data[:24]), 24
    out[16:20] = struct.pack("<I", 128)  # the snap length
    cut = 0
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack_from("<IIII", data, off)
        frame = data[off + 16: off + 16 + incl]
        off += 16 + incl
        kept = frame[:128]
        cut += len(kept) < len(frame)
        out += struct.pack("<IIII", sec, frac, len(kept), orig) + kept
    short = tmp_path / "short.pcap"
    short.write_bytes(bytes(out))
    assert cut > 1000  # most of the lossy run's packets carry data
    (whole,), _ = load(str(full))
    (headers,), skipped = load(str(short))
    assert not skipped.get("truncated")
    keys = [("type", "host", "flags", "seq", "ack", "len", "to")]
    assert [tuple(e.get(k) for k in keys[0]) for e in headers.events] == \
        [tuple(e.get(k) for k in keys[0]) for e in whole.events]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (./run test installs it as root)")
def test_trace_summary_counts_what_tshark_counts(tmp_path, capsys):
    """The lossy demo's capture: our retransmissions are the frames tshark calls retransmission or
    out-of-order (Wireshark's name for a resend within its reordering threshold), frame for frame;
    duplicate ACKs agree in number. Every retransmission tshark calls spurious (its data was already
    acknowledged when it went) is D-SACKed, so ours counts it too; ours also counts a resend of a
    segment that was only reordered, which the receiver D-SACKs but tshark calls out-of-order."""
    from tcpwave.views import load
    from tcpwave.views.summary import summarize

    pcap = tmp_path / "lossy.pcap"
    assert main(["demo", "lossy", "--pcap", str(pcap)]) == 0

    def frames(expr):
        out = subprocess.run(["tshark", "-r", str(pcap), "-Y", expr, "-T", "fields", "-e", "frame.number"],
                             capture_output=True, text=True, check=True).stdout
        return {int(n) for n in out.split()}

    (v,), _ = load(str(pcap))
    sends = [e for e in v.events if e["type"] == "send"]  # one per frame, in capture order
    ours = {i for i, e in enumerate(sends, 1) if e.get("note") == "retransmission"}
    assert ours and ours == frames("tcp.analysis.retransmission || tcp.analysis.out_of_order")
    s = summarize(v.events, v.left, v.right)
    assert sum(d.retransmissions for d in s.values()) == len(ours)
    assert sum(d.dup_acks for d in s.values()) == len(frames("tcp.analysis.duplicate_ack"))
    spurious = sum(d.spurious for d in s.values())
    dsacked = len(frames("tcp.options.sack.dsack"))  # each D-SACK names at most one retransmission
    assert len(frames("tcp.analysis.spurious_retransmission")) <= spurious <= dsacked
    for d in s.values():
        assert d.rtt and min(d.rtt) >= 0.0099  # the demo's link: 5 ms each way, at least
        assert d.goodput and d.data_bytes == 1_000_000
    capsys.readouterr()
    assert main(["trace", str(pcap), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "retransmissions" in out and "duplicate ACKs" in out and "goodput" in out
    assert main(["trace", str(pcap), "-f", "ladder"]) == 0
    assert "<SACK " in capsys.readouterr().out  # SACK blocks appear in the ladder


def test_summary_finds_a_zero_window_period_and_an_rto_stall():
    from tcpwave.views.summary import summarize

    def seg(t, host, seq, ack, n=0, win=100, note=None):
        e = {"t": t, "type": "send", "host": host, "flags": "ACK", "seq": seq, "ack": ack, "len": n, "win": win}
        if note:
            e["note"] = note
        return e

    a, b = "A", "B"
    events = [seg(0.0, a, 1, 1, 100), seg(0.01, b, 1, 101, win=0),  # the receiver's window closes
              seg(2.01, b, 1, 101, win=500),  # and opens 2 s later
              seg(2.02, a, 101, 1, 100),  # lost
              seg(3.02, a, 101, 1, 100, note="retransmission"),  # after 1 s of silence: the RTO
              seg(3.03, b, 1, 201)]
    s = summarize(events, a, b)[a]
    assert len(s.zero_window) == 1 and abs(s.zero_window[0] - 2.0) < 1e-9
    assert len(s.rto_stalls) == 1 and abs(s.rto_stalls[0] - 1.0) < 1e-9
    assert s.retransmissions == 1 and s.data_bytes == 200
    assert s.rtt == [0.01]  # the resent segment gives no sample (Karn)


def test_explain_says_why_at_the_textbook_moments(capsys):
    assert main(["demo", "three-way-close", "--explain", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "↳ client: connect(): an active OPEN sends a SYN" in out
    assert "takes one sequence number" in out and "Three segments closed this connection" in out
    assert "↳ client: TIME_WAIT's 2×MSL timer armed: fires in 60.000 s" in out
    assert main(["demo", "handshake", "--explain", "--msl", "5", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "TIME_WAIT waits 2×MSL, 10 s in this run" in out and "Four segments closed this connection" in out
    assert main(["demo", "three-way-close", "--color", "never"]) == 0
    assert "↳" not in capsys.readouterr().out  # only when asked


@pytest.mark.parametrize("name", ["handshake", "lost-syn-ack", "lost-final-ack"])
def test_the_ladder_fits_80_columns_when_asked(name, capsys):
    assert main(["demo", name, "--width", "80", "--explain", "--color", "never"]) == 0
    ladder = capsys.readouterr().out.split("\n\n")[1]  # after the title, before the checks
    lines = ladder.splitlines()
    assert len(lines) > 20 and max(len(line) for line in lines) <= 80
    assert any(line.strip().startswith("SYN seq=0") for line in lines)  # the words, under the arrow
