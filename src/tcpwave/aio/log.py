"""Runtime log lines on stderr that can neither block the server nor flood it.

A peer controls how often something worth a line happens (a reset, a refused connection), and
whoever reads our stderr controls whether it drains. So every line written while serving goes
through `say(kind, text)`:

- per kind, at most `per_second` lines a second; the rest are counted, and the next line of that
  kind says how many were left out;
- never blocking: the line is written only if the descriptor is ready (a poll with no wait, then
  one write of at most PIPE_BUF bytes, which a pipe takes whole); else it is dropped and counted;
- a broken stderr (EPIPE, EBADF...) ends logging, not the server.

The descriptor's flags are left alone (O_NONBLOCK would be shared with whoever else holds it, a
terminal for instance).
"""

import os
import select
import time

PIPE_BUF = 4096  # POSIX's minimum; Linux's pipe takes a write this size or smaller whole, or not at all


class Log:
    def __init__(self, fd: int = 2, per_second: float = 5.0, clock=time.monotonic) -> None:
        self.fd = fd
        self.per_second = per_second
        self.clock = clock
        self.limits: dict[str, float] = {}  # per kind, when it differs from per_second
        self._budget: dict[str, tuple[int, int]] = {}  # kind -> (second, lines written in it)
        self._left_out: dict[str, int] = {}  # kind -> lines left out by the rate limit since its last line
        self.written = 0
        self.suppressed = 0  # left out by the rate limit
        self.dropped = 0  # the descriptor was not ready (a full pipe nobody reads)
        self.broken: str | None = None  # why logging ended, if it did

    def say(self, kind: str, text: str) -> bool:
        """One line of `kind`, if the rate and the descriptor allow; returns whether it was written."""
        if self.broken is not None:
            self.dropped += 1
            return False
        second = int(self.clock())
        was, n = self._budget.get(kind, (second, 0))
        if was != second:
            n = 0
        if n >= self.limits.get(kind, self.per_second):
            self.suppressed += 1
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return False
        self._budget[kind] = (second, n + 1)
        left_out = self._left_out.pop(kind, 0)
        if left_out:
            text += f" ({left_out} more like this left out)"
        return self._write(("tcpwave: " + text).encode("utf-8", "replace")[: PIPE_BUF - 1] + b"\n")

    def _write(self, data: bytes) -> bool:
        try:
            poller = select.poll()
            poller.register(self.fd, select.POLLOUT)
            ready = poller.poll(0)
            if not ready or not ready[0][1] & select.POLLOUT:
                if ready and ready[0][1] & (select.POLLERR | select.POLLNVAL):
                    self.broken = "stderr is closed"
                self.dropped += 1
                return False
            os.write(self.fd, data)
        except BlockingIOError:
            self.dropped += 1
            return False
        except OSError as e:  # EPIPE (nobody reads any more), EBADF...: logging ends here
            self.broken = os.strerror(e.errno) if e.errno else str(e)
            self.dropped += 1
            return False
        self.written += 1
        return True

    def snapshot(self) -> dict:
        return {"written": self.written, "suppressed": self.suppressed, "dropped": self.dropped,
                "broken": self.broken}


LOG = Log()
LOG.limits.update({"memory": 1, "sink": 1, "internal": 1})


def say(kind: str, text: str) -> bool:
    """A line on stderr through the process's Log (see the module's docstring)."""
    return LOG.say(kind, text)


def sink_failed(sink, error: Exception) -> None:
    """A capture or event sink that failed (and is now disabled), in one line on stderr."""
    name = getattr(sink, "name", None) or type(sink).__name__
    say("sink", f"{name}: {type(error).__name__}: {error}; nothing more is written to it")
