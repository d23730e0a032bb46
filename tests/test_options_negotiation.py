"""MSS, window scaling and timestamps negotiated per RFC 9293 §3.7.1 and RFC 7323; SACK blocks."""

from helpers import PEER_SYN_OPTIONS, Peer, expect_one, syn_sent

from tcpwave.core.config import Config
from tcpwave.wire.options import Options
from tcpwave.wire.seq import seq_add

FULL = Config()  # window scaling, timestamps and SACK on


def established_with(peer_syn_options: Options, config: Config = FULL) -> Peer:
    p = syn_sent(config)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), options=peer_syn_options)
    assert p.state == "ESTABLISHED"
    return p


def test_our_syn_offers_everything_enabled():
    p = syn_sent(FULL)
    o = p.sent[0].options
    assert o.mss == 1460 and o.wscale == 3 and o.sack_permitted and o.ts is not None and o.ts[1] == 0


def test_mss_defaults_to_536_without_the_option():
    p = established_with(Options(), Config(timestamps=False, window_scaling=False, sack=False))
    out = p.call("send", b"m" * 1000)
    assert [len(s.payload) for s in out] == [536, 464]


def test_mss_is_the_smaller_of_both_sides():
    p = established_with(Options(mss=1000), Config(timestamps=False, window_scaling=False, sack=False))
    out = p.call("send", b"m" * 1500)
    assert [len(s.payload) for s in out] == [1000, 500]


def test_window_scale_applies_to_windows_after_the_syn():
    # (RFC 6298's 1 s minimum RTO keeps the retransmission timer out of the way of the SWS override)
    p = established_with(Options(mss=1460, wscale=4), Config(timestamps=False, sack=False, rto_min=1.0))
    # the peer advertises 100 << 4 = 1600 bytes
    p.deliver(".", window=100)
    out = p.call("send", b"s" * 5000) + p.fire_next_timer()  # the SWS override sends the remainder
    assert sum(len(s.payload) for s in out) == 1600
    # and our own window field is scaled by our shift (3 for a 256 KiB buffer)
    assert out[0].window == (256 * 1024) >> 3


def test_window_scale_is_off_unless_both_offer_it():
    p = established_with(Options(mss=1460), Config(timestamps=False, sack=False))
    p.deliver(".", window=100)
    out = p.call("send", b"s" * 5000) + p.fire_next_timer()
    assert sum(len(s.payload) for s in out) == 100
    assert out[0].window == 0xFFFF  # unscaled: capped at 65535


def test_timestamps_are_echoed_and_take_room_from_the_mss():
    p = established_with(Options(mss=1460, ts=(1000, 0)), Config(window_scaling=False, sack=False))
    seg = expect_one(p.deliver("P.", payload=b"abc", options=Options(ts=(1005, 0))), ".")  # a quick ACK
    assert seg.options.ts is not None and seg.options.ts[1] == 1005  # TSecr = the newest TSval
    out = p.call("send", b"t" * 3000)
    assert len(out[0].payload) == 1448  # 1460 - 12 bytes of timestamp option


def test_paws_drops_a_segment_with_an_old_timestamp():
    p = established_with(Options(mss=1460, ts=(1000, 0)), Config(window_scaling=False, sack=False))
    p.deliver("P.", payload=b"new", options=Options(ts=(2000, 0)))
    p.peer_nxt = seq_add(p.peer_nxt, 3)
    out = p.deliver("P.", payload=b"old!", options=Options(ts=(1500, 0)))
    seg = expect_one(out, ".", ack=p.peer_nxt)  # the old segment is ACKed, not accepted
    assert "paws" in p.drops()
    p.call("receive")
    assert p.received == b"new"
    assert seg.options.ts[1] == 2000


def test_paws_does_not_apply_to_rst():
    p = established_with(Options(mss=1460, ts=(1000, 0)), Config(window_scaling=False, sack=False))
    p.deliver("R", options=Options(ts=(5, 0)))
    assert p.state == "CLOSED"


def test_paws_runs_once_per_arrival_not_again_when_a_hole_fills():
    p = established_with(Options(mss=1460, ts=(1000, 0)), Config(window_scaling=False, sack=False))
    start = p.peer_nxt
    # later segments arrive first with newer timestamps, then the hole is filled by an older one
    p.deliver("P.", seq=seq_add(start, 3), payload=b"def", options=Options(ts=(1003, 0)))
    p.deliver("P.", seq=seq_add(start, 6), payload=b"ghi", options=Options(ts=(1004, 0)))
    p.deliver("P.", seq=start, payload=b"abc", options=Options(ts=(1002, 0)))
    p.call("receive")
    assert p.received == b"abcdefghi"


def test_sack_blocks_describe_out_of_order_data_newest_first():
    p = established_with(Options(mss=1460, sack_permitted=True), Config(timestamps=False, window_scaling=False))
    start = p.peer_nxt
    p.deliver("P.", seq=seq_add(start, 100), payload=b"x" * 100)
    out = p.deliver("P.", seq=seq_add(start, 300), payload=b"y" * 100)
    seg = expect_one(out, ".", ack=start)
    assert seg.options.sack == ((seq_add(start, 300), seq_add(start, 400)), (seq_add(start, 100), seq_add(start, 200)))
    out = p.deliver("P.", seq=seq_add(start, 200), payload=b"z" * 100)  # joins the two blocks
    assert expect_one(out, ".", ack=start).options.sack == ((seq_add(start, 100), seq_add(start, 400)),)


def test_fixture_peer_offers_mss():
    assert PEER_SYN_OPTIONS.mss == 1460


def test_timestamps_give_rtt_samples_even_for_retransmissions():
    p = established_with(Options(mss=1460, ts=(1000, 0)), Config(window_scaling=False, sack=False))
    p.call("send", b"r" * 100)
    p.fire_next_timer()  # RTO: retransmitted at t=0.2 s, RTO backed off to 0.4 s
    assert p.conn.rto == 0.4
    rtx = p.sent[-1]
    before = p.conn.srtt  # 0.0: the handshake took no time in this test
    p.advance(p.now + 0.05)
    # the peer echoes the retransmission's TSval: a 50 ms sample, not ambiguous
    p.deliver(".", ack=p.our_nxt, options=Options(ts=(1001, rtx.options.ts[0])))
    assert p.conn.srtt == before * 7 / 8 + 0.05 / 8  # RFC 6298 (2.3) with alpha = 1/8
    assert p.conn.rto == p.conn.srtt + 0.2  # collapsed back: SRTT plus the minimum (as Linux)


def test_time_wait_reopen_uses_timestamps_when_present():
    from tcpwave.wire.tcp import SYN, Segment

    p = established_with(Options(mss=1460, ts=(1000, 0)), Config(window_scaling=False, sack=False))
    p.call("close")
    p.deliver(".", options=Options(ts=(1001, 0)))
    p.deliver("F.", options=Options(ts=(1002, 0)))
    p.peer_nxt = seq_add(p.peer_nxt, 1)
    assert p.state == "TIME_WAIT"
    lower_seq_newer_ts = Segment(40000, 80, seq_add(p.peer_nxt, -5000), 0, SYN, 65535, options=Options(ts=(2000, 0)))
    higher_seq_older_ts = Segment(40000, 80, seq_add(p.peer_nxt, 5000), 0, SYN, 65535, options=Options(ts=(900, 0)))
    assert p.conn.time_wait_accepts(lower_seq_newer_ts)  # RFC 6191: the timestamp decides
    assert not p.conn.time_wait_accepts(higher_seq_older_ts)
