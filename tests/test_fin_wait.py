"""FIN_WAIT_1, FIN_WAIT_2 and CLOSING: the active closer's side of the waves (RFC 9293 §3.6)."""

from helpers import closing, expect_ack, expect_one, fin_wait_1, fin_wait_2

from tcpwave.wire.seq import seq_add


def test_fin_wait_1_ack_of_fin_goes_to_fin_wait_2():
    p = fin_wait_1()
    assert p.deliver(".") == []
    assert p.states()[-1] == ("FIN_WAIT_1", "FIN_WAIT_2")


def test_fin_wait_1_fin_goes_to_closing():
    p = fin_wait_1()
    out = p.deliver("F.", ack=seq_add(p.our_nxt, -1))
    p.peer_nxt = seq_add(p.peer_nxt, 1)
    expect_ack(p, out)
    assert p.states()[-1] == ("FIN_WAIT_1", "CLOSING")


def test_fin_wait_1_fin_ack_goes_straight_to_time_wait():
    p = fin_wait_1()
    out = p.deliver("F.")  # acknowledges our FIN and carries the peer's
    p.peer_nxt = seq_add(p.peer_nxt, 1)
    expect_ack(p, out)
    assert p.states()[-1] == ("FIN_WAIT_1", "TIME_WAIT")
    assert ("FIN_WAIT_1", "FIN_WAIT_2") not in p.states()


def test_fin_wait_1_retransmits_fin():
    p = fin_wait_1()
    fin = p.sent[-1]
    out = p.fire_next_timer()
    expect_one(out, "F.", seq=fin.seq)


def test_fin_wait_2_still_receives_data():
    p = fin_wait_2()
    out = p.deliver("P.", payload=b"more for you")
    p.peer_nxt = seq_add(p.peer_nxt, 12)
    expect_ack(p, out)
    p.call("receive")
    assert p.received == b"more for you"
    assert p.state == "FIN_WAIT_2"


def test_send_after_close_raises_naming_the_state():
    import pytest

    from tcpwave.core.errors import StateError

    p = fin_wait_2()
    with pytest.raises(StateError, match="FIN_WAIT_2"):
        p.conn.send(b"late", p.now)


def test_closing_ack_goes_to_time_wait():
    p = closing()
    assert p.deliver(".") == []
    assert p.states()[-1] == ("CLOSING", "TIME_WAIT")
