"""LISTEN (RFC 9293 §3.10.7.2): RST ignored, ACK answered with RST, SYN answered with SYN,ACK."""

from helpers import PLAIN, expect_one, listening

from tcpwave.core.config import Config
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


def test_the_fixtures_plain_config_reaches_the_connection():
    """The state-machine tests use plain segments: offered every option, the fixture's listener
    (PLAIN) answers with none but the MSS."""
    p = listening(PLAIN)
    syn_options = Options(mss=1460, wscale=7, sack_permitted=True, ts=(1, 0))
    seg = expect_one(p.deliver("S", options=syn_options), "S.")
    assert seg.options.mss == 1460
    assert seg.options.wscale is None and seg.options.ts is None and not seg.options.sack_permitted
