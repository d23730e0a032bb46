"""The simulator: a virtual clock, hosts with stacks, and links between them.

Everything random comes from one seed: the links' RNGs and each stack's seed are
drawn from it in a fixed order, so the same seed replays the same run byte for
byte. Time is virtual: a 60-second TIME_WAIT costs nothing.
"""

import random
from collections.abc import Callable
from heapq import heappop, heappush

from ..core.config import Config
from ..core.trace import Tracer
from ..stack import Stack, segment_fields
from ..wire.errors import MalformedPacket
from ..wire.ip import parse_ip
from ..wire.tcp import PROTO_TCP, flags_text, parse_tcp
from .faults import Fault
from .link import DEFAULT_LINK, Direction, LinkParams, flip_byte

AppHandler = Callable[["Host", object, object], None]  # (host, connection, event)


class Host:
    def __init__(self, sim: "Simulator", name: str, stack: Stack):
        self.sim = sim
        self.name = name
        self.stack = stack
        self.on_event: AppHandler | None = None
        self.peer: Host | None = None
        self._direction: Direction | None = None
        self._timer_at: float | None = None

    def pump(self) -> None:
        """Hand events to the application, packets to the link, and re-arm the one timer."""
        stack = self.stack
        while True:
            events = stack.events()
            for conn, event in events:
                if self.on_event is not None:
                    self.on_event(self, conn, event)
            packets = stack.packets_to_send()
            for packet in packets:
                self.sim._transmit(self, packet)
            if not events and not packets:
                break
        t = stack.next_timer()
        if t is not None and t != self._timer_at:
            self._timer_at = t
            deadline: float = t
            self.sim.at(max(deadline, self.sim.now), lambda: self._fire(deadline))
        elif t is None:
            self._timer_at = None

    def _fire(self, t: float) -> None:
        if self._timer_at != t:
            return  # superseded by a later re-arm
        self._timer_at = None
        self.stack.handle_timer(self.sim.now)
        self.pump()

    def receive(self, packet: bytes) -> None:
        self.stack.receive_packet(packet, self.sim.now)
        self.pump()


class Simulator:
    def __init__(self, seed: int = 0, tracer: Tracer | None = None):
        self.seed = seed
        self.rng = random.Random(seed)
        self.tracer = tracer or Tracer()
        self.now = 0.0
        self.hosts: dict[str, Host] = {}
        self.faults: list[Fault] = []
        self.taps: list[Callable[[float, bytes], None]] = []  # e.g. a PcapWriter
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._n = 0
        self.packets_sent = 0

    # --------------------------------------------------------------- set-up
    def add_host(self, name: str, addresses, *, config: Config | None = None, mtu: int = 1500) -> Host:
        stack = Stack(addresses, config=config, seed=self.rng.getrandbits(64), tracer=self.tracer, host=name, mtu=mtu)
        host = self.hosts[name] = Host(self, name, stack)
        return host

    def link(self, a: Host, b: Host, params: LinkParams = DEFAULT_LINK, back: LinkParams | None = None) -> None:
        """Join a and b; `params` for a->b, `back` (default: the same) for b->a."""
        a.peer, b.peer = b, a
        a._direction = Direction(params, random.Random(self.rng.getrandbits(64)))
        b._direction = Direction(back or params, random.Random(self.rng.getrandbits(64)))

    def add_fault(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    # ------------------------------------------------------------- running
    def at(self, t: float, fn: Callable[[], None]) -> None:
        self._n += 1
        heappush(self._queue, (t, self._n, fn))

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        self.at(self.now + delay, fn)

    def call(self, host: Host, fn: Callable[[], None]) -> None:
        """Run an application action on host now, then let the host send what it produced."""
        fn()
        host.pump()

    def run(self, until: float | None = None, stop: Callable[[], bool] | None = None,
            max_events: int = 5_000_000) -> float:
        """Process events in time order until none are left, `until` passes, or stop() is true."""
        for _ in range(max_events):
            if not self._queue or (stop is not None and stop()):
                return self.now
            t, _, fn = self._queue[0]
            if until is not None and t > until:
                self.now = until
                return self.now
            heappop(self._queue)
            self.now = max(self.now, t)
            fn()
        raise RuntimeError(f"simulation did not settle within {max_events} events (t={self.now:.3f})")

    # ----------------------------------------------------------- the wire
    def _transmit(self, host: Host, packet: bytes, counted: bool = True) -> None:
        self.packets_sent += counted
        for tap in self.taps:
            tap(self.now, packet)
        peer, direction = host.peer, host._direction
        if peer is None or direction is None:
            return self._link_event(host, packet, "drop", "no_link")
        fault = self._fault_for(host, peer, packet)
        action = fault.action if fault is not None else None
        if action == "drop":
            return self._link_event(host, packet, "drop", "fault")
        fate, arrival = direction.schedule(self.now, len(packet))
        if fate != "ok" or arrival is None:
            return self._link_event(host, packet, "drop", fate)
        if fault is not None and action == "delay":
            arrival += fault.delay
            self._link_event(host, packet, "link", f"delayed {fault.delay:g} s")
        if action == "corrupt":
            packet = flip_byte(packet, direction.rng)
            self._link_event(host, packet, "link", "corrupt")
        else:
            packet = direction.maybe_corrupt(packet)
        self.at(arrival, lambda: peer.receive(packet))
        if action == "duplicate" or direction.maybe_duplicate():
            self._link_event(host, packet, "link", "duplicate")
            self.at(arrival + 1e-6, lambda: peer.receive(packet))

    def replay(self, host: Host, packet: bytes, note: str) -> None:
        """Put a copy of a packet `host` sent earlier back on its link now (an old duplicate that was
        held in the network): traced as a send with `note`, seen by the taps, delivered after the
        link's delay like any other packet."""
        if self.tracer.enabled:
            try:
                pkt = parse_ip(packet)
                fields = segment_fields(parse_tcp(pkt.payload), pkt.src, pkt.dst)
                self.tracer.emit(self.now, host.name, "send", **fields, note=note)
            except MalformedPacket:
                pass
        self._transmit(host, packet, counted=False)

    def _fault_for(self, host: Host, peer: Host, packet: bytes) -> Fault | None:
        if not self.faults:
            return None
        seg = _peek_tcp(packet)
        for fault in self.faults:
            if fault.applies(host.name, peer.name, seg):
                return fault
        return None

    def _link_event(self, host: Host, packet: bytes, type: str, reason: str) -> None:
        if not self.tracer.enabled:
            return
        fields: dict[str, object] = {"where": "link", "reason": reason}
        seg = _peek_tcp(packet)
        if seg is not None:
            fields.update(flags=flags_text(seg.flags), seq=seg.seq, ack=seg.ack, len=len(seg.payload), win=seg.window)
        self.tracer.emit(self.now, host.name, type, **fields)


def _peek_tcp(packet: bytes):
    try:
        pkt = parse_ip(packet)
        return parse_tcp(pkt.payload) if pkt.proto == PROTO_TCP else None
    except MalformedPacket:
        return None
