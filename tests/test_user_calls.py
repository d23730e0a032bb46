"""User calls CLOSE and ABORT (RFC 9293 §3.10.4, §3.10.5) and misuse errors that name the state."""

from helpers import PLAIN, established, expect_one, fin_wait_1, time_wait

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.wire.seq import seq_add


def test_close_with_unread_data_sends_rst():
    p = established()
    p.deliver("P.", payload=b"unread")
    p.peer_nxt = seq_add(p.peer_nxt, 6)
    out = p.call("close")
    expect_one(out, "R.", seq=p.our_nxt)
    assert p.state == "CLOSED"
    assert ev.Closed(ev.ABORTED) in p.events()


def test_close_flushes_queued_data_before_fin():
    p = established()
    p.deliver(".", window=1000)
    p.call("send", b"d" * 2500)
    assert p.call("close") == []  # window full: the FIN waits behind the data
    assert p.state == "FIN_WAIT_1"
    out = p.deliver(".", ack=p.our_nxt, window=5000)
    assert [len(s.payload) for s in out] == [1460, 1040]  # (the small window was not worth using)
    assert out[-1].flags & 0x01  # FIN rides on the last data segment


def test_close_is_idempotent_once_closing_and_abort_sends_rst():
    p = fin_wait_1()
    assert p.call("close") == []  # no second FIN
    out = p.call("abort")
    expect_one(out, "R.")
    assert p.state == "CLOSED"


def test_misuse_raises_errors_that_name_the_state():
    import pytest
    from helpers import Peer

    from tcpwave.core.errors import StateError

    p = established()
    with pytest.raises(StateError, match="ESTABLISHED"):
        p.conn.connect(p.now)
    fresh = Peer(PLAIN)
    with pytest.raises(StateError, match="CLOSED"):
        fresh.conn.send(b"x", 0.0)
    with pytest.raises(StateError, match="CLOSED"):
        fresh.conn.close(0.0)


def test_calls_after_a_peer_reset_raise_connection_reset_error():
    import pytest

    p = established()
    p.deliver("R", seq=p.peer_nxt)
    with pytest.raises(ConnectionResetError):
        p.conn.send(b"x", p.now)
    with pytest.raises(ConnectionResetError):
        p.conn.receive(now=p.now)
    p.call("close")  # closing what is already gone is not an error
    assert p.sent[-1].flags != 0x04


def test_calls_after_refusal_and_timeout_raise_the_os_errors():
    import pytest
    from helpers import syn_sent

    p = syn_sent()
    p.deliver("R.", seq=0, ack=seq_add(p.iss, 1))
    with pytest.raises(ConnectionRefusedError):
        p.conn.send(b"x", p.now)
    p = syn_sent(Config(timestamps=False, window_scaling=False, sack=False, syn_retries=1))
    p.advance(100.0)
    with pytest.raises(TimeoutError):
        p.conn.receive(now=p.now)


def test_receive_after_a_normal_end_is_eof():
    p = time_wait()
    p.advance(p.now + 61.0)
    assert p.state == "CLOSED"
    assert p.conn.receive(now=p.now) == b""


def test_data_arriving_after_close_draws_rst():
    p = established()
    expect_one(p.call("close"), "F.")
    out = p.deliver("P.", payload=b"too late")
    rst = expect_one(out, "R")  # Linux's form: <SEQ=SEG.ACK><CTL=RST>
    assert rst.seq == p.our_nxt  # the ACK field of the segment it answers
    assert p.state == "CLOSED"
    assert ev.Closed(ev.ABORTED) in p.events()


def test_shutdown_keeps_receiving_where_close_would_reset():
    p = established()
    expect_one(p.call("shutdown"), "F.")
    p.deliver(".")  # our FIN is acknowledged: FIN_WAIT_2
    out = p.deliver("P.", payload=b"still welcome")
    p.peer_nxt = seq_add(p.peer_nxt, 13)
    expect_one(out, ".", ack=p.peer_nxt)
    p.call("receive")
    assert p.received == b"still welcome"
    p.call("shutdown")  # idempotent
    assert p.state == "FIN_WAIT_2"
