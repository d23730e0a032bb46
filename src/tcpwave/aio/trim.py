"""Giving memory back to the system once connections that held a lot of it are gone.

glibc's malloc keeps what a program frees for its own later use: a server whose connections held
hundreds of MB (peers that stopped reading, then reset) would keep that RSS for good, though nothing
uses it. Two things ask for a trim: connections that end with data they had buffered dropped, at least
TRIM_AFTER bytes in all (`dropped`), and the runtime seeing its connection table or the stack's
buffers shrink a lot (`shrunk`). A trim is a full garbage collection first (closed connections are
reference cycles: until they are collected, their memory is not free to give back), then
malloc_trim(0); at most once per INTERVAL and never more than ~10% of the time (a collection over many
live connections takes a while; the trim ~25 ms after 100 MB was freed). Without glibc's malloc_trim,
nothing is done.

`serving()` readies the collector for a long-lived server once it is up: what start-up made lives as
long as the process, so it is frozen (no full collection looks at it again), and young collections
come every YOUNG allocations instead of Python's 700, so fewer short-lived objects (segments, timer
entries) outlive two young collections and pile up towards a full one. Under 3,000 clients that never
read, Python's own full collections over the live table paused the loop up to 0.21 s, 13-14 times a
run, finding nothing during the attack: each pause let the TUN queue overflow further.
"""

import asyncio
import ctypes
import ctypes.util
import gc
import time

TRIM_AFTER = 1 << 20
INTERVAL = 1.0
GATHER = 0.25  # a burst of ends (a client resetting all its connections) is trimmed once, after it
SHARE = 0.1  # the most of the time trims may take
YOUNG = 20_000  # allocations (less deallocations) between young collections, once serving


def serving() -> None:
    """The process is up and will serve for long: collect what start-up left, freeze what is left
    (modules, the stack, the listener: never garbage), and space young collections out."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])


def collector() -> dict:
    """What `tcpwave ss` shows of the collector: objects frozen, thresholds, collections by generation."""
    return {"frozen": gc.get_freeze_count(), "threshold": list(gc.get_threshold()),
            "collections": [g["collections"] for g in gc.get_stats()]}


def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_TRIM = _malloc_trim()


class _Trimmer:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.dropped = 0  # bytes dropped since the last trim
        self.next_at = float("-inf")  # the earliest time of the next trim
        self.handle: asyncio.TimerHandle | None = None

    def note(self, nbytes: int) -> None:
        self.dropped += nbytes
        if self.dropped >= TRIM_AFTER:
            self.ask(GATHER)

    def ask(self, delay: float) -> None:
        """A trim `delay` s from now, or as soon after as the rate allows (one already asked for stands)."""
        if self.handle is None and _TRIM is not None:
            self.handle = self.loop.call_at(max(self.loop.time() + delay, self.next_at), self.trim)

    def trim(self) -> None:
        self.handle = None
        self.dropped = 0
        t0 = time.perf_counter()
        gc.collect()  # first the closed connections' reference cycles, then their pages
        _TRIM(0)
        # never more than ~10% of the time: with many live objects a full collection takes a while
        self.next_at = self.loop.time() + max(INTERVAL, (time.perf_counter() - t0) / SHARE)


_trimmers: dict[asyncio.AbstractEventLoop, _Trimmer] = {}


def _trimmer(loop: asyncio.AbstractEventLoop) -> _Trimmer:
    trimmer = _trimmers.get(loop)
    if trimmer is None:
        for old in [lp for lp in _trimmers if lp.is_closed()]:
            del _trimmers[old]
        trimmer = _trimmers[loop] = _Trimmer(loop)
    return trimmer


def dropped(loop: asyncio.AbstractEventLoop, nbytes: int) -> None:
    """A connection ended and `nbytes` it had buffered were dropped with it: trim soon if enough was."""
    _trimmer(loop).note(nbytes)


def shrunk(loop: asyncio.AbstractEventLoop) -> None:
    """Many connections went, or the buffers charged to the stack fell by a lot: trim now, or as soon
    as the rate allows."""
    _trimmer(loop).ask(0.0)
