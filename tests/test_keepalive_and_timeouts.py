"""Keep-alive (RFC 9293 §3.8.4) and the user timeout (RFC 5482 semantics)."""

import pytest
from helpers import established, expect_one

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.wire.seq import seq_add


def cfg(**kw) -> Config:
    return Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0, **kw)


def test_keepalive_is_off_by_default():
    p = established(cfg())
    assert p.conn.next_timer() is None
    assert p.advance(100_000.0) == []


def test_first_probe_after_the_idle_time_with_seq_snd_nxt_minus_one():
    p = established(cfg(keepalive=True))
    assert p.conn.next_timer() == 7200.0  # the default idle time: two hours (MUST-28)
    probe = expect_one(p.fire_next_timer(), ".", seq=seq_add(p.our_nxt, -1), length=0)
    assert probe.ack == p.peer_nxt


def test_an_answered_probe_keeps_the_connection():
    p = established(cfg(keepalive=True, keepalive_idle=60.0, keepalive_interval=10.0, keepalive_count=3))
    for _ in range(5):
        expect_one(p.fire_next_timer(), ".")
        p.deliver(".")  # the peer answers: idle again from now
        assert p.conn.next_timer() == pytest.approx(p.now + 60.0)
    assert p.state == "ESTABLISHED"


def test_unanswered_probes_drop_the_connection_after_the_count():
    p = established(cfg(keepalive=True, keepalive_idle=60.0, keepalive_interval=10.0, keepalive_count=3))
    times = []
    while p.state == "ESTABLISHED":
        out = p.fire_next_timer()
        times.append((p.now, [s.flags for s in out]))
    assert [t for t, _ in times] == [60.0, 70.0, 80.0, 90.0]
    assert times[-1][1] == [0x14]  # RST,ACK once the count is exhausted
    assert ev.Closed(ev.TIMED_OUT) in p.events()


def test_no_keepalive_probe_while_data_is_outstanding():
    p = established(cfg(keepalive=True, keepalive_idle=5.0, data_retries=20))
    p.call("send", b"pending")
    out = p.advance(7.0)
    assert out  # the data was retransmitted meanwhile (RTO 0.2 s, doubling)...
    assert all(len(s.payload) == 7 for s in out)  # ...and nothing else went: no keep-alive probe


def test_keepalive_can_be_switched_on_per_connection():
    p = established(cfg())
    p.call("set_keepalive", True)
    assert p.conn.next_timer() == 7200.0
    p.call("set_keepalive", False)
    assert p.conn.next_timer() is None


def test_user_timeout_can_be_set_per_connection():
    p = established(cfg())
    p.call("set_user_timeout", 2.0)
    p.call("send", b"z")
    p.advance(2.0)
    assert p.state == "CLOSED"


def test_user_timeout_aborts_when_sent_data_stays_unacknowledged():
    p = established(cfg(user_timeout=5.0))
    p.call("send", b"x" * 100)
    p.advance(4.9)
    assert p.state == "ESTABLISHED"
    p.advance(5.0)
    assert p.state == "CLOSED"
    assert ev.Closed(ev.TIMED_OUT) in p.events()


def test_user_timeout_clock_restarts_with_progress():
    p = established(cfg(user_timeout=5.0))
    p.call("send", b"x" * 100)
    p.advance(4.0)
    p.deliver(".", ack=p.our_nxt)  # acknowledged: nothing outstanding, no clock
    p.advance(9.0)
    p.call("send", b"y" * 100)
    p.advance(13.9)
    assert p.state == "ESTABLISHED"
    p.advance(14.0)
    assert p.state == "CLOSED"


def _zero_window_with_data_in_flight(**kw):
    p = established(cfg(data_retries=3, **kw))
    p.call("send", b"d" * 1000)
    una = seq_add(p.our_nxt, -1000)
    p.deliver(".", ack=una, window=0)  # the peer shuts its window on the data in flight
    return p, una


def test_a_zero_window_on_data_in_flight_outlasts_data_retries_while_the_peer_answers():
    """RFC 9293 §3.8.6.1 (and Linux's zero-window branch of tcp_retransmit_timer): the
    retransmissions into a shut window are probes; the peer answering them keeps the connection,
    however far past R2 (data_retries=3: 3 s from the first retransmission) they go."""
    p, una = _zero_window_with_data_in_flight()
    sent = []
    for step in range(1, 41):  # the peer answers every 0.5 s, its window still shut
        sent += p.advance(step * 0.5)
        p.deliver(".", ack=una, window=0)
    assert p.state == "ESTABLISHED"
    assert sum(1 for s in sent if s.payload) >= 4  # the probes went on (RTO backing off)
    assert not any(s.flags & 0x04 for s in sent)
    p.deliver(".", ack=p.our_nxt, window=65535)  # the window opens with the data acknowledged
    p.advance(40.0)
    assert p.state == "ESTABLISHED"


def test_a_zero_window_on_data_in_flight_ends_once_the_peer_falls_silent():
    """Silent for twice the maximum RTO (Linux: 2 x TCP_RTO_MAX), the peer is gone."""
    p, _ = _zero_window_with_data_in_flight(rto_max=2.0)
    p.advance(3.9)
    assert p.state == "ESTABLISHED"
    p.advance(10.0)
    assert p.state == "CLOSED" and ev.Closed(ev.TIMED_OUT) in p.events()


def test_user_timeout_replaces_the_keepalive_count():
    """As Linux's tcp_keepalive_timer: with TCP_USER_TIMEOUT set, failed keep-alive probing ends (RST)
    at the first probe due once nothing has been heard for the user timeout, whatever the count."""
    p = established(cfg(keepalive=True, keepalive_idle=2.0, keepalive_interval=1.0, keepalive_count=9))
    p.call("set_user_timeout", 2.5)
    [probe] = p.advance(2.0)
    assert probe.flags == 0x10
    [rst] = p.advance(3.0)
    assert rst.flags == 0x14 and p.state == "CLOSED"
    assert ev.Closed(ev.TIMED_OUT) in p.events()


def test_user_timeout_ends_zero_window_probing_even_when_answered():
    """As Linux (icsk_probes_tstamp): a window shut for the user timeout, counted from the first
    probe, ends the connection although the peer answers every probe; no RST (the peer is there)."""
    p = established(cfg(user_timeout=3.0))
    p.deliver(".", window=0)
    p.call("send", b"w" * 100)
    first = p.conn.next_timer()
    out = []
    while p.state == "ESTABLISHED" and p.now < 60:
        out += p.fire_next_timer()
        p.deliver(".", window=0)  # answered, still shut
    assert p.state == "CLOSED" and p.now == pytest.approx(first + 3.0)
    assert ev.Closed(ev.TIMED_OUT) in p.events()
    assert out and not any(s.flags & 0x04 for s in out)
