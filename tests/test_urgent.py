"""Urgent data (RFC 9293 §3.8.5: MUST-30, -31, -32, -33, -62), sent and received."""

from helpers import established, expect_one

from tcpwave.core import events as ev
from tcpwave.wire.seq import seq_add
from tcpwave.wire.tcp import URG


def test_urgent_send_sets_urg_with_a_pointer_past_the_urgent_data():
    p = established()
    seg = expect_one(p.call("send", b"!!", urgent=True), "P.U")
    assert seg.urgent == 2  # MUST-62: the octet following the urgent data
    p.deliver(".", ack=p.our_nxt)
    seg = expect_one(p.call("send", b"normal"), "P.")
    assert not seg.flags & URG  # acknowledged: urgent mode is over


def test_urgent_data_of_any_length_spans_segments():
    p = established()
    out = p.call("send", b"u" * 4000, urgent=True)
    assert all(s.flags & URG for s in out)
    assert [seq_add(s.seq, s.urgent) for s in out] == [seq_add(out[0].seq, 4000)] * 3  # one pointer (MUST-31)


def test_received_urgent_pointer_is_reported_and_counted_down_as_the_user_reads():
    p = established()
    p.deliver("P.U", payload=b"abcURGENT", urgent=9)
    p.peer_nxt = seq_add(p.peer_nxt, 9)
    assert ev.Urgent(9) in p.events()  # MUST-32: told asynchronously
    assert p.conn.urgent_pending == 9  # MUST-33: how much remains
    p.call("receive", 5)
    assert p.conn.urgent_pending == 4
    p.call("receive")
    assert p.conn.urgent_pending == 0
    assert p.received == b"abcURGENT"  # urgent data stays in the stream, in order


def test_urgent_pointer_never_recedes_and_only_advances_are_reported():
    p = established()
    p.deliver("P.U", payload=b"aaaa", urgent=4)
    p.peer_nxt = seq_add(p.peer_nxt, 4)
    p.events()
    p.deliver("P.U", payload=b"bb", urgent=0)  # points behind the earlier pointer: ignored
    p.peer_nxt = seq_add(p.peer_nxt, 2)
    assert not any(isinstance(e, ev.Urgent) for e in p.events())
    p.deliver("P.U", payload=b"cc", urgent=2)  # advances
    assert ev.Urgent(8) in p.events()
