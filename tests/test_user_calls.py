"""User calls CLOSE and ABORT (RFC 9293 §3.10.4, §3.10.5) and misuse errors that name the state."""

from helpers import (PLAIN, established, expect_one, fin_wait_1)

from tcpwave.core import events as ev
from tcpwave.seq import seq_add


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
