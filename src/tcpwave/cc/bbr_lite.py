"""A model-based congestion control after BBR v1 (Cardwell et al., ACM Queue 2016; the IETF draft
draft-cardwell-iccrg-bbr-congestion-control), reduced to what a window-limited sender without
pacing can use.

Loss-based controls (Reno, CUBIC) treat every loss as congestion, so random loss p caps them at the
Mathis bound, MSS/RTT × 1.22/√p, however fast the link. This one keeps a model of the path instead:

- BtlBw: the largest delivery rate measured over the last 10 round trips (one sample per round:
  bytes delivered, cumulatively or by SACK, over the round's duration);
- RTprop: the smallest RTT seen in the last 10 s, refreshed by a PROBE_RTT phase (cwnd of four
  segments for 200 ms) when it has not been seen for that long;

and sets cwnd = 2 × BtlBw × RTprop (STARTUP doubles cwnd per round until BtlBw stops growing by 25%
for three rounds; DRAIN holds one BDP until the queue it built is gone; then PROBE_BW). Losses are
repaired by the connection's SACK/NewReno recovery without touching cwnd; a retransmission timeout
still collapses cwnd to one segment, which then grows back to the model's value.

Sending is paced at 1.25 × BtlBw (2.885 × in STARTUP): the control sets `pacing_rate` and the
connection spaces segments by it, through a pacing release time that is part of its next timer.
What is left out: BBR's gain cycling and the BBR v2 loss/ECN response. It is not fair to Reno flows
on a shared bottleneck; choose it per connection (Config(congestion_control="bbr-lite")) where
random loss, not congestion, dominates.
"""

from collections import deque
from typing import ClassVar, Final

from .base import CongestionControl, RateSample, mypyc_attr, register

STARTUP_GAIN: Final = 2.885  # 2/ln 2: BBR's startup gain; here a cap on cwnd over the measured BDP
CWND_GAIN: Final = 1.5
BW_ROUNDS: Final = 10
RTPROP_WINDOW: Final = 10.0  # seconds
PROBE_RTT_TIME: Final = 0.2
FULL_BW_GROWTH: Final = 1.25
FULL_BW_ROUNDS: Final = 3
MIN_SEGMENTS: Final = 4
PACING_GAIN: Final = 1.25  # PROBE_BW paces a little above the measured bandwidth, so the model keeps up


@mypyc_attr(allow_interpreted_subclasses=True)
class BbrLite(CongestionControl):
    name: ClassVar[str] = "bbr-lite"

    def __init__(self, mss: int, initial_window_segments: int = 10):
        super().__init__(mss, initial_window_segments)
        self.mode = "startup"
        self.btl_bw = 0.0  # bytes per second
        self.rt_prop: float | None = None
        self._rt_prop_at = 0.0
        self._samples: deque[float] = deque(maxlen=BW_ROUNDS)
        self._round_target: int | None = None  # delivered count that ends this round
        self._round_start = (0, 0.0)
        self._full_bw, self._full_bw_rounds = 0.0, 0
        self._probe_rtt_until: float | None = None
        self._probe_rtt_min: float | None = None

    # ------------------------------------------------------------ the model
    def bdp(self) -> int:
        if not self.btl_bw or self.rt_prop is None:
            return self.initial_window
        return int(self.btl_bw * self.rt_prop)

    def _target(self) -> int:
        floor = MIN_SEGMENTS * self.mss
        if self.mode == "probe_rtt":
            return floor
        if self.mode == "drain":
            return max(self.bdp(), floor)
        return max(int(CWND_GAIN * self.bdp()), floor)

    def on_ack(self, rs: RateSample) -> None:
        """Update the model from this ACK's sample, then move cwnd toward its target."""
        delivered, flight, rtt, now = rs.delivered_total, rs.in_flight, rs.rtt, rs.now
        if rtt is not None and rtt > 0:
            if self._probe_rtt_min is not None:
                self._probe_rtt_min = min(self._probe_rtt_min, rtt)
            if self.rt_prop is None or rtt <= self.rt_prop:  # an expired RTprop is renewed by PROBE_RTT
                self.rt_prop, self._rt_prop_at = rtt, now
        if self._round_target is None:
            self._new_round(delivered, flight, now)
        elif delivered >= self._round_target:
            start_delivered, start_time = self._round_start
            if now > start_time and delivered > start_delivered:
                self._samples.append((delivered - start_delivered) / (now - start_time))
                self.btl_bw = max(self._samples)
            self._end_of_round()
            self._new_round(delivered, flight, now)
        self._modes(flight, now)
        if self.mode != "startup":
            target = self._target()
            # down at once; up as ACKs arrive (on_ack), so a timeout's one-segment window regrows
            if self.cwnd > target:
                self.cwnd = target
        if self.btl_bw:
            self.pacing_rate = (STARTUP_GAIN if self.mode == "startup" else PACING_GAIN) * self.btl_bw
        if rs.in_recovery or not rs.delivered:
            return
        acked = rs.delivered
        if self.mode == "startup":  # doubles per round, but never far beyond what the path has shown
            cap = int(STARTUP_GAIN * self.bdp()) if self.btl_bw else None
            self.cwnd += acked
            if cap is not None and self.cwnd > cap:
                self.cwnd = max(cap, self.initial_window)
        else:
            self.cwnd = min(self.cwnd + acked, max(self._target(), self.cwnd))

    def _new_round(self, delivered: int, flight: int, now: float) -> None:
        self._round_target = delivered + max(flight, 1)
        self._round_start = (delivered, now)

    def _end_of_round(self) -> None:
        if self.mode != "startup" or not self.btl_bw:
            return
        if self.btl_bw >= self._full_bw * FULL_BW_GROWTH:
            self._full_bw, self._full_bw_rounds = self.btl_bw, 0
            return
        self._full_bw_rounds += 1
        if self._full_bw_rounds >= FULL_BW_ROUNDS:  # the pipe is full: drain the queue startup built
            self.mode = "drain"

    def _modes(self, flight: int, now: float) -> None:
        if self.mode == "drain" and flight <= self.bdp():
            self.mode = "probe_bw"
        if self.mode in ("probe_bw", "drain") and self.rt_prop is not None and now - self._rt_prop_at > RTPROP_WINDOW:
            self.mode, self._probe_rtt_until, self._probe_rtt_min = "probe_rtt", now + PROBE_RTT_TIME, float("inf")
        elif self.mode == "probe_rtt" and self._probe_rtt_until is not None and now >= self._probe_rtt_until:
            if self._probe_rtt_min != float("inf"):
                self.rt_prop = self._probe_rtt_min
            self._rt_prop_at, self._probe_rtt_min = now, None
            self.mode = "probe_bw"

    # ------------------------------------------------------------ the connection's events
    def on_congestion_event(self, flight: int, now: float) -> bool:
        """Random loss is not a congestion signal here: recovery repairs it and cwnd stays (no PRR
        cut), except that a loss in STARTUP ends it (as in BBR v2): the window has outgrown the
        path, and retransmissions into an overflowing queue would be lost again."""
        if self.mode == "startup" and self.btl_bw:
            self.mode = "drain"
            self.cwnd = max(self.bdp(), MIN_SEGMENTS * self.mss)
        return False

    def on_rto(self, flight: int, now: float) -> None:
        self.cwnd = self.mss  # everything in flight is presumed lost; regrow to the model (on_ack)

    def on_idle_restart(self) -> None:
        self.cwnd = min(self.cwnd, max(self._target(), self.initial_window))


register(BbrLite)  # a call, not a class decorator: decorated classes cannot be compiled (mypyc)
