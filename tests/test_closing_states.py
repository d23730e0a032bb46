"""FIN_WAIT_1, FIN_WAIT_2, CLOSING, CLOSE_WAIT, LAST_ACK and TIME_WAIT (RFC 9293 §3.6, §3.10.7.4)."""

from helpers import (PLAIN, close_wait, closing, expect_ack, expect_one, fin_wait_1, fin_wait_2, last_ack,
                     time_wait)

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.seq import seq_add


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


def test_close_with_unread_data_sends_rst():
    from helpers import established

    p = established()
    p.deliver("P.", payload=b"unread")
    p.peer_nxt = seq_add(p.peer_nxt, 6)
    out = p.call("close")
    expect_one(out, "R.", seq=p.our_nxt)
    assert p.state == "CLOSED"
    assert ev.Closed(ev.ABORTED) in p.events()


def test_close_flushes_queued_data_before_fin():
    from helpers import established

    p = established()
    p.deliver(".", window=1000)
    p.call("send", b"d" * 2500)
    assert p.call("close") == []  # window full: the FIN waits behind the data
    assert p.state == "FIN_WAIT_1"
    out = p.deliver(".", ack=p.our_nxt, window=5000)
    assert [len(s.payload) for s in out] == [1460, 40]
    assert out[-1].flags & 0x01  # FIN rides on the last data segment


def test_close_is_idempotent_once_closing_and_abort_sends_rst():
    p = fin_wait_1()
    assert p.call("close") == []  # no second FIN
    out = p.call("abort")
    expect_one(out, "R.")
    assert p.state == "CLOSED"


def test_misuse_raises_errors_that_name_the_state():
    import pytest

    from helpers import Peer, established

    from tcpwave.core.errors import StateError

    p = established()
    with pytest.raises(StateError, match="ESTABLISHED"):
        p.conn.connect(p.now)
    fresh = Peer(PLAIN)
    with pytest.raises(StateError, match="CLOSED"):
        fresh.conn.send(b"x", 0.0)
    with pytest.raises(StateError, match="CLOSED"):
        fresh.conn.close(0.0)
