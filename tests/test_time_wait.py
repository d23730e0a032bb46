"""TIME_WAIT: 2 x MSL, re-ACKing a retransmitted FIN, RST (RFC 1337), reopening (RFC 9293 §3.6.1)."""

from helpers import expect_ack, time_wait

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.wire.seq import seq_add


def test_time_wait_lasts_two_msl_then_closes():
    p = time_wait(Config(timestamps=False, window_scaling=False, sack=False, msl=10.0))
    entered = p.now
    assert p.conn.next_timer() == entered + 20.0
    assert p.advance(entered + 19.9) == []
    assert p.state == "TIME_WAIT"
    p.advance(entered + 20.0)
    assert p.state == "CLOSED"
    assert ev.Closed(ev.NORMAL) in p.events()


def test_time_wait_reacks_retransmitted_fin_and_restarts_the_timer():
    p = time_wait()
    p.advance(40.0)
    out = p.deliver("F.", seq=seq_add(p.peer_nxt, -1))
    expect_ack(p, out)
    assert p.conn.next_timer() == 40.0 + 60.0
    assert p.state == "TIME_WAIT"


def test_a_bare_ack_restarts_time_wait_and_draws_nothing_as_linux():
    p = time_wait()
    p.advance(40.0)
    assert p.deliver(".") == []  # at RCV.NXT, no data: Linux's tcp_timewait_state_process() is silent
    assert p.conn.next_timer() == 40.0 + 60.0 and p.state == "TIME_WAIT"


def test_data_and_old_duplicates_in_time_wait_are_acked_rate_limited_as_linux():
    p = time_wait()
    p.advance(1.0)
    expect_ack(p, p.deliver("P.", payload=b"late"))  # text after the FIN: ACKed (and ignored)
    assert p.conn.next_timer() == 1.0 + 60.0
    p.advance(1.1)
    assert p.deliver(".", seq=seq_add(p.peer_nxt, -5)) == []  # within tcp_invalid_ratelimit: no second ACK
    p.advance(1.7)
    expect_ack(p, p.deliver(".", seq=seq_add(p.peer_nxt, -5)))


def test_a_rst_not_at_rcv_nxt_is_ignored_without_a_challenge_ack_as_linux():
    p = time_wait()
    assert p.deliver("R", seq=seq_add(p.peer_nxt, 100)) == []
    assert p.state == "TIME_WAIT"


def test_time_wait_rst_closes_unless_rfc1337():
    p = time_wait()
    p.events()
    p.deliver("R", seq=p.peer_nxt)
    assert p.state == "CLOSED"
    assert p.events() == [ev.Closed(ev.NORMAL)]  # everything was already delivered both ways
    assert p.states()[-1] == ("TIME_WAIT", "CLOSED")
    p = time_wait(Config(timestamps=False, window_scaling=False, sack=False, rfc1337=True))
    assert p.deliver("R", seq=p.peer_nxt) == []
    assert p.state == "TIME_WAIT"


def test_time_wait_accepts_only_a_newer_syn_for_reopening():
    from tcpwave.wire.tcp import SYN, Segment

    p = time_wait()
    newer = Segment(40000, 80, seq_add(p.peer_nxt, 1000), 0, SYN, 65535)
    older = Segment(40000, 80, seq_add(p.peer_nxt, -1000), 0, SYN, 65535)
    assert p.conn.time_wait_accepts(newer)
    assert not p.conn.time_wait_accepts(older)
