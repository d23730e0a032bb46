"""The congestion-control interface (RFC 5681 vocabulary) and the registry of implementations.

The connection owns loss *detection* and *recovery* (which segment to resend and when); a
CongestionControl owns only the numbers: cwnd and ssthresh, in bytes, and how events move them.
"""

class CongestionControl:
    name = "base"
    uses_delivery = False  # True: the connection reports every ACK's delivery (on_delivery)

    def __init__(self, mss: int, initial_window_segments: int = 10):
        self.iw_segments = initial_window_segments
        self.ssthresh = 1 << 30  # "arbitrarily high" (RFC 5681 §3.1)
        self.set_mss(mss)

    def set_mss(self, mss: int) -> None:
        """The MSS became known (after the handshake): start from the initial window for it."""
        self.mss = mss
        # RFC 6928: min(10*MSS, max(2*MSS, 14600)) for IW10; other counts scale the same way
        self.initial_window = min(self.iw_segments * mss, max(2 * mss, 1460 * self.iw_segments))
        self.cwnd = self.initial_window

    # events; `flight` is the bytes outstanding (FlightSize) when the event happens
    def on_ack(self, acked: int, now: float) -> None:
        """New data acknowledged outside loss recovery."""

    def on_delivery(self, delivered: int, flight: int, rtt: float | None, now: float) -> None:
        """After every ACK that was processed (if uses_delivery): `delivered` counts every byte the peer has shown it
        holds (cumulatively ACKed or SACKed) since the start, `rtt` is this ACK's RTT sample if any.
        Model-based controls (bbr-lite) build their estimates from it; loss-based ones ignore it."""

    def on_enter_recovery(self, flight: int, inflate: bool = True) -> None:
        """A loss was detected by duplicate ACKs or SACK (fast retransmit). inflate=False for SACK
        recovery (RFC 6675), where the pipe estimate replaces Reno's window inflation."""

    def on_dupack_in_recovery(self) -> None:
        """Another duplicate ACK during recovery: a segment has left the network."""

    def on_partial_ack(self, acked: int) -> None:
        """An ACK during recovery that does not reach the recovery point."""

    def on_exit_recovery(self, flight: int) -> None:
        """The recovery point was acknowledged."""

    def on_rto(self, flight: int) -> None:
        """The retransmission timer expired."""

    def on_idle_restart(self) -> None:
        """Sending resumes after more than one RTO of idleness (RFC 5681 §4.1)."""


REGISTRY: dict[str, type[CongestionControl]] = {}


def register(cls: type[CongestionControl]) -> type[CongestionControl]:
    REGISTRY[cls.name] = cls
    return cls


def create(name: str, mss: int, initial_window_segments: int = 10) -> CongestionControl:
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown congestion control {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return cls(mss, initial_window_segments)

