"""Rates an attacker can drive, bounded: challenge ACKs (RFC 5961 §7), ACKs to out-of-window
segments, RSTs to segments that match no connection.

A RateBudget is shared by a stack's connections: at most about `limit` events per second. As in
Linux since CVE-2016-5696, each second's budget is drawn at random between limit/2 and 1.5 x limit,
so an off-path attacker cannot count a global counter down to learn which segments hit a connection.
"""

import random


class RateBudget:
    __slots__ = ("limit", "_rng", "_second", "_left", "denied")

    def __init__(self, limit: int, rng: random.Random | None = None) -> None:
        self.limit = limit
        self._rng = rng or random.SystemRandom()
        self._second = -1
        self._left = 0
        self.denied = 0  # events refused so far (for tests and counters)

    def allow(self, now: float) -> bool:
        second = int(now)
        if second != self._second:
            self._second = second
            half = max(1, self.limit // 2)
            self._left = half + self._rng.randrange(self.limit + 1) if self.limit > 0 else 0
        if self._left > 0:
            self._left -= 1
            return True
        self.denied += 1
        return False
