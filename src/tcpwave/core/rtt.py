"""Retransmission timeout per RFC 6298: SRTT, RTTVAR, RTO with backoff.

The floor is Linux's where RFC 6298 leaves a choice: rto_min bounds the variance term, so
RTO = SRTT + max(G, 4·RTTVAR, rto_min) (Linux's rttvar_us >= tcp_rto_min). RFC 6298 (2.4) instead
rounds the whole RTO up to its minimum (a SHOULD); with a 100 ms RTT and rto_min 1 s that is 1.0 s
where Linux, and tcpwave, wait 1.1 s. `packetdrill --kernel` checks it against the kernel.
"""

from .config import Config


class RttEstimator:
    __slots__ = (
        "_cfg", "srtt", "rttvar", "rto", "backoffs"
    )

    def __init__(self, config: Config):
        self._cfg = config
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = config.rto_initial
        self.backoffs = 0  # timeouts since the last valid sample (tcpi_backoff)

    def sample(self, r: float) -> None:
        """A valid sample (Karn's rule is the caller's job). Also clears any backoff."""
        cfg = self._cfg
        self.backoffs = 0
        if self.srtt is None:  # (2.2)
            self.srtt = r
            self.rttvar = r / 2
        else:  # (2.3), alpha = 1/8, beta = 1/4
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        self.rto = min(self.srtt + max(cfg.clock_granularity, 4 * self.rttvar, cfg.rto_min), cfg.rto_max)

    def after_syn_timeout(self) -> None:
        """(5.7): the SYN or SYN,ACK timed out and no RTT sample followed: data starts with an RTO
        of 3 s (the pre-RFC 6298 initial value), not the backed-off handshake value."""
        self.rto = min(max(3.0, self._cfg.rto_min), self._cfg.rto_max)

    def backoff(self) -> None:
        """(5.5): double the RTO after a retransmission timeout, up to the maximum."""
        self.rto = min(self.rto * 2, self._cfg.rto_max)
        self.backoffs += 1

    @property
    def backed_off(self) -> bool:
        return self.backoffs > 0
