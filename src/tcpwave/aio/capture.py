"""A packet tap for applications: any link a Runtime drives (MemoryLink, TunLink, FaultyLink), with
every packet in and out also handed to capture writers, as `tcpwave serve --pcap` does.

    with open("run.pcap", "wb") as f:
        runtime = Runtime(stack, tapped(MemoryLink(loop), PcapWriter(f)))

A writer is any callable(t, packet): a PcapWriter, a PcapngWriter, a list's append wrapped in a lambda.
One that raises (a full disk) is dropped and the packets go on (drivers/taps.py)."""

import time
from collections.abc import Callable
from typing import Any

from ..drivers.taps import Tapped


def tapped(link: Any, *writers: Callable[[float, bytes], Any], clock: Callable[[], float] = time.time,
           on_error: Callable[[Any, Exception], Any] | None = None) -> Tapped:
    """`link`, whose packets (both ways) also go to each writer, stamped with `clock()` (the wall
    clock unless given: a loop's time, a test's virtual clock)."""
    link_with_taps = Tapped(link, writers, on_error=on_error)
    link_with_taps.clock = clock
    return link_with_taps
