"""A point-to-point link, one direction at a time: latency, bandwidth, a drop-tail queue,
and seeded random loss, reordering, duplication and corruption."""

import random
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class LinkParams:
    latency: float = 0.010  # one-way propagation delay, seconds
    bandwidth: float = 100e6  # bits per second; 0 = infinite
    queue_bytes: int = 256 * 1024  # drop-tail queue in front of the wire
    loss: float = 0.0  # probability a packet is lost
    reorder: float = 0.0  # probability a packet is held back...
    reorder_delay: float = 0.005  # ...by up to this long, so later ones overtake it
    duplicate: float = 0.0
    corrupt: float = 0.0  # probability one byte is flipped (the receiver's checksum catches it)


DEFAULT_LINK: Final = LinkParams()  # 10 ms, 100 Mbit/s, 256 KiB queue, no impairments


class Direction:
    """The transmit side of one direction of a link."""

    def __init__(self, params: LinkParams, rng: random.Random):
        self.params = params
        self.rng = rng
        self._busy_until = 0.0

    def schedule(self, now: float, size: int) -> tuple[str, float | None]:
        """Decide one packet's fate: ('lost'|'queue_full', None) or ('ok', arrival time)."""
        p = self.params
        rng = self.rng
        start = max(now, self._busy_until)
        if p.bandwidth:
            backlog = (start - now) * p.bandwidth / 8
            if backlog + size > p.queue_bytes:
                return "queue_full", None
            self._busy_until = start + size * 8 / p.bandwidth
        else:
            self._busy_until = start
        if p.loss and rng.random() < p.loss:
            return "lost", None
        arrival = self._busy_until + p.latency
        if p.reorder and rng.random() < p.reorder:
            arrival += rng.random() * p.reorder_delay
        return "ok", arrival

    def maybe_duplicate(self) -> bool:
        return bool(self.params.duplicate) and self.rng.random() < self.params.duplicate

    def maybe_corrupt(self, packet: bytes) -> bytes:
        if self.params.corrupt and self.rng.random() < self.params.corrupt:
            return flip_byte(packet, self.rng)
        return packet


def flip_byte(packet: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(packet))
    b = bytearray(packet)
    b[i] ^= 1 << rng.randrange(8)
    return bytes(b)
