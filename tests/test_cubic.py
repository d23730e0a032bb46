"""CUBIC (RFC 9438) and its slow start (HyStart++, RFC 9406, with Linux's ACK-train exit)."""

import pytest

from tcpwave.bench.sim import run_one
from tcpwave.cc import RateSample, create
from tcpwave.cc.cubic import BETA, C, k_for, w_cubic
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.wire.seq import seq_add

MSS = 1000


def _ack(cc, now: float, segments: float = 1.0, rtt: float | None = 0.01, round_start: bool = False,
         in_flight: int | None = None):
    n = int(segments * MSS)
    flight = cc.cwnd if in_flight is None else in_flight
    cc.on_ack(RateSample(delivered=n, acked=n, delivered_total=0, rtt=rtt, prior_in_flight=flight,
                         in_flight=flight, newly_lost=0, app_limited=False, in_recovery=False, now=now,
                         round_start=round_start))


def test_w_cubic_and_k_are_the_rfc_formulas():
    assert k_for(100.0, 70.0) == pytest.approx((30 / C) ** (1 / 3))  # eq. 2
    k = k_for(100.0, 70.0)
    assert w_cubic(0.0, 100.0, k) == pytest.approx(70.0)  # starts from the reduced window
    assert w_cubic(k, 100.0, k) == pytest.approx(100.0)  # back at W_max after K seconds
    assert w_cubic(k + 2, 100.0, k) == pytest.approx(100.0 + C * 8)  # convex beyond it


def test_a_congestion_event_sets_ssthresh_to_beta_times_cwnd_and_remembers_w_max():
    cc = create("cubic", MSS)
    cc.cwnd = 100 * MSS
    assert cc.on_congestion_event(100 * MSS, 0.0) is True
    assert cc.ssthresh == int(100 * BETA) * MSS and cc.w_max == 100.0
    cc.cwnd = 90 * MSS  # a second loss before the window got back: fast convergence (§4.7)
    cc.on_congestion_event(90 * MSS, 1.0)
    assert cc.w_max == pytest.approx(90 * (1 + BETA) / 2)


def test_the_window_follows_w_cubic_after_a_loss():
    """ACK-clocked at a 100 ms RTT (long enough that W_cubic outgrows the Reno-friendly estimate),
    cwnd after a reduction from 100 segments tracks W_cubic(t) = C (t - K)^3 + W_max (RFC 9438
    eq. 1) up the concave region to W_max."""
    cc = create("cubic", MSS)
    cc.cwnd = 100 * MSS
    cc.on_congestion_event(100 * MSS, 0.0)
    cc.cwnd = cc.ssthresh  # what PRR leaves at the end of recovery
    k = k_for(100.0, 70.0)
    t, rtt = 0.0, 0.1
    checks = {round(k / 4, 2): None, round(k / 2, 2): None, round(k, 2): None}
    while t < k + rtt:
        t += rtt
        for _ in range(max(1, cc.cwnd // MSS)):
            _ack(cc, t, rtt=rtt)
        for at in checks:
            if checks[at] is None and t >= at:
                checks[at] = (t, cc.cwnd / MSS)
    for at, (when, w) in checks.items():
        # the target is W_cubic one RTT ahead; ACK clocking lags it by about as much
        assert w == pytest.approx(w_cubic(when, 100.0, k), rel=0.03), at


def test_in_the_reno_friendly_region_cwnd_grows_like_reno():
    """Right after a reduction with a tiny W_max - cwnd, W_cubic is nearly flat: the window grows by
    the Reno-friendly estimate W_est instead (RFC 9438 §4.3), about α_cubic segments per RTT."""
    cc = create("cubic", MSS)
    cc.cwnd = 20 * MSS
    cc.on_congestion_event(20 * MSS, 0.0)
    cc.cwnd = cc.ssthresh
    start = cc.cwnd / MSS
    t = 0.0
    for _ in range(20):  # 20 round trips of 50 ms: W_cubic gains little in one second
        t += 0.05
        for _ in range(cc.cwnd // MSS):
            _ack(cc, t, rtt=0.05)
    assert cc.cwnd / MSS > start + 20 * 0.5  # at least α_cubic (0.53) per RTT, as W_est says


def test_hystart_ends_slow_start_before_a_one_bdp_queue_overflows():
    """100 Mbit/s, 20 ms RTT, a drop-tail queue of one BDP, no random loss: slow start ends (ssthresh
    is set) before the first packet is dropped; standard slow start overshoots into heavy loss."""
    sink = ListSink()
    row = run_one(0.0, sack=True, seconds=3.0, tracer=Tracer(sink), cc="cubic")
    cc = [e for e in sink if e["type"] == "cc" and e["host"] == "sender"]
    drops = [e for e in sink if e["type"] == "drop" and e.get("where") == "link"]
    exit_at = next(e["t"] for e in cc if e["ssthresh"] < 1 << 30)
    assert not drops or exit_at < drops[0]["t"]
    assert row.verified and row.timeouts == 0
    reno_sink = ListSink()
    run_one(0.0, sack=True, seconds=3.0, tracer=Tracer(reno_sink), cc="reno")
    reno_drops = [e for e in reno_sink if e["type"] == "drop" and e.get("where") == "link"]
    assert len(reno_drops) > 50 and len(drops) < len(reno_drops) / 10


def test_css_slows_growth_when_the_round_minimum_rtt_rises():
    cc = create("cubic", MSS)
    cc.cwnd = 20 * MSS
    t = 0.0
    _ack(cc, t, round_start=True, rtt=0.020)
    for _ in range(10):
        t += 0.003  # ACKs 3 ms apart: no ACK train
        _ack(cc, t, rtt=0.020)
    t += 0.003
    _ack(cc, t, round_start=True, rtt=0.030)
    for _ in range(8):
        t += 0.003
        _ack(cc, t, rtt=0.030)  # 10 ms above last round's minimum (threshold 4 ms)
    assert cc.css
    before = cc.cwnd
    t += 0.003
    _ack(cc, t, segments=2, rtt=0.030)
    assert cc.cwnd - before == 2 * MSS // 4  # CSS_GROWTH_DIVISOR


def _exchanges(gap: float, count: int = 20, rtt: float = 0.05) -> list[int]:
    """A sans-IO sender in congestion avoidance writes 40 segments per exchange; the peer ACKs each
    flight one RTT later; `gap` seconds of idleness (less than the RTO) separate the exchanges.
    Returns the first flight of each exchange, in segments."""
    from helpers import established

    from tcpwave.core.config import Config

    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0))
    p.conn.cc.ssthresh = 20 * p.conn.snd_mss  # (setup) congestion avoidance from 20 segments on
    firsts = []
    for _ in range(count):
        flight = p.call("send", b"x" * 40 * p.conn.snd_mss)
        firsts.append(len(flight))
        while flight:
            p.advance(p.now + rtt)
            out = []
            for seg in flight:
                out += p.deliver(".", ack=seq_add(seg.seq, len(seg.payload)))
            flight = [s for s in out if s.payload]
        p.advance(p.now + gap)
    return firsts


def test_idle_time_between_exchanges_does_not_advance_the_cubic_curve():
    """Linux's CUBIC moves its epoch forward by the time nothing was sent (CA_EVENT_TX_START): the
    curve's clock runs only while sending, so request/response traffic with pauses between the
    exchanges grows the window exactly as back-to-back traffic does."""
    busy, idle = _exchanges(gap=0.0), _exchanges(gap=0.15)
    assert busy[-1] >= busy[1] + 8  # the window did grow along the curve
    # (ACK timing moves single segments between flights; a clock running through the 3 s of
    # pauses would put the last flight about 10 segments above)
    assert abs(idle[-1] - busy[-1]) <= 2


def test_the_first_epoch_after_a_timeout_starts_its_own_curve():
    """RFC 9438 §4.8 (Linux bictcp_reset on Loss): after an RTO the first congestion avoidance stage
    grows from the window it starts with, K = 0, W_max = that window; the W_max before the timeout
    (100 segments here) must not pull it back up within K seconds."""
    cc = create("cubic", MSS)
    cc.cwnd = 100 * MSS
    cc.on_rto(100 * MSS, 0.0)
    assert cc.cwnd == MSS and cc.ssthresh == 70 * MSS
    t, rtt = 0.0, 0.1
    while cc.cwnd < cc.ssthresh:  # slow start back to ssthresh, ACK-clocked
        t += rtt
        for _ in range(max(1, cc.cwnd // MSS)):
            _ack(cc, t, rtt=rtt)
    start, w0 = t, cc.cwnd / MSS
    while t < start + 1.0:
        t += rtt
        for _ in range(max(1, cc.cwnd // MSS)):
            _ack(cc, t, rtt=rtt)
    # W_cubic(t + RTT) with K = 0 from w0, or the Reno-friendly estimate (at most ALPHA_RENO
    # segments per RTT): both far below the old curve's C (1 - K)^3 + 100 = 86.9 segments
    bound = max(w_cubic(t - start + rtt, w0, 0.0), w0 + 1.0 / rtt * (t - start)) + 1
    assert cc.cwnd / MSS <= bound
