"""CLOSE_WAIT and LAST_ACK: the passive closer's side (RFC 9293 §3.6, §3.10.7.4)."""

from helpers import close_wait, expect_one, last_ack

from tcpwave.core import events as ev


def test_close_wait_can_still_send():
    p = close_wait()
    out = p.call("send", b"still talking")
    expect_one(out, "P.", length=13)


def test_last_ack_retransmits_fin_and_closes_on_ack():
    p = last_ack()
    fin = p.sent[-1]
    expect_one(p.fire_next_timer(), "F.", seq=fin.seq)
    assert p.deliver(".") == []
    assert p.state == "CLOSED"
    assert p.states()[-1] == ("LAST_ACK", "CLOSED")
    assert ev.Closed(ev.NORMAL) in p.events()


def test_last_ack_closes_on_rst():
    p = last_ack()
    assert p.deliver("R", seq=p.peer_nxt) == []
    assert p.state == "CLOSED"
    assert ev.Closed(ev.RESET) in p.events()
