"""SYN_SENT (RFC 9293 §3.10.7.3) and simultaneous open."""

from helpers import expect_ack, expect_one, syn_sent

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.wire.seq import seq_add


def test_connect_sends_syn_with_mss():
    p = syn_sent()
    syn = p.sent[0]
    assert syn.ack == 0 and syn.options.mss == 1460 and not syn.payload
    assert p.states() == [("CLOSED", "SYN_SENT")]


def test_syn_ack_establishes_and_is_acked():
    p = syn_sent()
    p.peer_nxt = seq_add(p.peer_iss, 1)
    out = p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1))
    expect_ack(p, out)
    assert p.state == "ESTABLISHED"
    assert ev.Connected() in p.events()


def test_syn_ack_with_bad_ack_draws_rst_and_changes_nothing():
    p = syn_sent()
    for bad in (p.iss, seq_add(p.iss, 2), seq_add(p.iss, -100)):
        out = p.deliver("S.", seq=p.peer_iss, ack=bad)
        expect_one(out, "R", seq=bad)
        assert p.state == "SYN_SENT"


def test_rst_ack_acknowledging_the_syn_means_refused():
    p = syn_sent()
    assert p.deliver("R.", seq=0, ack=seq_add(p.iss, 1)) == []
    assert p.state == "CLOSED"
    assert p.events() == [ev.Closed(ev.REFUSED)]
    assert p.conn.next_timer() is None


def test_rst_without_ack_is_ignored():
    p = syn_sent()
    assert p.deliver("R", seq=0, ack=0) == []
    assert p.state == "SYN_SENT"
    assert "rst_without_ack" in p.drops()


def test_rst_with_unacceptable_ack_is_ignored_without_reply():
    p = syn_sent()
    assert p.deliver("R.", seq=0, ack=seq_add(p.iss, 9)) == []
    assert p.state == "SYN_SENT"


def test_bare_syn_is_simultaneous_open():
    p = syn_sent()
    out = p.deliver("S", seq=p.peer_iss)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    expect_one(out, "S.", seq=p.iss, ack=p.peer_nxt)  # the same ISS, now with an ACK
    assert p.states() == [("CLOSED", "SYN_SENT"), ("SYN_SENT", "SYN_RCVD")]
    # the peer's SYN,ACK completes it: its SYN is old, its ACK is new
    out = p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1))
    assert p.state == "ESTABLISHED"
    assert p.states()[-1] == ("SYN_RCVD", "ESTABLISHED")


def test_simultaneous_open_rst_means_refused():
    p = syn_sent()
    p.deliver("S", seq=p.peer_iss)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    assert p.deliver("R", seq=p.peer_nxt) == []
    assert p.state == "CLOSED"
    assert ev.Closed(ev.REFUSED) in p.events()


def test_syn_is_retransmitted_at_1_2_4_seconds_then_times_out():
    """RFC 6298's doubling, with Linux's linear timeouts turned off (syn_linear_timeouts=0)."""
    p = syn_sent(Config(timestamps=False, window_scaling=False, sack=False, syn_retries=4, syn_linear_timeouts=0))
    times = []
    while p.conn.next_timer() is not None:
        out = p.fire_next_timer()
        if out:
            expect_one(out, "S", seq=p.iss)
            times.append(p.now)
    assert times == [1.0, 3.0, 7.0, 15.0]  # gaps 1, 2, 4, 8 s
    assert p.now == 31.0
    assert p.state == "CLOSED"
    assert p.events() == [ev.Closed(ev.TIMED_OUT)]


def test_syn_retransmissions_are_linear_then_double_and_give_up_as_linux():
    """Linux 6.7+ (checked with packetdrill --kernel, open-syn-retransmit-backoff.pkt): four
    retransmissions 1 s apart, then doubling; up to syn_retries + 4 of them, and no longer than
    syn_retries doublings of 1 s take."""
    p = syn_sent()
    times = []
    while p.conn.next_timer() is not None:
        if p.fire_next_timer():
            times.append(p.now)
    assert times == [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 11.0, 19.0, 35.0, 67.0]
    assert p.now == 131.0 and p.state == "CLOSED"
    p = syn_sent(Config(syn_retries=2))
    while p.conn.next_timer() is not None:
        p.fire_next_timer()
    assert p.now == 7.0  # (2 << 2) - 1 seconds: the time limit comes first


def test_karn_no_rtt_sample_from_a_retransmitted_syn():
    p = syn_sent(Config(syn_linear_timeouts=0))
    p.fire_next_timer()  # SYN retransmitted at t=1, RTO backed off to 2 s
    assert p.conn.rto == 2.0
    p.advance(1.5)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1))
    assert p.conn.srtt is None  # the ACK may belong to either SYN: no sample
    assert p.conn.rto == 3.0  # RFC 6298 (5.7): data starts with a 3 s RTO after a SYN timeout


def test_rtt_sample_from_an_unretransmitted_syn():
    p = syn_sent()
    p.advance(0.25)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1))
    assert p.conn.srtt == 0.25
    assert p.conn.rto == 0.75  # 0.25 + 4 * 0.125 (above the 0.2 s minimum)


def test_close_in_syn_sent_just_closes():
    p = syn_sent()
    assert p.call("close") == []
    assert p.state == "CLOSED"
    assert p.conn.next_timer() is None
