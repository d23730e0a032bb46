"""SYN_RCVD (RFC 9293 §3.10.7.4; §3.5.3 on RST): ACK checks, RST, SYN,ACK retransmission."""

from helpers import expect_one, syn_rcvd

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.wire.seq import seq_add


def test_syn_rcvd_valid_ack_establishes():
    p = syn_rcvd()
    assert p.deliver(".") == []
    assert p.state == "ESTABLISHED"
    assert p.states()[-1] == ("SYN_RCVD", "ESTABLISHED")
    assert ev.Connected() in p.events()


def test_syn_rcvd_unacceptable_ack_draws_rst():
    p = syn_rcvd()
    bogus = seq_add(p.iss, 5000)
    out = p.deliver(".", ack=bogus)
    expect_one(out, "R", seq=bogus)
    assert p.state == "SYN_RCVD"
    assert "unacceptable_ack" in p.drops()


def test_syn_rcvd_passive_rst_returns_to_listen():
    p = syn_rcvd()
    assert p.deliver("R", seq=p.peer_nxt) == []
    assert p.state == "LISTEN"
    assert p.states()[-1] == ("SYN_RCVD", "LISTEN")
    assert not any(isinstance(e, ev.Closed) for e in p.events())  # nothing to tell: never accepted
    assert p.conn.next_timer() is None


def test_syn_rcvd_retransmits_syn_ack_with_backoff_then_gives_up():
    cfg = Config(timestamps=False, window_scaling=False, sack=False, synack_retries=3)
    p = syn_rcvd(cfg)
    times = []
    while p.conn.next_timer() is not None:
        out = p.fire_next_timer()
        if out:
            expect_one(out, "S.", seq=p.iss, ack=p.peer_nxt)
            times.append(p.now)
    assert times == [1.0, 3.0, 7.0]  # RTO 1 s, doubled after each timeout
    assert p.state == "CLOSED"
    assert ev.Closed(ev.TIMED_OUT) in p.events()
    assert p.now == 15.0


def test_syn_rcvd_duplicate_syn_retransmits_syn_ack():
    p = syn_rcvd()
    out = p.deliver("S", seq=p.peer_iss)
    expect_one(out, "S.", seq=p.iss, ack=p.peer_nxt)
    assert p.state == "SYN_RCVD"


def test_syn_rcvd_ack_with_data_establishes_and_delivers():
    p = syn_rcvd()
    out = p.deliver("P.", payload=b"early data")
    assert p.state == "ESTABLISHED"
    expect_one(out, ".", ack=seq_add(p.peer_nxt, 10))
    p.call("receive")
    assert p.received == b"early data"


def test_close_in_syn_rcvd_sends_fin():
    p = syn_rcvd()
    out = p.call("close")
    expect_one(out, "F.", seq=seq_add(p.iss, 1))
    assert p.state == "FIN_WAIT_1"
