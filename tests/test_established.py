"""ESTABLISHED: sequence checks, RFC 5961 hardening, text delivery, FIN (RFC 9293 §3.10.7.4)."""

import pytest
from helpers import PD_ACCEPTED, established, expect_ack, expect_one

from tcpwave.core import events as ev
from tcpwave.packetdrill import run_text
from tcpwave.wire.seq import seq_add


def test_exact_rst_resets():
    p = established()
    assert p.deliver("R", seq=p.peer_nxt) == []
    assert p.state == "CLOSED"
    assert ev.Closed(ev.RESET) in p.events()
    assert p.states()[-1] == ("ESTABLISHED", "CLOSED")


def test_in_window_rst_draws_challenge_ack():
    p = established()
    out = p.deliver("R", seq=seq_add(p.peer_nxt, 100))
    expect_ack(p, out)
    assert p.state == "ESTABLISHED"
    assert "rst_not_exact_challenge_ack" in p.drops()


def test_out_of_window_rst_is_dropped_silently():
    p = established()
    assert p.deliver("R", seq=seq_add(p.peer_nxt, 1 << 20)) == []
    assert p.deliver("R", seq=seq_add(p.peer_nxt, -10)) == []
    assert p.state == "ESTABLISHED"
    assert p.drops() == ["rst_out_of_window", "rst_out_of_window"]


def test_syn_draws_challenge_ack_whatever_its_sequence_number():
    for offset in (0, 500, -5000):
        p = established()
        out = p.deliver("S", seq=seq_add(p.peer_nxt, offset))
        expect_ack(p, out)
        assert p.state == "ESTABLISHED"


def test_ack_above_snd_nxt_is_answered_and_dropped():
    p = established()
    out = p.deliver("P.", ack=seq_add(p.our_nxt, 10), payload=b"nope")
    expect_ack(p, out)  # the ACK does not cover the 4 bytes: they were dropped
    assert p.conn.readable == 0
    assert "ack_above_snd_nxt" in p.drops()


def test_ack_far_below_snd_una_is_answered_and_dropped():
    p = established()
    out = p.deliver("P.", ack=seq_add(p.our_nxt, -(1 << 20)), payload=b"old ack")
    expect_ack(p, out)
    assert p.conn.readable == 0
    assert "ack_below_window" in p.drops()


def test_data_is_acked_and_delivered_in_order():
    p = established()
    out = p.deliver("P.", payload=b"hello")
    p.peer_nxt = seq_add(p.peer_nxt, 5)
    expect_ack(p, out)
    assert ev.DataReadable(5) in p.events()
    p.call("receive")
    assert p.received == b"hello"


def test_old_duplicate_data_is_reacked_and_not_delivered_again():
    p = established()
    start = p.peer_nxt
    p.deliver("P.", payload=b"hello")
    p.peer_nxt = seq_add(start, 5)
    out = p.deliver("P.", seq=start, payload=b"hello")
    expect_ack(p, out)
    assert "out_of_window" in p.drops()
    p.call("receive")
    assert p.received == b"hello"


def test_data_straddling_rcv_nxt_delivers_only_new_bytes():
    p = established()
    start = p.peer_nxt
    p.deliver("P.", payload=b"hello")
    out = p.deliver("P.", seq=seq_add(start, 3), payload=b"lo, world")
    p.peer_nxt = seq_add(start, 12)
    expect_ack(p, out)
    p.call("receive")
    assert p.received == b"hello, world"


def test_out_of_order_data_is_held_then_delivered_when_the_gap_fills():
    p = established()
    start = p.peer_nxt
    out = p.deliver("P.", seq=seq_add(start, 5), payload=b" world")
    expect_one(out, ".", ack=start)  # immediate duplicate ACK for the hole
    assert p.conn.readable == 0
    out = p.deliver("P.", seq=start, payload=b"hello")
    expect_one(out, ".", ack=seq_add(start, 11))
    p.call("receive")
    assert p.received == b"hello world"


def test_data_beyond_the_window_is_not_accepted():
    p = established()
    out = p.deliver("P.", seq=seq_add(p.peer_nxt, 10_000_000), payload=b"far")
    expect_ack(p, out)
    assert "out_of_window" in p.drops()


def test_segment_without_ack_is_dropped():
    p = established()
    assert p.deliver("P", payload=b"no ack bit") == []
    assert p.conn.readable == 0
    assert "no_ack" in p.drops()


def test_fin_moves_to_close_wait_with_end_of_stream():
    p = established()
    out = p.deliver("FP.", payload=b"bye")
    p.peer_nxt = seq_add(p.peer_nxt, 4)
    expect_ack(p, out)
    assert p.state == "CLOSE_WAIT"
    events = p.events()
    assert events.index(ev.DataReadable(3)) < events.index(ev.EndOfStream())


def test_out_of_order_fin_waits_for_the_data_before_it():
    p = established()
    start = p.peer_nxt
    out = p.deliver("F.", seq=seq_add(start, 4))
    expect_one(out, ".", ack=start)
    assert p.state == "ESTABLISHED"
    out = p.deliver("P.", seq=start, payload=b"data")
    expect_one(out, ".", ack=seq_add(start, 5))
    assert p.state == "CLOSE_WAIT"


def test_ack_advances_and_stops_the_retransmission_timer():
    p = established()
    expect_one(p.call("send", b"x" * 100), "P.", length=100)
    assert p.conn.next_timer() == 0.2  # the handshake took no time: the RTO is its 0.2 s minimum
    assert p.deliver(".", ack=p.our_nxt) == []
    assert p.conn.next_timer() is None


def test_data_is_retransmitted_on_timeout_with_backoff():
    p = established()
    first = expect_one(p.call("send", b"abc"), "P.", length=3)
    out = p.fire_next_timer()
    again = expect_one(out, "P.", seq=first.seq, length=3)
    assert bytes(again.payload) == b"abc"
    assert p.now == 0.2  # the minimum RTO (as Linux)
    p.fire_next_timer()
    assert p.now == pytest.approx(0.6)  # doubled: 0.4 s later


def test_data_retransmissions_exhausted_time_out():
    from tcpwave.core.config import Config

    p = established(Config(timestamps=False, window_scaling=False, sack=False, data_retries=3))
    p.call("send", b"abc")
    while p.conn.next_timer() is not None:
        p.fire_next_timer()
    assert p.state == "CLOSED"
    assert ev.Closed(ev.TIMED_OUT) in p.events()


def test_large_send_is_segmented_by_mss():
    p = established()
    out = p.call("send", b"y" * 5000)
    assert [len(s.payload) for s in out] == [1460, 1460, 1460, 620]
    assert [s.flags & 0x08 != 0 for s in out] == [False, False, False, True]  # PSH on the last


def test_send_respects_the_peers_window():
    p = established()
    p.deliver(".", window=1000)
    assert p.call("send", b"z" * 3000) == []  # sender SWS: 1000 bytes is under half the max window
    out = p.fire_next_timer()  # ...until the override timer runs out
    assert p.now == 0.2
    assert sum(len(s.payload) for s in out) == 1000
    out = p.deliver(".", ack=p.our_nxt, window=40000)
    assert sum(len(s.payload) for s in out) == 2000


def test_zero_window_arms_persist_probe_and_resumes_on_update():
    p = established()
    p.deliver(".", window=0)
    assert p.call("send", b"w" * 100) == []
    out = p.fire_next_timer()
    probe = expect_one(out, ".", seq=seq_add(p.our_nxt, -1), length=0)  # an old seq draws an ACK
    assert probe.ack == p.peer_nxt
    out = p.deliver(".", window=4000)
    assert sum(len(s.payload) for s in out) == 100


def test_send_space_event_when_a_full_buffer_drains():
    from tcpwave.core.config import Config

    p = established(Config(timestamps=False, window_scaling=False, sack=False, send_buffer=4000))
    assert p.conn.send(b"q" * 10000, p.now) == 4000
    p._collect()
    p.deliver(".", ack=p.our_nxt)
    assert any(isinstance(e, ev.SendSpace) for e in p.events())


INSECURE_SYN = "--rfc5961={on}\n" + PD_ACCEPTED + "+.1 < S 50:50(0) win 65535 <mss 1000>\n{answer}\n"


def test_rfc5961_off_resets_on_an_in_window_syn():
    """With rfc5961 off (FreeBSD's insecure_syn) an in-window SYN is an error (RFC 793's rule, kept in
    RFC 9293 for stacks without RFC 5961): RST,ACK at SND.NXT/RCV.NXT with window 0, and the
    application sees the reset. With it on (the default), the same SYN draws a challenge ACK."""
    off = run_text(INSECURE_SYN.format(on=0, answer="+0 > R. 1:1(0) ack 1 win 0\n"
                                                    "+0 read(4, ..., 10) = -1 ECONNRESET"), "t.pkt")
    assert off.ok, off.summary()
    on = run_text(INSECURE_SYN.format(on=1, answer="+0 > . 1:1(0) ack 1\n+0 read(4, ..., 10) = -1 EAGAIN"
                                      ).replace("accept(3, ..., ...) = 4\n", "accept(3, ..., ...) = 4\n"
                                                "+0 fcntl(4, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n"), "t.pkt")
    assert on.ok, on.summary()


def test_rfc5961_off_answers_an_out_of_window_syn_with_a_plain_ack():
    """Out of the window, with rfc5961 off, a SYN fails the sequence test like any segment: an ACK
    (no reset). A guard: the challenge ACK of the default looks the same on the wire."""
    r = run_text(INSECURE_SYN.format(on=0, answer="+0 > . 1:1(0) ack 1").replace(
        "< S 50:50(0)", "< S 900000:900000(0)"), "t.pkt")
    assert r.ok, r.summary()
