"""Congestion control (RFC 5681, RFC 6582, RFC 6928, RFC 6937): the Reno numbers and the
connection's recovery (NewReno without SACK, with PRR setting the window while it repairs)."""

import pytest
from helpers import established

from tcpwave.cc import REGISTRY, RateSample, create
from tcpwave.core.config import Config

MSS = 1000


def acked(n: int, now: float = 0.0, in_recovery: bool = False) -> RateSample:
    return RateSample(delivered=n, acked=n, delivered_total=n, rtt=None, prior_in_flight=0, in_flight=0, newly_lost=0,
                      app_limited=False, in_recovery=in_recovery, now=now)


def test_registry_creates_by_name_and_rejects_unknown_names():
    assert "reno" in REGISTRY
    assert create("reno", MSS).name == "reno"
    with pytest.raises(ValueError, match="unknown congestion control 'bbr9'"):
        create("bbr9", MSS)


def test_initial_window_follows_rfc_6928():
    assert create("reno", 1460).cwnd == 14600
    assert create("reno", 536).cwnd == 5360
    assert create("reno", 9000).cwnd == 18000  # max(2*MSS, 14600) caps it for jumbo MSS


def test_slow_start_grows_one_mss_per_ack_then_avoidance_one_per_window():
    cc = create("reno", MSS)
    cc.on_ack(acked(5000))
    assert cc.cwnd == 11 * MSS  # at most one MSS per ACK, however much it acknowledged
    cc.ssthresh = cc.cwnd
    for _ in range(10):
        cc.on_ack(acked(MSS))
    assert cc.cwnd == 11 * MSS  # 10 of the 11 segments of a window acknowledged: not yet
    cc.on_ack(acked(MSS))
    assert cc.cwnd == 12 * MSS


def test_a_congestion_event_halves_ssthresh_and_recovery_leaves_the_window_to_prr():
    cc = create("reno", MSS)
    cc.cwnd = 20 * MSS
    assert cc.on_congestion_event(20 * MSS, 0.0) is True  # PRR brings cwnd down to ssthresh
    assert cc.ssthresh == 10 * MSS and cc.cwnd == 20 * MSS
    cc.on_ack(acked(5 * MSS, in_recovery=True))
    assert cc.cwnd == 20 * MSS  # no growth while recovering
    cc.on_ack(acked(0))
    assert cc.cwnd == 20 * MSS  # a duplicate ACK delivers nothing new


def test_rto_collapses_to_one_segment_and_idle_restarts_at_the_initial_window():
    cc = create("reno", MSS)
    cc.cwnd = 40 * MSS
    cc.on_rto(30 * MSS, 0.0)
    assert cc.cwnd == MSS and cc.ssthresh == 15 * MSS
    cc.cwnd = 40 * MSS
    cc.on_idle_restart()
    assert cc.cwnd == 10 * MSS


CFG = Config(timestamps=False, window_scaling=False, sack=False, congestion_control="reno")


def _send_window(p, segments: int) -> list:
    out = p.call("send", b"d" * (segments * 1460))
    assert len(out) == segments
    return out


def test_one_loss_is_repaired_by_fast_retransmit_without_rto():
    p = established(CFG)
    segs = _send_window(p, 10)
    first = segs[0].seq
    # segment 0 is lost; segments 1..3 arrive and each draws a duplicate ACK
    for _ in range(2):
        assert p.deliver(".", ack=first) == []
    out = p.deliver(".", ack=first)
    assert [s.seq for s in out][:1] == [first] and len(out[0].payload) == 1460  # the third triggers it
    assert p.conn.ssthresh == 5 * 1460  # flight / 2
    # PRR (RFC 6937): pipe is 6 segments (10 sent, 3 reported by duplicates, 1 lost), above ssthresh,
    # so the proportional part allows ceil(1460 * 5 / 10) bytes; the fast retransmit goes regardless
    assert p.conn.cwnd == 6 * 1460 + 1460
    out = p.deliver(".", ack=p.our_nxt)  # everything, including the hole, is now acknowledged
    assert p.conn.ssthresh == 5 * 1460
    assert p.conn.cwnd == 5 * 1460  # RFC 6937: the reduction ends with cwnd = ssthresh
    fired = [e for e in p.sink.of_type("timer") if e["name"] == "retransmit" and e["action"] == "fire"]
    assert not fired  # no timeout fired


def test_partial_ack_retransmits_the_next_hole():
    p = established(CFG)
    segs = _send_window(p, 10)
    for _ in range(8):
        p.deliver(".", ack=segs[0].seq)  # segments 0 and 4 were lost; 1-3 and 5-9 draw duplicates
    out = p.deliver(".", ack=segs[4].seq)  # the retransmitted 0 filled the first hole only
    retransmitted = [s for s in out if s.seq == segs[4].seq]
    assert len(retransmitted) == 1 and len(retransmitted[0].payload) == 1460
    assert p.conn.ssthresh == 5 * 1460  # still one recovery, one reduction
    p.deliver(".", ack=p.our_nxt)
    assert p.conn.ssthresh == 5 * 1460


def test_three_losses_in_one_window_are_one_recovery_with_one_reduction():
    p = established(CFG)
    segs = _send_window(p, 10)
    p.deliver(".", ack=segs[2].seq)  # 0 and 1 arrived; 2, 5 and 7 are lost
    for _ in range(5):
        p.deliver(".", ack=segs[2].seq)  # 3, 4, 6, 8 and 9 arrive: five duplicate ACKs
    reduced = p.conn.ssthresh
    assert reduced == 4 * 1460  # half of the 8 segments in flight when recovery began
    for hole in (5, 7):
        out = p.deliver(".", ack=segs[hole].seq)
        assert any(s.seq == segs[hole].seq for s in out)
    p.deliver(".", ack=p.our_nxt)
    assert p.conn.ssthresh == reduced  # one recovery, one reduction
    assert not [e for e in p.sink.of_type("timer") if e["name"] == "retransmit" and e["action"] == "fire"]


def test_rto_collapses_cwnd_to_one_segment():
    p = established(CFG)
    _send_window(p, 10)
    out = p.fire_next_timer()
    assert len(out) == 1  # only the head, then slow start from one segment
    assert p.conn.cwnd == 1460


def test_idle_connection_restarts_from_the_initial_window():
    p = established(CFG)
    for _ in range(4):  # grow cwnd past the initial window
        assert len(p.call("send", b"g" * 14600)) == 10
        p.deliver(".", ack=p.our_nxt)
    assert p.conn.cwnd > 14600
    p.advance(p.now + 10.0)  # idle for longer than the RTO
    out = p.call("send", b"h" * 40000)
    assert sum(len(s.payload) for s in out) == 14600


def test_the_connection_uses_the_configured_algorithm_by_name():
    from tcpwave.cc import register
    from tcpwave.cc.reno import Reno

    @register
    class Timid(Reno):
        name = "timid-test"

        def set_mss(self, mss):
            super().set_mss(mss)
            self.cwnd = mss

    try:
        p = established(Config(timestamps=False, window_scaling=False, sack=False,
                               congestion_control="timid-test"))
        out = p.call("send", b"t" * 10000)
        assert len(out) == 1  # one segment: the configured algorithm's window, not Reno's ten
        assert type(p.conn.cc) is Timid
    finally:
        REGISTRY.pop("timid-test")


def test_karn_an_ack_for_retransmitted_data_gives_no_rtt_sample():
    p = established(CFG)
    p.advance(0.5)
    p.call("send", b"k" * 100)
    p.advance(0.6)
    before = p.conn.srtt  # 0.0: the fixture's handshake took no time
    p.deliver(".", ack=p.our_nxt)  # a clean sample: 100 ms
    srtt = p.conn.srtt
    assert srtt == pytest.approx(before * 7 / 8 + 0.1 / 8)
    p.call("send", b"m" * 100)
    p.fire_next_timer()  # retransmitted: the next ACK is ambiguous
    rto_after_backoff = p.conn.rto
    p.advance(p.now + 0.3)
    p.deliver(".", ack=p.our_nxt)
    assert p.conn.srtt == srtt  # no sample taken
    assert p.conn.rto == rto_after_backoff  # and the backed-off RTO stands until a clean sample


def test_limited_transmit_sends_new_data_on_the_first_two_duplicate_acks():
    p = established(CFG)  # the peer's window: 65535, unchanged by the duplicates below
    segs = p.call("send", b"n" * (12 * 1460))  # 10 go (the initial window), 2 wait
    assert len(segs) == 10
    first = segs[0].seq
    out = p.deliver(".", ack=first)  # duplicate 1
    assert [len(s.payload) for s in out] == [1460] and out[0].seq == segs[-1].seq + 1460
    out = p.deliver(".", ack=first)  # duplicate 2
    assert [len(s.payload) for s in out] == [1460]
    out = p.deliver(".", ack=first)  # duplicate 3: fast retransmit of the first segment
    assert out[0].seq == first


def test_early_retransmit_with_few_segments_outstanding():
    p = established(CFG)
    segs = p.call("send", b"e" * (2 * 1460))  # two segments, nothing more to send
    assert len(segs) == 2
    out = p.deliver(".", ack=segs[0].seq)  # one duplicate is all a flight of two can produce
    assert [s.seq for s in out] == [segs[0].seq]  # RFC 5827: threshold = outstanding - 1
    assert not [e for e in p.sink.of_type("timer") if e["name"] == "retransmit" and e["action"] == "fire"]
