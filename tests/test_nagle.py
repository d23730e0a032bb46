"""Nagle's algorithm (RFC 9293 §3.7.4, Minshall's variant), TCP_NODELAY, PSH per write, and the
sender's silly-window avoidance (RFC 9293 §3.8.6.2.1)."""

from helpers import PLAIN, established, expect_one

from tcpwave.core.config import Config
from tcpwave.wire.tcp import PSH


def test_small_writes_coalesce_while_a_small_segment_is_unacknowledged():
    p = established()
    expect_one(p.call("send", b"a"), "P.", length=1)  # nothing in flight: goes at once
    assert p.call("send", b"b") == []  # one small segment is outstanding: hold
    assert p.call("send", b"c") == []
    out = p.deliver(".", ack=p.our_nxt)  # the first is acknowledged: the rest goes as one segment
    seg = expect_one(out, "P.", length=2)
    assert seg.payload == b"bc"


def test_nodelay_sends_every_small_write_at_once():
    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0, nodelay=True))
    for ch in b"abc":
        expect_one(p.call("send", bytes([ch])), "P.", length=1)


def test_nodelay_can_be_switched_per_connection():
    p = established()
    p.call("send", b"a")
    assert p.call("send", b"b") == []
    p.conn.nodelay = True
    expect_one(p.call("send", b"c"), "P.", length=2)


def test_the_tail_of_a_large_write_is_not_held():
    p = established()
    out = p.call("send", b"x" * 5000)
    assert [len(s.payload) for s in out] == [1460, 1460, 1460, 620]


def test_full_segments_are_not_delayed_by_nagle():
    p = established()
    p.call("send", b"a")
    out = p.call("send", b"y" * 3000)  # a small segment is outstanding, but full ones may go
    assert [len(s.payload) for s in out] == [1460, 1460]


def test_psh_marks_the_last_segment_of_each_write():
    p = established()
    out = p.call("send", b"z" * 3000)
    assert [bool(s.flags & PSH) for s in out] == [False, False, True]


def test_close_flushes_a_held_small_segment_with_the_fin():
    p = established()
    p.call("send", b"a")
    assert p.call("send", b"b") == []
    out = p.call("shutdown")
    seg = expect_one(out, "FP.", length=1)
    assert seg.payload == b"b"


def test_sender_sws_waits_for_half_the_max_window_or_the_override_timer():
    p = established()  # the largest window seen is the SYN,ACK's 65535
    p.deliver(".", window=1200)  # the window shrinks to a sliver
    assert p.call("send", b"q" * 50000) == []  # 1200 < 65535 / 2: not worth a segment yet
    out = p.fire_next_timer()
    assert p.now == 0.2 and sum(len(s.payload) for s in out) == 1200
    out = p.deliver(".", ack=p.our_nxt, window=33000)  # half the max window: no waiting
    assert out and all(len(s.payload) == 1460 for s in out)  # (how many: the congestion window's call)


def test_plain_fixture_has_nagle_on():
    assert not PLAIN.nodelay
