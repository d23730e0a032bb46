"""Giving memory back to the system once connections that held a lot of it are gone.

glibc's malloc keeps what a program frees for its own later use: a server whose connections held
hundreds of MB (peers that stopped reading, then reset) would keep that RSS for good, though nothing
uses it. When connections end with data they had buffered dropped, at least TRIM_AFTER bytes in all,
malloc_trim(0) returns the free pages, at most once per INTERVAL (it walks the heap: ~25 ms after
100 MB was freed, far less when little was). A no-op where the C library has no malloc_trim.
"""

import asyncio
import ctypes
import ctypes.util
import gc

TRIM_AFTER = 1 << 20
INTERVAL = 1.0


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
        self.last = float("-inf")
        self.handle: asyncio.TimerHandle | None = None

    def note(self, nbytes: int) -> None:
        self.dropped += nbytes
        if self.handle is None and self.dropped >= TRIM_AFTER and _TRIM is not None:
            self.handle = self.loop.call_at(max(self.loop.time(), self.last + INTERVAL), self.trim)

    def trim(self) -> None:
        self.handle = None
        self.dropped = 0
        self.last = self.loop.time()
        gc.collect()  # first the closed connections' reference cycles, then their pages
        _TRIM(0)


_trimmers: dict[asyncio.AbstractEventLoop, _Trimmer] = {}


def dropped(loop: asyncio.AbstractEventLoop, nbytes: int) -> None:
    """A connection ended and `nbytes` it had buffered were dropped with it: trim soon if enough was."""
    trimmer = _trimmers.get(loop)
    if trimmer is None:
        for old in [lp for lp in _trimmers if lp.is_closed()]:
            del _trimmers[old]
        trimmer = _trimmers[loop] = _Trimmer(loop)
    trimmer.note(nbytes)
