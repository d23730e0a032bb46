"""A network namespace of the calling process's own (unshare(CLONE_NEWNET)): it goes away with the
last process in it, with every device made there. Python 3.11 has no os.unshare, hence libc."""

import ctypes
import os

CLONE_NEWNET = 0x40000000


def unshare_net(who: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"unshare(CLONE_NEWNET): {os.strerror(e)} ({who} needs root)")
