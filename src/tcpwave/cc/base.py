"""The congestion-control interface and the registry of implementations.

The connection owns loss *detection* and *recovery* (core/recovery.py: which segment is lost, what
to resend, PRR's pacing of repairs); a CongestionControl owns the numbers cwnd and ssthresh, in
bytes, and an optional pacing rate. It hears three things, after Linux's `tcp_congestion_ops`:

- `on_ack(rs)`: every acceptable ACK, with one RateSample (what was delivered, the RTT, the bytes in
  flight, whether recovery is under way);
- `on_congestion_event(flight, now)`: a loss was detected (fast recovery or a repaired tail loss);
  set ssthresh. Return True to have the window brought down to it by PRR during recovery;
- `on_rto(flight, now)`: the retransmission timer expired.
"""

import dataclasses
from typing import ClassVar, Final

try:  # the compiled build (setup.py) reads the marks below; mypy ships mypy_extensions
    from mypy_extensions import mypyc_attr
except ImportError:  # without mypy the marks mean nothing: the core needs only the standard library
    def mypyc_attr(*_attrs: object, **_flags: object):  # type: ignore[misc]
        return lambda cls: cls


@dataclasses.dataclass(slots=True)
class RateSample:
    """What one ACK told the sender (after Linux's `struct rate_sample`)."""

    delivered: int  # bytes newly acknowledged, cumulatively or by SACK, by this ACK
    acked: int  # of which cumulatively (SND.UNA moved): a loss-based window grows only then
    delivered_total: int  # bytes delivered since the connection started
    rtt: float | None  # this ACK's RTT sample, if it gave one
    prior_in_flight: int  # bytes in flight before the ACK
    in_flight: int  # and after it
    newly_lost: int  # bytes this ACK made us deem lost
    app_limited: bool  # the sender had nothing more to send when the data was sent
    in_recovery: bool  # fast recovery is under way: the window is PRR's, not the control's
    now: float
    round_start: bool = False  # this ACK ends a round trip (the data sent at the last round start arrived)

    def __init__(self, delivered: int, acked: int, delivered_total: int, rtt: float | None, prior_in_flight: int,
                 in_flight: int, newly_lost: int, app_limited: bool, in_recovery: bool, now: float,
                 round_start: bool = False) -> None:
        # (an __init__ of its own: mypyc compiles it; the one @dataclass writes runs as Python, per ACK)
        self.delivered, self.acked, self.delivered_total, self.rtt = delivered, acked, delivered_total, rtt
        self.prior_in_flight, self.in_flight, self.newly_lost = prior_in_flight, in_flight, newly_lost
        self.app_limited, self.in_recovery, self.now, self.round_start = app_limited, in_recovery, now, round_start


@mypyc_attr(allow_interpreted_subclasses=True)  # applications subclass the algorithms
class CongestionControl:
    name: ClassVar[str] = "base"

    def __init__(self, mss: int, initial_window_segments: int = 10):
        self.iw_segments = initial_window_segments
        self.ssthresh = 1 << 30  # "arbitrarily high" (RFC 5681 §3.1)
        self.pacing_rate = 0.0  # bytes per second; 0: no pacing
        self.set_mss(mss)

    def set_mss(self, mss: int) -> None:
        """The MSS became known (after the handshake): start from the initial window for it."""
        self.mss = mss
        # RFC 6928: min(10*MSS, max(2*MSS, 14600)) for IW10; other counts scale the same way
        self.initial_window = min(self.iw_segments * mss, max(2 * mss, 1460 * self.iw_segments))
        self.cwnd = self.initial_window

    def on_ack(self, rs: RateSample) -> None:
        """An acceptable ACK was processed."""

    def may_grow(self, rs: RateSample) -> bool:
        """Grow cwnd only while it limits the sender (RFC 7661; Linux tcp_is_cwnd_limited): in slow
        start while the flight is at least half of it, afterwards only when it was the limit."""
        if self.cwnd < self.ssthresh and 2 * rs.prior_in_flight >= self.cwnd:
            return True
        return not rs.app_limited

    def on_congestion_event(self, flight: int, now: float) -> bool:
        """A loss was detected: set ssthresh; True lets PRR bring cwnd down to it.

        RFC 5681 (4) halves FlightSize; Linux halves cwnd. FlightSize counts SACKed data, which piles
        up while RACK waits out a reordering window, and cwnd may exceed what an application-limited
        sender uses: half the smaller of the two avoids both traps."""
        self.ssthresh = max(min(flight, self.cwnd) // 2, 2 * self.mss)
        return True

    def on_rto(self, flight: int, now: float) -> None:
        """The retransmission timer expired: everything in flight is presumed lost."""
        self.ssthresh = max(min(flight, self.cwnd) // 2, 2 * self.mss)
        self.cwnd = self.mss  # the loss window (RFC 5681 §3.1)

    def on_tx_start(self, idle: float, now: float) -> None:
        """New data goes out with nothing in flight, `idle` seconds after the last data was sent."""

    def on_idle_restart(self) -> None:
        """Sending resumes after more than one RTO of idleness (RFC 5681 §4.1)."""
        self.cwnd = min(self.cwnd, self.initial_window)


REGISTRY: Final[dict[str, type[CongestionControl]]] = {}


def register(cls: type[CongestionControl]) -> type[CongestionControl]:
    REGISTRY[cls.name] = cls
    return cls


def create(name: str, mss: int, initial_window_segments: int = 10) -> CongestionControl:
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown congestion control {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return cls(mss, initial_window_segments)
