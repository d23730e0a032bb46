"""Reno (RFC 5681). Loss recovery (NewReno, RFC 6582, without SACK) lives in core/recovery.py."""

from typing import ClassVar

from .base import CongestionControl, RateSample, mypyc_attr, register


@mypyc_attr(allow_interpreted_subclasses=True)
class Reno(CongestionControl):
    name: ClassVar[str] = "reno"

    def __init__(self, mss: int, initial_window_segments: int = 10):
        super().__init__(mss, initial_window_segments)
        self._ca_bytes = 0  # bytes acked since cwnd last grew in congestion avoidance

    def on_ack(self, rs: RateSample) -> None:
        if rs.in_recovery or not rs.acked or not self.may_grow(rs):  # cumulative progress only, not SACKs alone
            return
        if self.cwnd < self.ssthresh:  # slow start: at most one MSS per ACK (RFC 5681 §3.1, L=1)
            self.cwnd += min(rs.delivered, self.mss)
        else:  # congestion avoidance: one MSS per cwnd of data acknowledged (appropriate byte counting)
            self._ca_bytes += rs.delivered
            if self._ca_bytes >= self.cwnd:
                self._ca_bytes -= self.cwnd
                self.cwnd += self.mss

    def on_congestion_event(self, flight: int, now: float) -> bool:
        self._ca_bytes = 0
        return super().on_congestion_event(flight, now)

    def on_rto(self, flight: int, now: float) -> None:
        self._ca_bytes = 0
        super().on_rto(flight, now)


register(Reno)  # a call, not a class decorator: decorated classes cannot be compiled (mypyc)
