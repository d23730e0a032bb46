"""LISTEN and SYN_RCVD (RFC 9293 §3.10.7.2, §3.10.7.4; §3.5.3 on RST)."""

from helpers import PLAIN, expect_one, listening, syn_rcvd

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.seq import seq_add
from tcpwave.wire.options import Options


def test_listen_ignores_rst():
    p = listening()
    assert p.deliver("R", seq=5) == []
    assert p.deliver("R.", seq=5, ack=77) == []
    assert p.state == "LISTEN"
    assert p.drops() == ["rst_in_listen", "rst_in_listen"]


def test_listen_answers_bare_ack_with_rst_from_its_ack_field():
    p = listening()
    out = p.deliver(".", seq=5, ack=123456)
    expect_one(out, "R", seq=123456)
    assert p.state == "LISTEN"


def test_listen_answers_syn_with_syn_ack_acknowledging_it():
    p = listening()
    out = p.deliver("S", seq=7000)
    seg = expect_one(out, "S.", ack=7001)
    assert p.state == "SYN_RCVD"
    assert p.states()[-1] == ("LISTEN", "SYN_RCVD")
    assert seg.options.mss == 1460


def test_syn_ack_echoes_only_the_options_the_peer_offered():
    everything = Config()  # window scaling, timestamps and SACK all enabled locally
    p = listening(everything)
    seg = expect_one(p.deliver("S", options=Options(mss=1400)), "S.")
    assert seg.options.mss == 1460
    assert seg.options.wscale is None and seg.options.ts is None and not seg.options.sack_permitted

    p = listening(everything)
    seg = expect_one(p.deliver("S", options=Options(mss=1400, wscale=7, sack_permitted=True, ts=(555, 0))), "S.")
    assert seg.options.wscale is not None
    assert seg.options.sack_permitted
    assert seg.options.ts is not None and seg.options.ts[1] == 555  # TSecr echoes the peer's TSval

    p = listening(everything)
    seg = expect_one(p.deliver("S", options=Options(sack_permitted=True)), "S.")
    assert seg.options.sack_permitted and seg.options.ts is None and seg.options.wscale is None


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


def test_plain_config_is_what_the_fixtures_use():
    assert not PLAIN.timestamps and not PLAIN.window_scaling and not PLAIN.sack
