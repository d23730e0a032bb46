"""The stack's memory budget, as Linux's tcp_mem: every connection's send buffer and receive buffer
(in-order bytes and the out-of-order queue) is charged to one account with three marks, in bytes.

- NORMAL: below `pressure` (and, once pressure was entered, back below `low`);
- PRESSURE: above `pressure`, until back below `low`: the windows we offer stop growing past a few
  segments, and out-of-order data is no longer queued (what a connection holds out of order is
  pruned: data we only SACKed, which the sender resends, RFC 2018 §8);
- LIMIT: at `high`: a segment that needs new memory is dropped (unless its connection holds no
  unread data, so every connection can make progress) and answered with a zero window (the sender
  probes, instead of resending into a window that would drop it again: core/receiver.py), send()
  takes no more than one segment into an empty buffer, new connections are refused (the SYN is
  dropped: the client retries, as it does when a Linux listener's queues are full, instead of failing
  at once on a RST), and the stack resets its largest consumers until the account is back to the
  middle of pressure and high.

A Stack charges each connection after each step: the difference between what its buffers hold now
and what was charged before (O(1)), so nothing is counted twice and the account can never drift; a
connection leaves the account when it is CLOSED or in TIME_WAIT (what the application has not read
by then is the application's).
"""

from typing import Final

NORMAL: Final = 0
PRESSURE: Final = 1
LIMIT: Final = 2
LEVELS: Final = ("normal", "pressure", "limit")


class MemoryBudget:
    __slots__ = ("low", "pressure", "high", "used", "level", "peak", "high_water", "dropped", "pruned", "refused",
                 "reset", "events")

    def __init__(self, low: float, pressure: float, high: float) -> None:
        if not 0 <= low <= pressure <= high:
            raise ValueError(f"the memory marks must satisfy 0 <= low <= pressure <= high, not {low}, {pressure}, "
                             f"{high}")
        self.low, self.pressure, self.high = low, pressure, high
        self.used = 0  # bytes charged now
        self.level = NORMAL
        self.peak = 0  # the most ever charged (as of the last `new_water_mark()`)
        self.high_water = 0  # the most charged since the last `new_water_mark()`
        self.dropped = 0  # segments dropped at the limit (their data needed memory there was not)
        self.pruned = 0  # out-of-order bytes pruned under pressure
        self.refused = 0  # connections refused at the limit (SYNs dropped)
        self.reset = 0  # connections reset to get back under the limit
        self.events = 0  # the four above, summed: one compare tells a logger something happened

    def charge(self, delta: int) -> None:
        used = self.used = self.used + delta
        if used > self.high_water:
            self.high_water = used
        if used >= self.high:
            self.level = LIMIT
        elif used > self.pressure:
            self.level = PRESSURE
        elif used < self.low:
            self.level = NORMAL
        elif self.level == LIMIT:
            self.level = PRESSURE

    def fell(self) -> int:
        """How far the account fell from its high water (the most charged since `new_water_mark()`)."""
        return self.high_water - self.used

    def new_water_mark(self) -> None:
        self.peak = max(self.peak, self.high_water)
        self.high_water = self.used

    def count(self, what: str, n: int = 1) -> None:
        setattr(self, what, getattr(self, what) + n)
        self.events += 1

    def snapshot(self) -> dict:
        """What `tcpwave ss` shows: the marks, the use, and what the budget refused or reclaimed."""
        return {"level": LEVELS[self.level], "used": self.used, "peak": max(self.peak, self.high_water),
                "low": self.low, "pressure": self.pressure, "high": self.high, "dropped_segments": self.dropped,
                "pruned_bytes": self.pruned, "refused_connections": self.refused, "reset_connections": self.reset}


UNLIMITED: Final = MemoryBudget(float("inf"), float("inf"), float("inf"))  # a connection outside any stack
