"""Reno (RFC 5681) with the NewReno recovery adjustments of RFC 6582."""

from .base import CongestionControl, register


@register
class Reno(CongestionControl):
    name = "reno"

    def __init__(self, mss: int, initial_window_segments: int = 10):
        super().__init__(mss, initial_window_segments)
        self._ca_bytes = 0  # bytes acked since cwnd last grew in congestion avoidance

    def on_ack(self, acked: int, now: float) -> None:
        if self.cwnd < self.ssthresh:  # slow start: at most one MSS per ACK (RFC 5681 §3.1, L=1)
            self.cwnd += min(acked, self.mss)
        else:  # congestion avoidance: one MSS per cwnd of data acknowledged (appropriate byte counting)
            self._ca_bytes += acked
            if self._ca_bytes >= self.cwnd:
                self._ca_bytes -= self.cwnd
                self.cwnd += self.mss

    def _halve(self, flight: int) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)  # RFC 5681 (4)
        self._ca_bytes = 0

    def on_enter_recovery(self, flight: int, inflate: bool = True) -> None:
        self._halve(flight)
        self.cwnd = self.ssthresh + (3 * self.mss if inflate else 0)

    def on_dupack_in_recovery(self) -> None:
        self.cwnd += self.mss

    def on_partial_ack(self, acked: int) -> None:
        # RFC 6582 §3.2 (3): deflate by the amount acked, add back one MSS
        self.cwnd = max(self.cwnd - acked + self.mss, self.mss)

    def on_exit_recovery(self, flight: int) -> None:
        # RFC 6582 §3.2 (3) full ACK, option 1: no burst larger than one MSS beyond FlightSize
        self.cwnd = min(self.ssthresh, max(flight, self.mss) + self.mss)

    def on_rto(self, flight: int) -> None:
        self._halve(flight)
        self.cwnd = self.mss  # the loss window (RFC 5681 §3.1)

    def on_idle_restart(self) -> None:
        self.cwnd = min(self.cwnd, self.initial_window)  # RFC 5681 §4.1 restart window
