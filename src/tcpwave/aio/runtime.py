"""Run a Stack on the asyncio event loop: packets in from a link, one re-armed loop timer, packets out.

A link is anything with `attach(callback)` (called with a list of packets as they arrive) and
`send(packet)`: `MemoryLink.pair()` joins two runtimes in one process (tests, demos), `TunLink` puts
the stack on a TUN device.
"""

import asyncio
import os

from ..core import events as ev
from . import log, trim

# the protocol call each event leads to, for the message when it fails (as asyncio's transports word it)
_CALLS = {ev.Connected: "connection_made", ev.DataReadable: "data_received", ev.EndOfStream: "eof_received",
          ev.SendSpace: "resume_writing"}


_READABLE = ev.DataReadable
MIB = 1 << 20  # (the budget's marks are floats: inf when unlimited)


class Runtime:
    def __init__(self, stack, link, loop: asyncio.AbstractEventLoop | None = None):
        self.stack = stack
        self.link = link
        self.loop = loop or asyncio.get_running_loop()
        self._t0 = self.loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_scheduled = False
        self._flushing = False  # routing events: calls they make need no kick()
        self._transports: dict = {}  # Connection -> TcpTransport
        self._servers: dict = {}  # Listener -> server object (makes transports for accepted conns)
        self._closed = False
        self.worker: str | None = None  # "i/N" when one of N workers (aio/workers.py)
        self._memory_seen = 0  # the stack's memory-budget events already told (one line a second at most)
        self._memory_next = 0.0
        self._memory_pending = False
        self._trim_timer = self.loop.call_later(TRIM_EVERY, self._trim)
        self._trim_conns = 0  # the most connections seen since the last trim
        self._trims_left = 0  # trims still to come on the next looks (what is let go later)
        link.attach(self._on_packets)

    def now(self) -> float:
        return self.loop.time() - self._t0

    def register(self, conn, transport) -> None:
        transports = self._transports
        transports[conn] = transport
        if len(transports) > self._trim_conns:  # the most held since the last trim: connections that
            self._trim_conns = len(transports)  # came and went between two looks count too

    def unregister(self, conn) -> None:
        self._transports.pop(conn, None)

    def add_server(self, listener, server) -> None:
        self._servers[listener] = server

    def remove_server(self, listener) -> None:
        self._servers.pop(listener, None)

    def kick(self) -> None:
        """After user calls: send what they produced, route events and re-arm the timer, soon. (Calls
        made while a flush routes events need none: that flush goes on until nothing is left.)"""
        if not self._flush_scheduled and not self._closed and not self._flushing:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _on_packets(self, packets, trusted=None) -> None:
        stack = self.stack
        errors = stack.counters.get("internal_error", 0)
        stack.receive_packets(packets, self.now(), trusted)
        if stack.counters.get("internal_error", 0) != errors:
            total = stack.counters["internal_error"]
            log.say("internal", f"{total} packet(s) so far raised inside the stack and were dropped (a bug: "
                                f"please report it); the last: {stack.last_error}")
        self._flush()

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        if self._closed:
            return
        self.stack.handle_timer(self.now())
        self._flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._closed:
            return  # the link is gone: nothing more goes out
        stack = self.stack
        self._flushing = True
        try:
            for _ in range(1000):  # applications may react with more calls; bounded, never a busy loop
                events = stack.events()
                told: set | None = None
                for conn, event in events:
                    if event.__class__ is _READABLE:  # one a connection: a batch of N segments makes N,
                        if told is None:  # and the first reads them all (they were all in before it)
                            told = set()
                        elif conn in told:
                            continue
                        told.add(conn)
                    self._route(conn, event)
                packets = stack.packets_to_send_offload()
                for packet, gso_size, partial in packets:
                    self.link.send(packet, gso_size, partial)
                if not events and not packets:
                    break
            else:  # (still busy after 1000 rounds: the rest on the next turn of the loop)
                self._flushing = False
                self.kick()
        finally:
            self._flushing = False
        deadline = stack.next_timer()
        # The loop timer is moved only earlier: one armed for an earlier time than needed fires, finds
        # nothing due and is re-armed then, which costs less than moving it on every ACK
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(self._t0 + deadline, self._on_timer)
        if stack.memory.events != self._memory_seen:  # (after the timer: a line is never worth a stall)
            self._memory_note()

    def _memory_note(self) -> None:
        """What the memory budget refused or reclaimed, in one line a second at most (the counts so
        far: a line held back for the rate comes a second later with them)."""
        mem, now = self.stack.memory, self.loop.time()
        if self._memory_pending or mem.events == self._memory_seen:
            return
        if now < self._memory_next:
            self._memory_pending = True
            self.loop.call_later(self._memory_next - now, self._memory_due)
            return
        self._memory_seen, self._memory_next = mem.events, now + 1.0
        log.say("memory", f"memory budget at {mem.used / MIB:.0f} MiB of {mem.high / MIB:.0f} MiB: so far "
                          f"{mem.refused} connection(s) refused, {mem.reset} reset, {mem.dropped} segment(s) "
                          f"dropped, {mem.pruned} out-of-order byte(s) pruned")

    def _memory_due(self) -> None:
        self._memory_pending = False
        self._memory_note()

    def _trim(self) -> None:
        """Every TRIM_EVERY s: when the buffers charged to the stack or the connections held fell by a
        lot since the last trim, collect the closed connections' cycles and ask the C allocator to give
        the freed memory back to the system (glibc keeps it otherwise: after 3,000 connections went,
        RSS stayed at 4x its idle value)."""
        n, mem = len(self._transports), self.stack.memory
        self._trim_conns = max(self._trim_conns, n)
        # (a table that halved or emptied counts too: the last of 3,000 going slowly, a few at a time)
        went = self._trim_conns - n
        if mem.fell() >= TRIM_BYTES or went >= max(TRIM_FEWEST, min(TRIM_CONNECTIONS, self._trim_conns // 2)) \
                or (went and not n):
            self._trims_left = 1 + TRIM_AGAIN
        if self._trims_left:
            # and on the next looks: what was still being let go (transports closing, stale timer entries)
            self._trims_left -= 1
            trim.shrunk(self.loop)
            mem.new_water_mark()
            self._trim_conns = n
        if not self._closed:
            self._trim_timer = self.loop.call_later(TRIM_EVERY, self._trim)

    def _route(self, conn, event) -> None:
        transport = self._transports.get(conn)
        if transport is None and isinstance(event, ev.Connected) and conn.passive:
            for listener, server in self._servers.items():
                if conn in listener.accept_queue:
                    listener.accept_queue.remove(conn)
                    transport = server._accepted(conn)  # (None: held until the server starts serving)
                    break
        if transport is not None:
            try:
                transport._on_event(event)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 (one faulty protocol must not stall the others)
                self._protocol_failed(transport, event, exc)

    def _protocol_failed(self, transport, event, exc: BaseException) -> None:
        """As asyncio's socket transports: report it to the loop's exception handler and abort that
        connection (a RST to its peer); the other connections' events go on being delivered."""
        call = _CALLS.get(type(event))
        self.loop.call_exception_handler({
            "message": f"Fatal error: protocol.{call}() call failed." if call else "Fatal error on transport",
            "exception": exc, "transport": transport, "protocol": transport._protocol})
        try:
            transport.abort()
        except Exception as again:  # noqa: BLE001 (connection_lost() failed too: reported, nothing more)
            self.loop.call_exception_handler({"message": "protocol.connection_lost() call failed.",
                                              "exception": again, "transport": transport})

    def connections(self) -> list:
        """The connections an application holds (not yet CLOSED)."""
        return [c for c in self.stack.connections() if c.state.value != "CLOSED"]

    def shut_down(self, abort: bool = False) -> int:
        """End every open connection: a FIN (close), or with abort a RST, sent now. Returns how many."""
        now, n = self.now(), 0
        for conn in self.connections():
            if conn.state.value in ("LISTEN", "TIME_WAIT"):
                continue
            n += 1
            try:
                conn.abort(now, why="shutting down") if abort else conn.close(now)
            except Exception:  # noqa: BLE001 (a connection that cannot close is simply dropped)
                pass
        self._flush()
        return n

    def close(self) -> None:
        """Send what is pending (a FIN queued by the application's last close(), say), then stop:
        no timer, no reader, and nothing more is written to the link."""
        if self._closed:
            return
        self._flush()
        self._closed = True
        self._trim_timer.cancel()
        if self._timer is not None:
            self._timer.cancel()
        self.link.detach()


TRIM_EVERY = 2.0  # seconds between looks at whether freed memory should go back to the system
TRIM_BYTES = 16 << 20  # ... when the stack's buffers fell by this much
TRIM_CONNECTIONS = 1000  # ... or this many connections went
TRIM_FEWEST = 64  # ... or half of those there were, if at least this many
TRIM_AGAIN = 3  # and as many looks after that, once each



class MemoryLink:
    """One end of an in-process link; packets reach the other end after an optional one-way delay,
    on the other end's own loop (which may run in another thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float = 0.0):
        self.loop = loop
        self.delay = delay
        self.peer: MemoryLink | None = None
        self._callback = None

    @classmethod
    def pair(cls, delay: float = 0.0, loop: asyncio.AbstractEventLoop | None = None):
        loop = loop or asyncio.get_running_loop()
        return cls.join(cls(loop, delay), cls(loop, delay))

    @staticmethod
    def join(a: "MemoryLink", b: "MemoryLink"):
        a.peer, b.peer = b, a
        return a, b

    def attach(self, callback) -> None:
        self._callback = callback

    def detach(self) -> None:
        self._callback = None

    def send(self, packet: bytes, gso_size: int = 0, partial: bool = False) -> None:
        peer = self.peer
        if peer is None:
            return
        if peer.loop is self.loop:
            self.loop.call_later(self.delay, peer._deliver, packet)
        else:
            peer.loop.call_soon_threadsafe(peer.loop.call_later, self.delay, peer._deliver, packet)

    def _deliver(self, packet: bytes) -> None:
        if self._callback is not None:
            self._callback([packet])


LANE_BATCH = 256  # packets read from a lane at a time: under a SYN flood, the traffic queue is read between


class TunLink:
    """A TunDevice (or one of its queues) read with loop.add_reader, in batches. With a `lane` (the
    queue the steering program gives new connections' first packets, drivers/tun.py), the lane is
    read (up to LANE_BATCH) after every batch of the traffic queue and handed on before it: a new
    client is answered ahead of traffic already queued, its packets are not among what a full
    traffic ring drops, and a flow's first packets are handed on before its later ones, unless more
    than LANE_BATCH wait in the lane."""

    def __init__(self, device, loop: asyncio.AbstractEventLoop | None = None, lane=None):
        self.device, self.lane = device, lane
        self.loop = loop or asyncio.get_running_loop()

    def attach(self, callback) -> None:
        device, lane = self.device, self.lane
        if lane is None:
            self.loop.add_reader(device.fileno(), lambda: callback(*device.read_batch()))
            return

        def traffic() -> None:
            # the traffic batch first, then the lane, handed on lane first: a flow's packets that came
            # by the lane (its first) reached it before any of its packets in the traffic batch did
            packets, trusted = device.read_batch()
            first(LANE_BATCH)
            if packets:
                callback(packets, trusted)

        def first(limit: int) -> None:
            packets, trusted = lane.read_batch(limit)
            if packets:  # (empty when traffic() has just drained it)
                callback(packets, trusted)

        self.loop.add_reader(lane.fileno(), first, LANE_BATCH)
        self.loop.add_reader(device.fileno(), traffic)

    def detach(self) -> None:
        self.loop.remove_reader(self.device.fileno())
        if self.lane is not None:
            self.loop.remove_reader(self.lane.fileno())

    def send(self, packet: bytes, gso_size: int = 0, partial: bool = False) -> None:
        try:
            self.device.write(packet, gso_size, partial)
        except BlockingIOError:
            pass  # the device queue is full: TCP retransmits what was dropped
        except OSError as e:  # pragma: no cover - device gone
            raise ConnectionError(f"TUN device write failed: {os.strerror(e.errno or 0)}") from e


class FaultyLink:
    """A driver-level fault injector around any link: outgoing packets are delayed by `delay`
    seconds and dropped with probability `loss`, from a seeded RNG (so runs can be replayed)."""

    def __init__(self, link, delay: float = 0.0, loss: float = 0.0, seed: int = 0,
                 loop: asyncio.AbstractEventLoop | None = None):
        import random

        self.link, self.delay, self.loss = link, delay, loss
        self.rng = random.Random(seed)
        self.loop = loop or asyncio.get_running_loop()
        self.dropped = 0

    def attach(self, callback) -> None:
        self.link.attach(callback)

    def detach(self) -> None:
        self.link.detach()

    def send(self, packet: bytes, gso_size: int = 0, partial: bool = False) -> None:
        if self.loss and self.rng.random() < self.loss:
            self.dropped += 1
            return
        if self.delay:
            self.loop.call_later(self.delay, self.link.send, packet, gso_size, partial)
        else:
            self.link.send(packet, gso_size, partial)
