"""An asyncio event loop on a virtual clock: when nothing is ready to run, time jumps to the next timer
instead of waiting for it. A test of a 60-second timeout takes milliseconds, and a run whose every
random choice is seeded replays exactly: the same packets at the same (virtual) times.

Sockets, pipes and threads still work (the loop polls them without waiting); only waiting on the
clock is skipped."""

import asyncio
import selectors


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Polls without waiting; a wait the loop asked for is taken on the virtual clock."""

    REAL_WAIT = 0.05  # nothing scheduled at all: wait this long for real (another thread may call in)

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list:
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            return super().select(self.REAL_WAIT)
        self._clock.now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop with `time()` on a virtual clock that starts at 0."""

    def __init__(self) -> None:
        self._clock = _Clock()
        super().__init__(_JumpingSelector(self._clock))

    def time(self) -> float:
        return self._clock.now
