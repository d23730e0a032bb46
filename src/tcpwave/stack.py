"""A host's TCP/IP stack, sans-IO: packets and `now` in, packets, events and a timer out.

It owns what is shared between connections: demultiplexing by 4-tuple, listeners
with a bounded accept backlog, ephemeral ports, the RST for segments that match no
connection (RFC 9293 §3.10.7.1), TIME_WAIT reopening, ISNs and ICMP echo.
"""

import heapq
import ipaddress
import itertools
import os
import random
from collections import deque
from collections.abc import Callable
from typing import Final

from .core import events as ev
from .core import syncookies
from .core.arrival import accept_cookie
from .core.config import Config
from .core.connection import Connection
from .core.errors import PortInUse, Unreachable
from .core.isn import IsnGenerator
from .core.limits import RateBudget
from .core.memory import LIMIT, MemoryBudget
from .core.reasons import CloseReason, DropReason
from .core.reset import reset_for
from .core.state import State
from .core.time_wait import TimeWait
from .core.trace import NULL_TRACER, Tracer
from .core.window import our_shift
from .wire.address import address_from_text, intern_address
from .wire.errors import MalformedPacket
from .wire.icmp import PROTO_ICMP, PROTO_ICMPV6, echo_reply_for, parse_error
from .wire.ip import build_ip, parse_ip
from .wire.martians import broadcasts, martian_destination, martian_source
from .wire.options import Options, build_options, describe_options
from .wire.packet import build_ipv4_tcp, build_ipv4_tcp_fields, parse_ipv4_tcp
from .wire.seq import seq_add
from .wire.tcp import ACK, FIN, PROTO_TCP, RST, SYN, Segment, build_tcp, flags_text, parse_tcp

EPHEMERAL: Final = range(49152, 65536)


def port_owner(port: int, count: int) -> int:
    """Which of `count` stacks sharing the addresses owns ephemeral port `port` (share_ports): the one
    the steering program sends its packets to (drivers/steering.py: the port's place in the range,
    which stays under 2^15 as the kernel's 16-bit cut of the program's answer needs)."""
    return (port - EPHEMERAL.start) % count


_ADDRESSES: Final = (ipaddress.IPv4Address, ipaddress.IPv6Address)
RECLAIM_EVERY: Final = 0.1  # seconds between scans for memory to reclaim at the limit (each is O(connections))


def ip(addr) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(addr, str):
        return address_from_text(addr)
    return intern_address(addr if isinstance(addr, _ADDRESSES) else ipaddress.ip_address(addr))


class Listener:
    """A passive OPEN on (address or any, port) with an accept queue of at most `backlog`."""

    def __init__(self, stack: "Stack", tcb: Connection, backlog: int):
        self.stack = stack
        self.tcb = tcb  # the TCB in LISTEN; each SYN gets a clone of it
        self.backlog = backlog
        self.pending: set[Connection] = set()  # in SYN_RCVD
        self.accept_queue: deque[Connection] = deque()
        self.any_address = False  # listening on every address of the stack
        self.cookie_sent_at: float | None = None  # when this listener last answered a SYN with a cookie

    def cookies_recent(self, now: float) -> bool:
        """Could an ACK arriving now carry a live cookie of ours? Only if one went out within a cookie's
        lifetime (Linux cookie_v4_check: tcp_synq_no_recent_overflow). Otherwise every stray ACK would
        be a guess at a 24-bit hash that a blind attacker could make at any time, not only in a flood."""
        sent = self.cookie_sent_at
        return sent is not None and now - sent <= syncookies.LIFETIME

    @property
    def address(self) -> tuple | None:
        return self.tcb.local

    def full(self) -> bool:
        """No room for another connection: the accept queue (listen backlog) or the SYN queue is full."""
        return self.accept_full() or self.syn_queue_full()

    def accept_full(self) -> bool:
        return len(self.accept_queue) >= self.backlog

    def syn_queue_full(self) -> bool:
        return len(self.pending) >= self.tcb.config.max_syn_backlog

    def accept(self) -> Connection | None:
        """An established connection, or None when none is waiting."""
        return self.accept_queue.popleft() if self.accept_queue else None

    def close(self, now: float) -> None:
        """Stop listening; connections not yet accepted are reset."""
        self.stack._remove_listener(self)
        for conn in list(self.pending) + list(self.accept_queue):
            if conn.state is not State.CLOSED:
                conn.abort(now, why="listener closed")
        self.pending.clear()
        self.accept_queue.clear()
        self.tcb.close(now)


class Stack:
    def __init__(self, addresses, *, config: Config | None = None, seed: int | None = None,
                 tracer: Tracer = NULL_TRACER, host: str = "host", mtu: int = 1500,
                 checksum_offload: bool = False, segment_max: int = 0, networks=()):
        """checksum_offload: TCP checksums are left partial for the device to finish; segment_max > 0:
        the device splits large segments (TSO), so a connection may send up to that many bytes at once.
        networks: the prefixes the stack is on (ipaddress networks), whose broadcast addresses are martian."""
        self.addresses = [ip(a) for a in ([addresses] if isinstance(addresses, str) else addresses)]
        self._directed = broadcasts(networks)  # sources and destinations that are martians (wire/martians.py)
        self._loopback = any(a.is_loopback for a in self.addresses)  # 127/8 is a source only on loopback
        self.config = config or Config()
        # Every random choice (the RFC 6528 ISN secret, ephemeral ports, timestamp offsets) comes from
        # here: seeded in simulation and tests (the same seed replays the same run), else from
        # os.urandom for every draw (SystemRandom), so nothing a peer sees predicts the next.
        self.rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()
        self.isn = IsnGenerator(self.rng.randbytes(32))
        self.challenges = RateBudget(self.config.challenge_ack_limit, self.rng)  # RFC 5961 §7, per stack
        self.resets = RateBudget(self.config.rst_limit, self.rng)  # RSTs for segments matching nothing
        self._cookie_secret = self.rng.randbytes(32)  # SYN cookies (RFC 4987)
        self._cookie_ts_offset = self.rng.getrandbits(32)
        self._cookie_opts: dict[int, bytes] = {}  # a cookie SYN,ACK's options without timestamps, encoded, by MSS
        self.tracer = tracer
        self.host = host
        self.mtu = mtu
        self.checksum_offload = checksum_offload
        self.segment_max = segment_max
        self._conns: dict[tuple, Connection | TimeWait] = {}  # TIME_WAIT as a compact record
        self._listeners: dict[tuple, Listener] = {}
        self._children: dict[Connection, Listener] = {}
        self._out: list[tuple[bytes, int, bool]] = []  # (packet, GSO size or 0, checksum partial)
        # Timers: a heap of (deadline, n, slot) with lazy deletion. Each connection has one slot,
        # [its current deadline or None, the connection]: an entry whose deadline no longer matches
        # its slot's is skipped. A connection the stack lets go empties its slot, so stale entries
        # never keep it alive; and they are swept once they outnumber the live ones (a bound).
        self._timer_heap: list[tuple[float, int, list]] = []
        self._deadline: dict[Connection, list] = {}
        self._tw_heap: list[TimeWait] = []  # TIME_WAIT records, by the deadline they were queued with
        self._tick = itertools.count()
        self._events: list[tuple[Connection | TimeWait, object]] = []
        self._next_port = self.rng.choice(EPHEMERAL)
        self._batch: set[Connection] | None = None  # connections touched by receive_packets()
        self._ident = 0
        self.counters: dict[str, int] = {}
        # A packet whose processing raises is dropped as INTERNAL_ERROR (last_error says what it raised);
        # strict (TCPWAVE_STRICT=1, as the test suite sets): it raises instead, so that no bug hides
        self.strict = os.environ.get("TCPWAVE_STRICT") == "1"
        self.last_error: str | None = None
        cfg = self.config  # one memory budget for every connection's buffers (core/memory.py)
        self.memory = MemoryBudget(cfg.mem_low, cfg.mem_pressure, cfg.mem_high)
        self._live = 0  # connections in the table with a full control block (max_connections counts them)
        self._reclaim_at = 0.0  # the earliest time the next reclaim at the memory limit may run
        # One stack of several sharing an address (workers on the queues of one TUN device): it
        # picks ephemeral ports p with port_owner(p, count) == index, and hands a packet for another's port,
        # which the kernel steered to this queue, to `elsewhere(owner, packet, trusted)`.
        self.share: tuple[int, int] | None = None
        self.elsewhere: Callable[[int, bytes | bytearray | memoryview, bool], None] | None = None
        self.forwarded = 0
        self._raw: tuple[bytes | bytearray | memoryview, bool] | None = None

    # --------------------------------------------------------------- outputs
    def packets_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return [packet for packet, _, _ in out]

    def packets_to_send_offload(self) -> list[tuple[bytes, int, bool]]:
        """For offloading devices: (packet, size to cut TCP segments at or 0, checksum left partial)."""
        out, self._out = self._out, []
        return out

    def events(self) -> list[tuple[Connection | TimeWait, object]]:
        """(connection, event) pairs. When TIME_WAIT ends (Closed) for a connection the application no
        longer holds, the connection is its TimeWait record (`local`, `remote`, `state`)."""
        out, self._events = self._events, []
        return out

    def next_timer(self) -> float | None:
        heap = self._timer_heap
        while heap and heap[0][2][0] != heap[0][0]:
            heapq.heappop(heap)  # stale: re-armed, cancelled or let go since
        tw = self._tw_heap
        while tw and tw[0].deadline != tw[0].queued:
            top = heapq.heappop(tw)  # ended, or its 2 x MSL restarted: queue it at its new deadline
            if top.deadline is not None:
                top.queued = top.deadline
                heapq.heappush(tw, top)
        if heap and tw:
            return min(heap[0][0], tw[0].queued)
        return heap[0][0] if heap else tw[0].queued if tw else None

    def connections(self) -> list[Connection]:
        """Every connection with a full control block: all but those in TIME_WAIT (`time_waits`)."""
        return [c for c in self._conns.values() if isinstance(c, Connection)]

    def time_waits(self) -> list[TimeWait]:
        """The 4-tuples in TIME_WAIT, as compact records."""
        return [c for c in self._conns.values() if isinstance(c, TimeWait)]

    def listeners(self) -> list[Listener]:
        return list(self._listeners.values())

    # ------------------------------------------------------------ user calls
    def listen(self, port: int, now: float, *, address=None, backlog: int | None = None,
               config: Config | None = None) -> Listener:
        addr = ip(address) if address is not None else None
        if port == 0:  # as the kernel: a free port from the ephemeral range
            used = {p for _, p in self._listeners} | {key[1] for key in self._conns}
            port = self._ephemeral(lambda p: p not in used)
        if (addr, port) in self._listeners:
            raise PortInUse(f"already listening on port {port}")
        tcb = Connection(config or self.config, (addr or self.addresses[0], port), None, isn=self.isn,
                         rng=self.rng, challenge_budget=self.challenges, tracer=self.tracer, host=self.host,
                         default_mss=self._mss_for(addr), memory=self.memory)
        tcb.listen(now)
        listener = Listener(self, tcb, backlog if backlog is not None else tcb.config.backlog)
        listener.any_address = addr is None
        self._listeners[(addr, port)] = listener
        return listener

    def connect(self, address, port: int, now: float, *, local_port: int | None = None,
                local_address=None, config: Config | None = None) -> Connection:
        raddr = ip(address)
        if (why := martian_destination(raddr, self._directed)) is not None:
            raise Unreachable(f"connect(): no connection to {raddr}: a {why} address")
        laddr = ip(local_address) if local_address is not None else self._source_for(raddr)
        lport = local_port if local_port is not None else self._ephemeral(
            lambda p: (laddr, p, raddr, port) not in self._conns and (None, p) not in self._listeners)
        key = (laddr, lport, raddr, port)
        if key in self._conns:
            raise PortInUse(f"connection {laddr}:{lport} -> {raddr}:{port} already exists")
        conn = self._new_connection(config or self.config, (laddr, lport), (raddr, port))
        self._insert(key, conn)
        conn.connect(now)
        return conn

    # ----------------------------------------------------------------- input
    def receive_packets(self, packets, now: float, trusted: list[bool] | None = None) -> None:
        """A batch (e.g. everything a device had queued): each segment is processed in turn; ACKs owed
        at once go at once (an ACK per two full segments, per out-of-order segment, per filled hole), the
        rest (a delayed ACK, data) once the whole batch is in."""
        self._batch = set()
        try:
            for i, data in enumerate(packets):
                try:
                    self.receive_packet(data, now, trusted[i] if trusted else False)
                except Exception as e:  # a bug: one packet, counted and named, never the batch or the server
                    if self.strict:
                        raise
                    self.last_error = f"{type(e).__name__}: {e}"
                    self._drop(now, DropReason.INTERNAL_ERROR, error=self.last_error)
        finally:
            batch, self._batch = self._batch, None
        for conn in batch:
            conn.flush(now)
            self._collect(conn)

    def share_ports(self, index: int, count: int,
                    elsewhere: Callable[[int, bytes | bytearray | memoryview, bool], None]) -> None:
        """Run as stack `index` of `count` answering for the same addresses (see `share`)."""
        if not 0 <= index < count:
            raise ValueError(f"stack index {index} is not in 0..{count - 1}")
        self.share, self.elsewhere = (index, count), elsewhere
        self._next_port += (index - port_owner(self._next_port, count)) % count
        if self._next_port >= EPHEMERAL.stop:
            self._next_port = EPHEMERAL.start + index

    def receive_packet(self, data: bytes | bytearray | memoryview, now: float, trusted: bool = False) -> None:
        """One packet. trusted: made by the local kernel with a partial TCP checksum (offload)."""
        if self.elsewhere is not None:
            self._raw = (data, trusted)
        fast = parse_ipv4_tcp(data, trusted)  # nearly every packet, in one step
        if fast is not None:
            src, dst, seg = fast  # (unpacked: a call with *fast is a generic call in the compiled build)
            if dst not in self.addresses:
                return self._drop(now, DropReason.NOT_OUR_ADDRESS, dst=dst)
            return self._tcp_input(src, dst, seg, now)
        try:
            pkt = parse_ip(data)
        except MalformedPacket as e:
            return self._drop(now, e.reason, detail=e.detail)
        if pkt.dst not in self.addresses:
            return self._drop(now, DropReason.NOT_OUR_ADDRESS, dst=pkt.dst)
        if pkt.proto == PROTO_TCP:
            try:
                seg = parse_tcp(pkt.payload) if trusted else parse_tcp(pkt.payload, pkt.src, pkt.dst)
            except MalformedPacket as e:
                return self._drop(now, e.reason, detail=e.detail, src=pkt.src)
            self._tcp_input(pkt.src, pkt.dst, seg, now)
        elif pkt.proto in (PROTO_ICMP, PROTO_ICMPV6):
            if (why := martian_source(pkt.src, self._directed, self._loopback)) is not None:
                return self._drop(now, DropReason.MARTIAN_SOURCE, src=pkt.src, why=why)  # (no echo to a broadcast)
            try:
                reply = echo_reply_for(pkt.dst.version, pkt.src, pkt.dst, pkt.payload)
                error = parse_error(pkt.dst.version, pkt.src, pkt.dst, pkt.payload) if reply is None else None
            except MalformedPacket as e:
                return self._drop(now, e.reason, detail=e.detail)
            if error is not None:
                return self._icmp_error(error, now)
            if reply is not None:
                self._out.append((build_ip(pkt.dst, pkt.src, pkt.proto, reply, ident=self._next_ident()), 0, False))
                self.tracer.emit(now, self.host, "icmp", action="echo_reply", to=str(pkt.src))
        else:
            self._drop(now, DropReason.UNKNOWN_PROTOCOL, proto=pkt.proto)

    def _icmp_error(self, error, now: float) -> None:
        """An ICMP error quoting one of our segments: to its connection, which checks it (RFC 5927)."""
        key = (ip(ipaddress.ip_address(error.src)), error.sport, ip(ipaddress.ip_address(error.dst)), error.dport)
        entry = self._conns.get(key)
        if entry is None:
            return self._drop(now, DropReason.ICMP_NO_CONNECTION)
        conn = self._wake(entry, now) if isinstance(entry, TimeWait) else entry
        conn.icmp_error(error.kind, error.mtu, error.seq, now, error.errno)
        self._collect(conn)

    def handle_timer(self, now: float) -> None:
        heap, tw = self._timer_heap, self._tw_heap
        while (t := self.next_timer()) is not None and t <= now:
            if tw and tw[0].queued == t:
                self._time_wait_ends(heapq.heappop(tw), now)
                continue
            _, _, slot = heapq.heappop(heap)
            slot[0] = None  # (due: whatever it arms next is pushed anew)
            conn = slot[1]
            conn.handle_timer(now)
            self._collect(conn)

    # ------------------------------------------------------------- TIME_WAIT
    def _park(self, conn: Connection, key: tuple) -> None:
        """A connection in TIME_WAIT: keep a compact record in the table, not the connection."""
        deadline = conn.next_timer()
        assert deadline is not None  # the 2 x MSL timer
        self._release_timer(conn)
        entry = self._conns.get(key)
        if entry is conn:
            entry = self._conns[key] = TimeWait(key, conn, deadline)
            heapq.heappush(self._tw_heap, entry)
            self._live -= 1
        elif isinstance(entry, TimeWait) and entry.alive() is conn:
            entry.update(conn, deadline)  # (a restarted 2 x MSL is queued again when the old one comes)

    def _wake(self, tw: TimeWait, now: float) -> Connection:
        """The full connection behind a record: the application's, or rebuilt from the record."""
        conn = tw.alive()
        if conn is None:
            conn = tw.thaw(self._new_connection, now)  # (its from_record: tw)
        return conn

    def _time_wait_ends(self, tw: TimeWait, now: float) -> None:
        conn = tw.alive()
        if conn is None and not self.tracer.enabled:  # no connection to run: forget the 4-tuple
            del self._conns[tw.key]
            tw.deadline = None
            self._events.append((tw, ev.Closed(ev.NORMAL)))
            return
        conn = conn if conn is not None else self._wake(tw, now)
        conn.handle_timer(now)
        self._collect(conn)
        if tw.deadline is not None:  # still waiting (not due after all): back in the queue
            tw.queued = tw.deadline
            heapq.heappush(self._tw_heap, tw)

    def _tcp_input(self, src, dst, seg: Segment, now: float) -> None:
        if self.tracer.enabled:
            self.tracer.emit(now, self.host, "recv", **_seg_fields(seg, src, dst))
        key = (dst, seg.dst_port, src, seg.src_port)
        entry = self._conns.get(key)
        if entry.__class__ is Connection and (st := entry.state) is not State.SYN_RCVD \
                and st is not State.TIME_WAIT:
            return self._arrived(entry, seg, now)  # nearly every segment: no listener involved
        if (why := martian_source(src, self._directed, self._loopback)) is not None:
            return self._drop(now, DropReason.MARTIAN_SOURCE, src=src, why=why)  # no state, no reply
        conn = self._wake(entry, now) if isinstance(entry, TimeWait) else entry
        listener = self._listeners.get((dst, seg.dst_port)) or self._listeners.get((None, seg.dst_port))
        iss_floor = None
        if conn is not None and listener is not None and conn.time_wait_accepts(seg):
            if listener.full():  # dropped: the 4-tuple keeps its TIME_WAIT protection
                return self._drop(now, DropReason.BACKLOG_FULL, src=src)
            iss_floor = conn.snd_nxt
            conn.end_time_wait(now)  # RFC 9293 §3.6.1 / RFC 6191: a new incarnation
            self._collect(conn)
            conn = None
        if conn is not None and listener is not None and seg.flags & (ACK | SYN | RST) == ACK \
                and conn.state is State.SYN_RCVD and listener.accept_full() and self._children.get(conn) is listener:
            return self._accept_overflow(conn, listener, src, dst, seg, now)
        if conn is not None:
            self._arrived(conn, seg, now)
        elif listener is not None:
            f, cfg = seg.flags, listener.tcb.config
            if f & (SYN | ACK | RST) == SYN:
                if f & FIN and cfg.drop_synfin:  # as Linux (tcp_rcv_state_process) and FreeBSD's default
                    return self._drop(now, DropReason.SYN_FIN, src=src)
                if (refused := self._refusal(now)) is not None:
                    return self._drop(now, refused, src=src)
                if listener.accept_full():  # as Linux: no room to queue what this would become
                    return self._drop(now, DropReason.BACKLOG_FULL, src=src)
                if cfg.syncookies == 2 or (cfg.syncookies == 1 and listener.syn_queue_full()):
                    return self._send_cookie(listener, src, dst, seg, now)
                if listener.syn_queue_full():
                    return self._drop(now, DropReason.SYN_QUEUE_FULL, src=src)
            elif f & (SYN | ACK | RST) == ACK and cfg.syncookies and iss_floor is None \
                    and listener.cookies_recent(now):
                if self._cookie_ack(listener, key, src, dst, seg, now):
                    return
            child = listener.tcb.spawn((dst, seg.dst_port), (src, seg.src_port), iss_floor, self._mss_for(dst))
            child.tso_max = self.segment_max
            child.on_change = self._collect
            child.segment_arrived(seg, now)
            if child.state is State.SYN_RCVD:
                self._insert(key, child)
                self._children[child] = listener
                listener.pending.add(child)
            self._collect(child)
        else:
            share, raw = self.share, self._raw
            owner = port_owner(seg.dst_port, share[1]) if share is not None and seg.dst_port in EPHEMERAL else -1
            if share is not None and raw is not None and self.elsewhere is not None and owner not in (-1, share[0]):
                self.forwarded += 1  # another stack's connection: the kernel steered it here
                if self.tracer.enabled:
                    self.tracer.emit(now, self.host, "forward", to_stack=owner, port=seg.dst_port)
                return self.elsewhere(owner, raw[0], raw[1])
            rst = reset_for(seg)
            self._drop(now, DropReason.NO_SOCKET, flags=flags_text(seg.flags), port=seg.dst_port)
            if rst is not None and self.resets.allow(now):
                self._send(dst, src, rst, now, "reset: no connection")

    def _arrived(self, conn: Connection, seg: Segment, now: float) -> None:
        if self._batch is not None:  # (sent once the whole batch is in)
            conn.segment_arrived(seg, now, flush=False)
            self._batch.add(conn)
            return
        conn.segment_arrived(seg, now)
        self._collect(conn)

    # ----------------------------------------------------------- SYN cookies
    def _send_cookie(self, listener: Listener, src, dst, seg: Segment, now: float) -> None:
        """Answer a SYN statelessly (RFC 4987 §3.6): everything the listener needs later is in the
        SYN,ACK's sequence number (and, with timestamps, in our TSval)."""
        cfg, o = listener.tcb.config, seg.options
        local, remote = (dst, seg.dst_port), (src, seg.src_port)
        our_mss = cfg.mss or self._mss_for(dst)
        iss = syncookies.make(self._cookie_secret, now, local, remote, seg.seq, o.mss or 536)
        ts = None
        wscale = None
        sack = False
        if cfg.timestamps and o.ts is not None:  # the options survive only in the timestamp
            tsval = syncookies.options_tsval(int(now * 1000) + self._cookie_ts_offset,
                                             o.wscale if cfg.window_scaling else None, cfg.sack and o.sack_permitted)
            ts = (tsval, o.ts[0])
            wscale = our_shift(cfg) if cfg.window_scaling and o.wscale is not None else None
            sack = cfg.sack and o.sack_permitted
        window = min(cfg.recv_buffer, 0xFFFF)
        self.counters["syn_cookies_sent"] = self.counters.get("syn_cookies_sent", 0) + 1
        listener.cookie_sent_at = now
        if ts is None and not cfg.noopt and dst.version == 4 and not self.tracer.enabled:
            # a flood's SYNs: no Segment, no Options, the same encoded options every time (by MSS)
            opts = self._cookie_opts.get(our_mss)
            if opts is None:
                opts = self._cookie_opts[our_mss] = build_options(Options(mss=our_mss))
            partial = self.checksum_offload
            self._out.append((build_ipv4_tcp_fields(dst._ip, src._ip, seg.dst_port, seg.src_port, iss,
                                                    seq_add(seg.seq, 1), SYN | ACK, window, opts, b"", 0,
                                                    self._next_ident(), partial), 0, partial))
            return
        if cfg.noopt:
            options = Options()
        elif ts is None:
            options = Options(mss=our_mss)
        else:
            options = Options(mss=our_mss, wscale=wscale, sack_permitted=sack, ts=ts,
                              bsd=cfg.option_layout == "freebsd")
        synack = Segment(seg.dst_port, seg.src_port, iss, seq_add(seg.seq, 1), SYN | ACK, window, options=options)
        self._send(dst, src, synack, now, "SYN cookie")

    def _cookie_ack(self, listener: Listener, key: tuple, src, dst, seg: Segment, now: float) -> bool:
        """An ACK for no connection at a listener: a SYN cookie's return? If valid, the connection."""
        local, remote = (dst, seg.dst_port), (src, seg.src_port)
        iss = seq_add(seg.ack, -1)
        mss = syncookies.check(self._cookie_secret, now, local, remote, seq_add(seg.seq, -1), iss)
        if mss is None:
            return False
        if (refused := self._refusal(now)) is not None:
            self._drop(now, refused, src=src)
            return True
        if listener.accept_full():
            self._drop(now, DropReason.ACCEPT_QUEUE_FULL, src=src)
            return True
        child = listener.tcb.spawn(local, remote, None, self._mss_for(dst))
        child.tso_max = self.segment_max
        child.on_change = self._collect
        accept_cookie(child, seg, iss, mss, self._cookie_ts_offset)
        self._insert(key, child)
        self._children[child] = listener
        listener.pending.add(child)
        child.segment_arrived(seg, now)
        self.counters["syn_cookies_accepted"] = self.counters.get("syn_cookies_accepted", 0) + 1
        self._collect(child)
        return True

    def _accept_overflow(self, conn: Connection, listener: Listener, src, dst, seg: Segment, now: float) -> None:
        """The final ACK of a handshake, with the accept queue full: as Linux, drop it (the SYN,ACK
        goes again, and the peer's ACK with it may find room), or with abort_on_overflow reset."""
        self._drop(now, DropReason.ACCEPT_QUEUE_FULL, src=src)
        if listener.tcb.config.abort_on_overflow:
            conn.abort(now, why="accept queue full (abort_on_overflow)")
            self._collect(conn)

    # ---------------------------------------------------- memory and limits
    def _insert(self, key: tuple, conn: Connection) -> None:
        self._conns[key] = conn
        conn.table_key = key
        self._live += 1

    def _refusal(self, now: float) -> DropReason | None:
        """Why a new connection cannot be had now (its SYN is dropped; the client tries again), if so."""
        if self.memory.level == LIMIT and now >= self._reclaim_at:
            self._reclaim(now)
        if self.memory.level == LIMIT:
            self.memory.count("refused")
            return DropReason.MEMORY_LIMIT
        if self.config.max_connections and self._live >= self.config.max_connections:
            return DropReason.MAX_CONNECTIONS
        return None

    def _reclaim(self, now: float) -> None:
        """At the memory limit (at most every RECLAIM_EVERY s): prune every out-of-order queue, then
        reset the connections holding the most until the account is back halfway down to `pressure`."""
        mem = self.memory
        self._reclaim_at = now + RECLAIM_EVERY
        conns = [c for c in self._conns.values() if isinstance(c, Connection) and c.charged > 0]
        for conn in conns:
            rb = conn.rcv.buf
            if rb.has_gaps:
                mem.count("pruned", rb.prune())
                conn.rcv.recent_ooo.clear()
                self._settle(conn)
        target = (mem.pressure + mem.high) // 2
        if mem.used <= target:
            return
        for conn in sorted(conns, key=lambda c: c.charged, reverse=True):
            if mem.used <= target:
                break
            if conn.state is not State.CLOSED:
                mem.count("reset")
                conn.abort(now, why="out of memory", reason=CloseReason.OUT_OF_MEMORY)

    def _settle(self, conn: Connection) -> None:
        """Charge the budget what the connection's buffers hold now, less what was charged before."""
        if conn.charged >= 0 and (held := conn.held) != conn.charged:
            self.memory.charge(held - conn.charged)
            conn.charged = held

    def _discharge(self, conn: Connection) -> None:
        """The connection leaves the account (CLOSED or TIME_WAIT)."""
        if conn.charged > 0:
            self.memory.charge(-conn.charged)
        conn.charged = -1

    # -------------------------------------------------------------- plumbing
    def _collect(self, conn: Connection) -> None:
        """Send what a connection produced; route its events; forget it once CLOSED."""
        now = conn.now
        self._settle(conn)
        if self.memory.level == LIMIT and now >= self._reclaim_at:
            self._reclaim(now)
        assert conn.local is not None  # every connection a stack holds is bound
        laddr, raddr = conn.local[0], conn.remote[0] if conn.remote else None
        for seg, note in conn.drain_output():
            self._send(laddr, raddr, seg, now, note, conn.snd_mss)
        listener = self._children.get(conn)
        if (tw := conn.from_record) is not None:  # rebuilt from a record: its events go out under the record
            self._events.extend((tw, event) for event in conn.events())
        for event in conn.events():
            if listener is not None:  # not yet accepted: the application does not know it
                if not isinstance(event, ev.Connected):
                    continue
                listener.pending.discard(conn)
                listener.accept_queue.append(conn)
                del self._children[conn]
                listener = None
            self._events.append((conn, event))
        if conn.state is State.TIME_WAIT and conn.table_key is not None:
            self._discharge(conn)
            return self._park(conn, conn.table_key)
        deadline = conn.next_timer()
        slot = self._deadline.get(conn)
        if slot is None:
            if deadline is not None:
                slot = self._deadline[conn] = [deadline, conn]
                self._arm(deadline, slot)
        elif deadline != slot[0]:
            slot[0] = deadline
            if deadline is not None:
                self._arm(deadline, slot)
        if conn.state is State.CLOSED or (conn.state is State.LISTEN and conn.remote is not None):
            self._release_timer(conn)
            self._discharge(conn)
            if conn.remote is not None:
                key = (laddr, conn.local[1], raddr, conn.remote[1])
                entry = self._conns.get(key)
                if entry is conn or (isinstance(entry, TimeWait) and entry.alive() is conn):
                    del self._conns[key]
                    self._live -= entry is conn
                    if isinstance(entry, TimeWait):
                        entry.deadline = None
            parent = self._children.pop(conn, None)
            if parent is not None:
                parent.pending.discard(conn)

    def _arm(self, deadline: float, slot: list) -> None:
        heap = self._timer_heap
        heapq.heappush(heap, (deadline, next(self._tick), slot))
        if len(heap) > 2 * len(self._deadline) + 1024:  # mostly stale entries: keep only the live ones
            heap[:] = [(s[0], next(self._tick), s) for s in self._deadline.values() if s[0] is not None]
            heapq.heapify(heap)

    def _release_timer(self, conn: Connection) -> None:
        """The stack lets conn go (CLOSED, or kept as a TIME_WAIT record): its heap entries, due or
        not, no longer hold it."""
        slot = self._deadline.pop(conn, None)
        if slot is not None:
            slot[0] = slot[1] = None

    def _send(self, src, dst, seg: Segment, now: float, note: str = "", mss: int = 0) -> None:
        partial = self.checksum_offload
        gso = mss if self.segment_max and len(seg.payload) > mss > 0 else 0
        if src.version == 4:
            packet = build_ipv4_tcp(seg, src._ip, dst._ip, self._next_ident(), partial)
        else:
            packet = build_ip(src, dst, PROTO_TCP, build_tcp(seg, src, dst, partial=partial), ident=self._next_ident())
        self._out.append((packet, gso, partial))
        if self.tracer.enabled:
            fields = _seg_fields(seg, src, dst)
            if note:
                fields["note"] = note
            self.tracer.emit(now, self.host, "send", **fields)

    def _new_connection(self, config: Config, local: tuple, remote: tuple) -> Connection:
        conn = Connection(config, local, remote, isn=self.isn, rng=self.rng, challenge_budget=self.challenges,
                          tracer=self.tracer, host=self.host, default_mss=self._mss_for(local[0]),
                          memory=self.memory)
        conn.on_change = self._collect
        conn.tso_max = self.segment_max
        return conn

    def _remove_listener(self, listener: Listener) -> None:
        self._listeners = {k: v for k, v in self._listeners.items() if v is not listener}

    def _mss_for(self, addr) -> int:
        return self.mtu - (60 if addr is not None and addr.version == 6 else 40)

    def _source_for(self, raddr):
        for a in self.addresses:
            if a.version == raddr.version:
                return a
        raise ValueError(f"this stack has no IPv{raddr.version} address to reach {raddr}")

    def _ephemeral(self, free: Callable[[int], bool]) -> int:
        index, step = self.share or (0, 1)
        first = EPHEMERAL.start + index  # the range's first port of ours
        for _ in range(len(EPHEMERAL) // step + 1):
            port = self._next_port
            self._next_port = port + step if port + step < EPHEMERAL.stop else first
            if free(port):
                return port
        raise PortInUse("no ephemeral port left")

    def _next_ident(self) -> int:
        self._ident = (self._ident + 1) & 0xFFFF
        return self._ident

    def _drop(self, now: float, reason: str, **fields) -> None:
        """Count a drop by its reason; traced, with `fields` (addresses among them written as text only
        then: a flood's drops make no strings nobody reads)."""
        reason = DropReason(reason)  # a wire error's reason too: every drop has a named reason
        self.counters[reason.value] = self.counters.get(reason.value, 0) + 1
        if self.tracer.enabled:
            self.tracer.emit(now, self.host, "drop", reason=reason.value,
                             **{k: str(v) if isinstance(v, _ADDRESSES) else v for k, v in fields.items()})


def _seg_fields(seg: Segment, src, dst) -> dict:
    fields = {
        "src": f"{src}:{seg.src_port}", "dst": f"{dst}:{seg.dst_port}", "flags": flags_text(seg.flags),
        "seq": seg.seq, "ack": seg.ack, "len": len(seg.payload), "win": seg.window,
    }
    if seg.options:
        fields["opts"] = describe_options(seg.options)
    return fields


segment_fields = _seg_fields  # a segment as send/recv trace events record it (the simulator replays with it)
