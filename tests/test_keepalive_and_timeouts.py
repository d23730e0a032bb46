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
