"""CUBIC (RFC 9438) with HyStart++ (RFC 9406) in slow start: the default congestion control.

Windows are counted in segments inside (floats), as the RFCs write them; `cwnd` and `ssthresh` stay
in bytes like every control's. The window grows as W_cubic(t) = C·(t − K)³ + W_max after a
congestion event, concave up to W_max and convex beyond it, never slower than the Reno-friendly
estimate W_est (§4.3). Fast convergence (§4.7) lowers W_max when a flow's share shrinks.

HyStart++ watches the minimum RTT of each round in slow start: when it rises by RttThresh
(4..16 ms, or 1/8 of the last round's), the queue is filling, so growth slows to a quarter
(Conservative Slow Start) and, after CSS_ROUNDS rounds without the RTT falling back, slow start ends.

That signal comes a round late when the window doubles: the queue a round builds is only seen by the
next round's first RTT samples, by which time the doubled window may already overflow a queue of one
BDP. Linux's CUBIC therefore also ends slow start on an ACK train (its HYSTART_ACK_TRAIN, kept here):
when closely spaced ACKs (< 2 ms apart) have kept arriving for half the minimum RTT since the round
began, the pipe is full, so ssthresh = cwnd, before the queue overflows.
"""

import math
from typing import ClassVar, Final

from .base import CongestionControl, RateSample, mypyc_attr, register

C: Final = 0.4  # segments / s^3
BETA: Final = 0.7
ALPHA_RENO: Final = 3 * (1 - BETA) / (1 + BETA)
# RFC 9406 constants
MIN_RTT_THRESH: Final = 0.004
MAX_RTT_THRESH: Final = 0.016
MIN_RTT_DIVISOR: Final = 8
N_RTT_SAMPLE: Final = 8
CSS_GROWTH_DIVISOR: Final = 4
CSS_ROUNDS: Final = 5
ACK_DELTA: Final = 0.002  # Linux hystart_ack_delta_us: ACKs closer than this belong to one train
LOW_WINDOW: Final = 16  # Linux hystart_low_window: no HyStart below this many segments

INF: Final = float("inf")


def w_cubic(t: float, w_max: float, k: float) -> float:
    """RFC 9438 eq. 1, in segments."""
    return C * (t - k) ** 3 + w_max


def k_for(w_max: float, cwnd_epoch: float) -> float:
    """RFC 9438 eq. 2: the time W_cubic takes to climb from cwnd_epoch back to W_max."""
    return math.cbrt(max(0.0, w_max - cwnd_epoch) / C)


@mypyc_attr(allow_interpreted_subclasses=True)
class Cubic(CongestionControl):
    name: ClassVar[str] = "cubic"

    def __init__(self, mss: int, initial_window_segments: int = 10):
        super().__init__(mss, initial_window_segments)
        self.w_max = 0.0  # segments
        self.k = 0.0
        self.epoch_start: float | None = None
        self.w_est = 0.0
        self.cwnd_prior = 0.0  # cwnd before the last reduction (segments)
        self._w = self.cwnd / mss  # the window in segments, with its fraction
        self.rtt_min = INF
        # HyStart++ state
        self.css = False
        self.css_rounds = 0
        self.css_baseline = INF
        self.last_round_min = INF
        self.round_min = INF
        self.rtt_samples = 0
        self.hystart_exits = 0  # times slow start ended on delay or an ACK train
        self.round_started = 0.0
        self.last_ack = 0.0

    def _sync(self) -> float:
        """The window in segments; resynchronised if someone (PRR, a timeout) set cwnd in bytes."""
        if int(self._w * self.mss) != self.cwnd:
            self._w = self.cwnd / self.mss
        return self._w

    def _set(self, w: float) -> None:
        self._w = w
        self.cwnd = int(w * self.mss)

    def on_ack(self, rs: RateSample) -> None:
        if rs.rtt is not None:
            self.rtt_min = min(self.rtt_min, rs.rtt)
        in_slow_start = self.cwnd < self.ssthresh
        if in_slow_start:
            self._hystart_sample(rs)
        if rs.in_recovery or not rs.acked or not self.may_grow(rs):  # cumulative progress only, not SACKs alone
            return
        w = self._sync()
        acked = rs.delivered / self.mss  # segments
        if self.cwnd < self.ssthresh:
            grow = acked  # no per-ACK cap (RFC 9406's L), as Linux's tcp_slow_start(): slow-start-no-per-ack-cap.pkt
            if self.css:
                grow /= CSS_GROWTH_DIVISOR
            self._set(w + grow)
            return
        self._avoid(w, acked, rs.now)

    def _avoid(self, w: float, acked: float, now: float) -> None:
        """Congestion avoidance (RFC 9438 §4.2–4.4)."""
        if self.epoch_start is None:
            self.epoch_start = now
            if w < self.w_max:
                self.k = k_for(self.w_max, w)
            else:
                self.k = 0.0
                self.w_max = w
            self.w_est = w
        t = now - self.epoch_start
        rtt = self.rtt_min if self.rtt_min < INF else 0.0
        target = min(max(w_cubic(t + rtt, self.w_max, self.k), w), 1.5 * w)
        alpha = 1.0 if self.w_est >= self.cwnd_prior else ALPHA_RENO
        self.w_est += alpha * acked / w
        if w_cubic(t, self.w_max, self.k) < self.w_est:  # the Reno-friendly region
            self._set(max(w, self.w_est))
        else:
            self._set(w + (target - w) / w * acked)

    def _reduce(self) -> None:
        w = self._sync()
        self.cwnd_prior = w
        if w < self.w_max:  # fast convergence: release bandwidth to newer flows
            self.w_max = w * (1 + BETA) / 2
        else:
            self.w_max = w
        self.epoch_start = None
        self.css = False
        self.ssthresh = max(int(w * BETA * self.mss), 2 * self.mss)

    def on_congestion_event(self, flight: int, now: float) -> bool:
        self._reduce()
        return True

    def on_rto(self, flight: int, now: float) -> None:
        """RFC 9438 §4.8: ssthresh as for any loss, then the first congestion avoidance stage starts
        its own curve, K = 0 and W_max = the window it starts from (Linux: bictcp_reset on Loss), not
        the old W_max, which would pull the window back up within K seconds."""
        self._reduce()
        self.w_max = 0.0  # at the next epoch start w >= W_max: K = 0, W_max = w
        self._set(1.0)

    def on_tx_start(self, idle: float, now: float) -> None:
        """Sending resumes with nothing in flight after `idle` seconds without sending: the curve's
        clock did not run meanwhile, so the epoch moves forward by that much (Linux:
        CA_EVENT_TX_START). Otherwise request/response traffic would climb the curve while idle."""
        if self.epoch_start is not None and idle > 0:
            self.epoch_start = min(self.epoch_start + idle, now)

    def on_idle_restart(self) -> None:
        super().on_idle_restart()
        self.epoch_start = None
        self._w = self.cwnd / self.mss

    # ------------------------------------------------------------ HyStart++
    def _hystart_sample(self, rs: RateSample) -> None:
        """RFC 9406 §4.2: per-round minimum RTTs; enter or leave CSS; end slow start."""
        if rs.round_start:
            self.last_round_min, self.round_min, self.rtt_samples = self.round_min, INF, 0
            self.round_started = self.last_ack = rs.now
            if self.css:
                self.css_rounds += 1
                if self.css_rounds >= CSS_ROUNDS:  # the queue kept growing: leave slow start
                    self.ssthresh = max(self.cwnd, 2 * self.mss)
                    self.css = False
                    self.hystart_exits += 1
                    return
        if self.cwnd >= LOW_WINDOW * self.mss and self.rtt_min < INF and rs.now - self.last_ack <= ACK_DELTA:
            self.last_ack = rs.now
            if rs.now - self.round_started > self.rtt_min / 2:  # the ACK train fills half an RTT
                self.ssthresh = max(self.cwnd, 2 * self.mss)
                self.css = False
                self.hystart_exits += 1
                return
        if rs.rtt is None:
            return
        self.round_min = min(self.round_min, rs.rtt)
        self.rtt_samples += 1
        if self.rtt_samples < N_RTT_SAMPLE or self.round_min == INF or self.last_round_min == INF:
            return
        if not self.css:
            thresh = max(MIN_RTT_THRESH, min(self.last_round_min / MIN_RTT_DIVISOR, MAX_RTT_THRESH))
            if self.round_min >= self.last_round_min + thresh:
                self.css, self.css_rounds, self.css_baseline = True, 0, self.round_min
        elif self.round_min < self.css_baseline:  # the delay rise was spurious: back to slow start
            self.css, self.css_baseline = False, INF


register(Cubic)  # a call, not a class decorator: decorated classes cannot be compiled (mypyc)
