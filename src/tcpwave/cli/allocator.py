"""`tcpwave serve` runs on the C allocator, so that memory connections held goes back to the system.

Python's small-object allocator (pymalloc) returns a 1 MiB arena only once every object in it is gone.
A server that held thousands of connections made its objects in arenas that a few objects made in the
same time (a timer, a grown list, a cache entry) keep alive for good: after 3,000 never-reading
clients went, even with their reference cycles collected and glibc trimmed, RSS stayed at ~1.7x its
idle value (+21 MB of arenas holding little). Under PYTHONMALLOC=malloc every object comes from
glibc's malloc, whose free pages malloc_trim gives back wherever they lie (the same run: ~1.1x).

So serve, when started as a program on glibc, starts itself again (the same process, by exec) with
PYTHONMALLOC=malloc. A PYTHONMALLOC already set is respected (PYTHONMALLOC=pymalloc keeps Python's own).
"""

import os
import sys


def glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError, AttributeError):  # not glibc (musl, macOS)
        return False


def use_system_malloc() -> None:
    """Exec this program again under PYTHONMALLOC=malloc, unless PYTHONMALLOC is set or there is no
    glibc (returns then)."""
    if "PYTHONMALLOC" in os.environ or not glibc() or not sys.orig_argv:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, {**os.environ, "PYTHONMALLOC": "malloc"})
