"""`trace` and `trace --summary` judge from the evidence a capture holds (issue 23): RTOs timed as Linux
times them, reordering told from retransmission by the IPv4 ID, loss marks only where the segment did
not arrive, gaps in the capture told apart from loss, cut-short files and snap lengths reported.
Each capture is made by hand (tests/captures.py), segment by segment."""

import json

from captures import Conversation

from tcpwave.cli.main import main
from tcpwave.views import load
from tcpwave.views.ladder import render_ladder
from tcpwave.views.summary import summarize

MSS = 1000


def _write(tmp_path, conv: Conversation, name: str = "c.pcap", **kw) -> str:
    path = tmp_path / name
    path.write_bytes(conv.pcap(**kw))
    return str(path)


def _view(path: str):
    (v,), _ = load(path)
    return v


def _sender(v):
    return v.left  # A sent the SYN


def test_rto_is_timed_from_the_head_segments_previous_copy_not_from_the_senders_silence(tmp_path):
    """The issue's case: the head segment goes at 0.0265 s, its fast retransmission at 0.033 s is lost
    too, the sender goes on sending new data until 0.13 s, and the timer resends the head at 0.2539 s:
    the sender was silent only 124 ms, but the head's copy is 221 ms old. Linux counts an RTO."""
    c = Conversation()
    c.handshake(rtt=0.003)
    c.seg(0.0265, "A", 1001, 5001, n=MSS)  # the head: lost
    t, seq = 0.027, 2001
    for _ in range(3):  # three more segments, each drawing a duplicate ACK with SACK
        c.seg(t, "A", seq, 5001, n=MSS)
        c.seg(t + 0.003, "B", 5001, 1001, sack=((2001, seq + MSS),))
        t, seq = t + 0.001, seq + MSS
    c.seg(0.033, "A", 1001, 5001, n=MSS)  # fast retransmission: lost as well
    t = 0.04
    while t < 0.13:  # new data goes on (the window allows), each SACKed
        c.seg(t, "A", seq, 5001, n=MSS)
        c.seg(t + 0.003, "B", 5001, 1001, sack=((2001, seq + MSS),))
        t, seq = t + 0.01, seq + MSS
    c.seg(0.2539, "A", 1001, 5001, n=MSS)  # the retransmission timer
    c.seg(0.2569, "B", 5001, seq)
    v = _view(_write(tmp_path, c))
    s = summarize(v.events, v.left, v.right)[_sender(v)]
    assert s.retransmissions == 2
    assert len(s.rto_stalls) == 1 and abs(s.rto_stalls[0] - (0.2539 - 0.033)) < 1e-6
    assert s.by_cause["rto"] == 1 and s.by_cause["fast"] == 1


def _reordering_and_loss() -> Conversation:
    """Captured at the receiver B. Segment 3 arrives after segment 4 (sent before it: older IPv4 ID);
    segment 7 is lost upstream and comes again (a newer ID); segment 9 arrives, but B's ACK of it is
    lost on the way back, so A's timer resends it and B says so in a D-SACK."""
    c = Conversation()
    c.handshake(at_client=False)
    ids = iter(range(c.ids["A"] + 1, c.ids["A"] + 100))
    seqs = [1001 + i * MSS for i in range(12)]
    sent = {k: next(ids) for k in range(1, 11)}  # segment k's original ID

    def data(t, k, ipid):
        c.seg(t, "A", seqs[k - 1], 5001, n=MSS, ipid=ipid)

    data(0.010, 1, sent[1])
    data(0.011, 2, sent[2])
    c.seg(0.0111, "B", 5001, seqs[2])
    data(0.012, 4, sent[4])  # segment 3 is late
    c.seg(0.0121, "B", 5001, seqs[2], sack=((seqs[3], seqs[4]),))
    data(0.013, 3, sent[3])  # the late original
    c.seg(0.0131, "B", 5001, seqs[4])
    data(0.014, 5, sent[5])
    data(0.015, 6, sent[6])
    c.seg(0.0151, "B", 5001, seqs[6])
    data(0.017, 8, sent[8])  # segment 7 was lost before B
    c.seg(0.0171, "B", 5001, seqs[6], sack=((seqs[7], seqs[8]),))
    data(0.021, 7, next(ids))  # its retransmission: a new ID
    c.seg(0.0211, "B", 5001, seqs[8])
    data(0.030, 9, sent[9])
    c.seg(0.0301, "B", 5001, seqs[9])  # lost on its way back to A
    data(0.031, 10, sent[10])
    c.seg(0.0311, "B", 5001, seqs[10])  # lost too
    data(0.240, 9, next(ids))  # A's timer: a copy B already has
    c.seg(0.2401, "B", 5001, seqs[10], sack=((seqs[8], seqs[9]),))  # D-SACK
    c.seg(0.250, "A", seqs[10], 5001, "FA")
    c.seg(0.2501, "B", 5001, seqs[10] + 1, "FA")
    c.seg(0.253, "A", seqs[10] + 1, 5002)
    return c


def test_reordering_at_the_receiver_is_not_a_retransmission(tmp_path):
    v = _view(_write(tmp_path, _reordering_and_loss()))
    s = summarize(v.events, v.left, v.right)[_sender(v)]
    assert s.retransmissions == 2  # segment 7's resend and segment 9's
    assert s.out_of_order == 1  # segment 3
    assert s.data_bytes == 10 * MSS  # every byte A sent, the one never seen here included
    assert s.spurious == 1  # segment 9's resend, by the D-SACK
    assert s.not_captured == {"lost before this point": MSS}  # segment 7, not the late segment 3
    late = [e for e in v.events if e["type"] == "send" and e.get("note", "").startswith("out-of-order")]
    assert [e["seq"] for e in late] == [1001 + 2 * MSS]


def test_no_segment_this_capture_holds_is_drawn_lost_in_it(tmp_path):
    """Segment 9's first copy is in the receiver's capture (it arrived): never marked lost; segment 7,
    which this capture lacks, is drawn as not seen at this capture point, and the legend says so."""
    v = _view(_write(tmp_path, _reordering_and_loss()))
    assert not [e for e in v.events if e["type"] == "drop"]
    unseen = [e for e in v.events if e["type"] == "unseen"]
    assert [(e["seq"], e["len"], e["fate"]) for e in unseen] == [(1001 + 6 * MSS, MSS, "lost before this point")]
    text = render_ladder(v.events, v.left, v.right)
    assert "lost (" not in text
    assert "seq=6001 len=1000" in text and "not seen at this capture point (lost before this point)" in text
    assert text.splitlines()[-1].startswith("X not seen at this capture point:")


def test_a_resend_proved_needless_by_d_sack_unmarks_the_original(tmp_path):
    """At the sender: segment 2 goes, its ACK is lost, the timer resends it, the receiver D-SACKs the
    resend. The first copy arrived: not lost. Segment 3's first copy never got an ACK or SACK, its
    resend no D-SACK: lost beyond this point."""
    c = Conversation()
    c.handshake()
    c.seg(0.010, "A", 1001, 5001, n=MSS)
    c.seg(0.013, "B", 5001, 2001)
    c.seg(0.014, "A", 2001, 5001, n=MSS)  # arrives; B's ACK is lost
    c.seg(0.015, "A", 3001, 5001, n=MSS)  # lost
    c.seg(0.230, "A", 2001, 5001, n=MSS)  # the timer
    c.seg(0.233, "B", 5001, 3001, sack=((2001, 3001),))  # D-SACK: a duplicate
    c.seg(0.234, "A", 3001, 5001, n=MSS)
    c.seg(0.237, "B", 5001, 4001)
    v = _view(_write(tmp_path, c))
    lost = [e["seq"] for e in v.events if e["type"] == "drop"]
    assert lost == [3001]
    s = summarize(v.events, v.left, v.right)[_sender(v)]
    assert s.spurious == 1 and s.lost_beyond == 1 and s.by_cause["rto"] == 1
    text = render_ladder(v.events, v.left, v.right)
    marked = [ln for ln in text.splitlines() if ln.endswith("| lost (not received)")]
    assert len(marked) == 1 and "seq=2001" in marked[0]  # relative: segment 3
    assert text.splitlines()[-1].startswith("X lost (not received): seen here, but the peer's ACKs")


def test_an_acked_segment_the_capture_missed_is_not_network_loss(tmp_path):
    """tshark's "ACKed unseen segment": the receiver acknowledges data this capture never showed. It
    was not lost in the network; the capture missed it."""
    c = Conversation()
    c.handshake()
    c.seg(0.010, "A", 1001, 5001, n=MSS)
    c.seg(0.012, "A", 3001, 5001, n=MSS)  # 2001 was sent, the capture did not get it
    c.seg(0.013, "B", 5001, 4001)
    v = _view(_write(tmp_path, c))
    s = summarize(v.events, v.left, v.right)
    assert s[v.left].not_captured == {"not captured (ACKed)": MSS} and s[v.left].retransmissions == 0
    assert s[v.left].lost_beyond == 0


def test_summary_json_parses_and_says_what_the_text_says(tmp_path, capsys):
    path = _write(tmp_path, _reordering_and_loss())
    assert main(["trace", path, "--summary", "--json", "--interval", "0.1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (conn,) = doc["connections"]
    a = conn["directions"]["198.51.100.1:40000"]
    assert a["retransmissions"] == 2 and a["out_of_order"] == 1 and a["spurious"] == 1
    assert a["by_cause"]["rto"] + a["by_cause"]["fast"] + a["by_cause"]["tlp"] + a["by_cause"]["after-rto"] == 2
    assert doc["capture"]["first_packet"]["iso"].startswith("2023-11-14T")  # the capture's own clock
    assert conn["start"]["unix"] == doc["capture"]["first_packet"]["unix"]
    rows = conn["intervals"]
    assert [r["start"] for r in rows] == [0.0, 0.1, 0.2]
    assert sum(r["198.51.100.1:40000"]["bytes"] for r in rows) == 11 * MSS  # payload captured: 9 originals, 2 resends
    assert sum(r["198.51.100.1:40000"]["retransmissions"] for r in rows) == 2
    assert main(["trace", path, "--json"]) == 2 and "go with --summary" in capsys.readouterr().err


def test_a_cut_short_file_is_reported_and_fails(tmp_path, capsys):
    c = _reordering_and_loss()
    path = tmp_path / "cut.pcap"
    path.write_bytes(c.pcap()[:-300])  # stopped in the middle of a packet
    assert main(["trace", str(path), "--summary"]) == 1
    err = capsys.readouterr().err
    assert "cut short in the middle of a packet" in err


def test_a_snap_length_that_cuts_options_or_headers_is_reported(tmp_path, capsys):
    c = _reordering_and_loss()
    assert main(["trace", _write(tmp_path, c, "s48.pcap", snaplen=48), "--summary"]) == 0  # IP 20 + TCP 20 + 8
    err = capsys.readouterr().err
    assert "snap length (48 bytes) cut the TCP options of 3 packets" in err  # the three with SACK blocks
    assert "SACK" in err
    assert main(["trace", _write(tmp_path, c, "s30.pcap", snaplen=30), "--summary"]) == 1
    err = capsys.readouterr().err
    assert f"cut the TCP header of {len(c.frames)} packets" in err and "no TCP connections" in err


def test_the_png_plots_the_rtt_samples_the_summary_counts(tmp_path):
    """Issue 23, defect 5: the cc plot drew samples up to ~240 ms where the summary said max 22 ms. A
    segment sent after one that is lost is ACKed only once the hole is filled: no sample (Karn's rule
    as the summary applies it), in the plot as in the summary."""
    from tcpwave.views.plots import capture_rtt_samples

    c = Conversation()
    c.handshake()
    c.seg(0.010, "A", 1001, 5001, n=MSS)
    c.seg(0.013, "B", 5001, 2001)
    c.seg(0.014, "A", 2001, 5001, n=MSS)  # lost
    c.seg(0.015, "A", 3001, 5001, n=MSS)
    c.seg(0.018, "B", 5001, 2001, sack=((3001, 4001),))
    c.seg(0.230, "A", 2001, 5001, n=MSS)  # the timer
    c.seg(0.233, "B", 5001, 4001)
    v = _view(_write(tmp_path, c))
    s = summarize(v.events, v.left, v.right)[v.left]
    plotted = capture_rtt_samples(v.events, v.left)
    assert [round(x, 6) for _, x in plotted] == [round(x, 6) for x in s.rtt] == [0.003]
