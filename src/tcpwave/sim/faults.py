"""Targeted faults: "drop the first FIN from client to server", and the like.

A Fault matches packets by direction and TCP flags (or any predicate on the
parsed segment) and acts on the first `count` matches (or, with `skip`, on the
matches after the first `skip`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from ..wire.tcp import FLAG_NAMES, Segment

_FLAG_BITS = {name: bit for bit, name in FLAG_NAMES}


@dataclass
class Fault:
    src: str  # host name the packet comes from
    dst: str  # host name it goes to
    flags: str = ""  # e.g. "FIN" or "SYN,ACK": all these flags set (and, with exact=True, no others)
    exact: bool = False
    with_data: bool | None = None  # True: only segments with payload; False: only without
    match: Callable[[Segment], bool] | None = None
    action: str = "drop"  # drop | corrupt | duplicate | delay
    delay: float = 0.0  # with action "delay": seconds added to the segment's trip
    count: int = 1
    skip: int = 0
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def applies(self, src: str, dst: str, seg: Segment | None) -> bool:
        if src != self.src or dst != self.dst or seg is None or self.fired >= self.count:
            return False
        bits = 0
        for name in filter(None, self.flags.split(",")):
            bits |= _FLAG_BITS[name.strip().upper()]
        if seg.flags & bits != bits or (self.exact and seg.flags != bits):
            return False
        if self.with_data is not None and bool(len(seg.payload)) != self.with_data:
            return False
        if self.match is not None and not self.match(seg):
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.fired += 1
        return True
