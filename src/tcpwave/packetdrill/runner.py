"""Run a packetdrill-format script against a fresh tcpwave Stack on a virtual clock.

The clock moves only to the times the script names and to the stack's own timer
deadlines, so a script runs in milliseconds and always the same way. Every packet
the stack sends must be matched, in order, by a `>` line within the tolerance;
one that no line expects is a failure (packetdrill itself would ignore it).
"""

import dataclasses
import errno
import ipaddress
import math
import typing
from collections import deque

from ..core import profiles, tcpinfo
from ..core.config import Config
from ..core.state import State
from ..core.trace import ListSink, Tracer
from ..stack import Stack
from ..wire.seq import MASK
from ..wire.tcp import ACK, RST, SYN
from . import packets, sysctl
from .codeblocks import CodeBlocks, CodeFailure
from .script import (
    WILDCARD,
    CallEvent,
    Event,
    PacketEvent,
    Script,
    ScriptError,
    SkippedEvent,
    When,
    parse_script,
)
from .sockets import BLOCK, Mismatch, Sockets, SysError

UNANNOUNCED_LIMIT = 3600.0  # seconds a call written as non-blocking may block before the script fails
_UNSYNCHRONIZED = frozenset({State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RCVD, State.TIME_WAIT})
ADDRESSES = {  # documentation prefixes only (RFC 5737, RFC 3849): nothing here touches a network
    "ipv4": ("192.0.2.1", "192.0.2.2"),
    "ipv6": ("2001:db8::1", "2001:db8::2"),
}
REMOTE_PORT = 43210  # the remote's port for connections it opens to us
RUNNER_FLAGS = {"ip_version", "tolerance_usecs", "tolerance_percent", "mss", "mtu", "portable", "local_ip", "remote_ip",
                "bind_port", "connect_port", "seed", "tso_size", "profile", "tun_device", "strict_segments"}
_CONFIG_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


class Failure(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line


@dataclasses.dataclass
class Result:
    path: str
    ok: bool
    line: int | None = None
    message: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)  # skipped lines, ignored flags
    log: list[str] = dataclasses.field(default_factory=list)  # the run, packetdrill-style (for -v)

    def summary(self) -> str:
        if self.ok:
            return f"ok    {self.path}"
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"FAIL  {where}: {self.message}"


@dataclasses.dataclass
class Flow:
    """One connection of the script, as packetdrill tracks it: its ports and what the runner has
    learned of tcpwave's numbering on it."""

    local_port: int
    remote_port: int
    spaces: packets.Spaces
    last_syn: tuple | None = None  # (seq, TSval) of the newest SYN the script injected on it
    relearn: bool = False  # the next SYN the stack sends starts a new sequence space


@dataclasses.dataclass
class _Pending:
    call: CallEvent
    attempt: typing.Callable[[], object]
    end: float
    tolerance: float = 0.0


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")


def _config_value(name: str, text: str):
    kind = _CONFIG_FIELDS[name].type
    kind = kind if isinstance(kind, str) else str(kind).replace("<class '", "").replace("'>", "")
    if text.lower() == "none" and "None" in kind:
        return None
    if kind.startswith("bool"):
        return _truthy(text)
    if kind.startswith("int"):
        return int(text, 0)
    if "float" in kind:
        return float(text)
    return text


class CallTable(typing.Protocol):
    """What the runner needs of a descriptor table: sockets.py's on tcpwave, kernel_sockets.py's on Linux."""

    bind_port: int
    connect_port: int
    on_connect: typing.Any

    def start(self, call: CallEvent) -> typing.Callable[[], object]: ...


class Runner:
    sockets: CallTable

    def __init__(self, script: Script, defaults: dict[str, str] | None = None):
        self.script = script
        flags = {**(defaults or {}), **script.flags}
        self.flags = flags
        self.notes: list[str] = []
        self.log: list[str] = []
        line_of = script.flag_lines.get
        version = flags.get("ip_version", "ipv4")
        if version not in ADDRESSES:
            raise ScriptError(line_of("ip_version", 0), f"--ip_version={version}: use ipv4 or ipv6")
        local, remote = ADDRESSES[version]
        self.local = ipaddress.ip_address(flags.get("local_ip", local))
        self.remote = ipaddress.ip_address(flags.get("remote_ip", remote))
        self.tolerance = int(flags.get("tolerance_usecs", "4000")) / 1e6
        # packetdrill's --tolerance_percent: a wait of D seconds may be off by this share of D too
        self.tolerance_share = float(flags.get("tolerance_percent", "0")) / 100
        self.prev_time = 0.0  # the previous event's time: what a relative time counts from
        self.portable = _truthy(flags.get("portable", "false"))
        changes = self._profile(flags.get("profile"))
        for name, value in flags.items():
            if name in _CONFIG_FIELDS:
                try:
                    changes[name] = _config_value(name, value)
                except ValueError:
                    raise ScriptError(line_of(name, 0), f"--{name}={value}: not a valid value") from None
            elif name not in RUNNER_FLAGS:
                self.notes.append(f"flag --{name} ignored")
        if "mss" in flags:
            changes["mss"] = int(flags["mss"])
        self.now = 0.0
        self.queue: deque[packets.Sent] = deque()
        self.pending: _Pending | None = None
        self.device_drops = False  # a shell line's `tc qdisc ... limit 0` on the test device
        self.blocks = CodeBlocks()  # the %{ }% blocks, run after the last line
        self._setup(changes)
        self.sockets.on_connect = self._learn_ports
        self.flows: dict[tuple[int, int], Flow] = {}  # the script's connections, by (local, remote) port
        self.flow = self._flow(self.sockets.bind_port, REMOTE_PORT)  # the connection under test
        self.current: Event | None = None  # the event being run

    # ------------------------------------------------------------ the implementation under test
    # (a tcpwave Stack on a virtual clock here; the Linux kernel over TUN in kernel.py)
    def _setup(self, changes: dict) -> None:
        try:
            config = Config(**changes)
        except ValueError as e:
            raise ScriptError(0, str(e)) from None
        self.sink = ListSink()
        self._traced = 0
        self.stack = Stack([self.local], config=config, seed=int(self.flags.get("seed", "1")), host="tcpwave",
                           tracer=Tracer(self.sink), mtu=int(self.flags.get("mtu", "1500")),
                           networks=[ipaddress.ip_interface(f"{self.local}/{64 if self.local.version == 6 else 24}")
                                     .network],  # (the prefix --kernel gives its device)
                           segment_max=self._tso_size())
        self.sim = Sockets(self.stack, lambda: self.now, self.remote,
                               bind_port=int(self.flags.get("bind_port", "8080")),
                               connect_port=int(self.flags.get("connect_port", "8080")), portable=self.portable)
        self.sockets = self.sim

    def _profile(self, name: str | None) -> dict:
        """--profile=freebsd|linux|rfc: a group of knobs (core/profiles.py); the script's own knobs win."""
        if name is None:
            return {}
        try:
            return profiles.settings(name)
        except ValueError as e:
            raise ScriptError(self.script.flag_lines.get("profile", 0), f"--profile={name}: {e}") from None

    def _tso_size(self) -> int:
        """--tso_size=BYTES: segmentation offload, as on a device with TSO: a segment carries up to this
        many bytes, a whole number of MSS (`> P. 1:10001(10000)`); 0 (the default) cuts at the MSS."""
        try:
            size = int(self.flags.get("tso_size", "0"))
        except ValueError:
            size = -1
        if not 0 <= size <= 65535:
            raise ScriptError(self.script.flag_lines.get("tso_size", 0), "--tso_size takes 0 to 65535 bytes")
        return size

    def _deliver(self, raw: bytes) -> None:
        self.sim.before_arrival()
        self.stack.receive_packet(raw, self.now)

    def _tcp_info(self) -> dict | None:
        conn = self._under_test()
        return None if conn is None else tcpinfo.tcp_info(conn, self.now)

    def _shell_or_code(self, event: SkippedEvent) -> None:
        """A shell line's sysctl settings change the stack's Config from here on (the sockets made
        after it); anything else in it is skipped and noted. A %{ }% block runs as Python with the
        tcp_info of the connection under test, taken now."""
        if event.kind == "code":
            self._code(event)
            return
        found, rest = sysctl.changes(event.text)
        if found:
            try:
                self.stack.config = dataclasses.replace(self.stack.config, **found)
            except (ValueError, TypeError) as e:
                raise ScriptError(event.line, f"{event.text}: {e}") from None
            self.notes.append(f"line {event.line}: sysctl: " + ", ".join(f"{k}={v}" for k, v in found.items()))
        for part in list(rest):
            drops = sysctl.device_drops(part)
            if drops is not None:
                self.device_drops = drops
                rest.remove(part)
                self.notes.append(f"line {event.line}: the device {'drops' if drops else 'sends'} what the stack "
                                  f"sends: {part}")
        if rest:
            self.notes.append(f"line {event.line}: shell skipped: {'; '.join(rest)}")

    # the connection under test's fields, by their old names
    spaces = property(lambda self: self.flow.spaces)
    local_port = property(lambda self: self.flow.local_port)
    remote_port = property(lambda self: self.flow.remote_port)

    def _flow(self, local_port: int, remote_port: int) -> Flow:
        key = (local_port, remote_port)
        if key not in self.flows:
            self.flows[key] = Flow(local_port, remote_port,
                                   packets.Spaces(ts_slack=max(1, round(self.tolerance * 1000))))
        return self.flows[key]

    def _under_test(self):
        """The connection the script is talking to: the one on its current 4-tuple, else the newest
        socket's connection or listener."""
        for conn in self.stack.connections():
            if conn.remote and (conn.local[1], conn.remote[1]) == (self.local_port, self.remote_port):
                return conn
        return self.sim.under_test

    def _code(self, event: SkippedEvent) -> None:
        try:
            self.log.append(self.blocks.take(event, self._tcp_info(), self.now))
        except CodeFailure as e:
            raise Failure(e.line, str(e)) from None

    # ------------------------------------------------------------ driving
    def run(self) -> None:
        base = 0.0
        previous: Event | None = None
        for event in self.script.events:
            self.current = event
            base = self._anchor(previous, event, base)
            previous = event
            self.prev_time = base
            if isinstance(event, SkippedEvent):
                lo, _ = self._resolve(event.when, base)
                if lo is not None:
                    self._advance(lo, event)
                    self._check_stale(lo, event)
                    base = lo
                self._shell_or_code(event)
                continue
            lo, hi = self._resolve(event.when, base)
            if isinstance(event, PacketEvent) and not event.inbound:
                t = self._expect(event, lo, hi)
                base = t  # relative times count from when the packet went out, as in packetdrill
                continue
            at: float = self.now if lo is None else lo
            self._advance(at, event)
            self._check_stale(at, event)
            if isinstance(event, PacketEvent):
                self._inject(event)
            elif isinstance(event, CallEvent):
                self._call(event, at)
            base = at
        self._finish()
        try:
            self.log.extend(self.blocks.run())
        except CodeFailure as e:
            raise Failure(e.line, str(e)) from None

    def _anchor(self, previous: Event | None, event: Event, base: float) -> float:
        """What a relative time counts from: in virtual time the previous event's time (an outbound
        packet's: when it went out)."""
        return base

    def _resolve(self, when: When, base: float) -> tuple[float | None, float | None]:
        if when.kind == "any":
            return None, None
        offset = base if when.kind == "rel" else 0.0
        lo = when.start + offset
        hi = lo if when.end is None else when.end + offset
        if hi < lo:
            raise Failure(0, f"time range {lo:.6f}~{hi:.6f} ends before it starts")
        return lo, hi

    def _advance(self, to: float, event) -> None:
        """Move the clock to `to`, firing the stack's timers on the way."""
        while (t := self._next_wake()) is not None and t <= to:
            self._deadline_check(t, event)
            self.now = max(self.now, t)
            if (timer := self.stack.next_timer()) is not None and timer <= self.now:
                self.stack.handle_timer(self.now)
            self._after_step()
        self._deadline_check(to, event)
        self.now = max(self.now, to)

    def _tolerance(self, t: float, since: float | None = None) -> float:
        """How far an event at `t` may be off: --tolerance_usecs, or --tolerance_percent of the wait
        since the previous event, whichever is larger (packetdrill's rule)."""
        wait = t - (self.prev_time if since is None else since)
        return max(self.tolerance, self.tolerance_share * wait)

    def _next_wake(self) -> float | None:
        """The stack's next timer, or a blocked call's own timeout (poll's), whichever is first."""
        t = self.stack.next_timer()
        own = getattr(self.pending.attempt, "deadline", None) if self.pending is not None else None
        if own is not None and own > self.now and (t is None or own < t):
            return own
        return t

    def _deadline_check(self, t: float, event) -> None:
        p = self.pending
        if p is not None and t > p.end + p.tolerance:
            raise Failure(p.call.line, f"{p.call.name}() still blocked at {t:.3f} s; the script has it return at "
                                       f"{p.end:.3f} s")

    def _collect(self) -> None:
        for raw in self.stack.packets_to_send():
            sent = packets.decode_outbound(raw, self.now)
            if sent is not None and self.device_drops:  # `tc qdisc ... limit 0`: it never reaches the wire
                self.log.append(f"{sent.time:.3f} (dropped by the device: {packets.describe(sent, self.spaces)})")
            elif sent is not None:
                self.queue.append(sent)
        self.sim.note_events(self.stack.events())
        self._trace_states()

    def _after_step(self) -> None:
        self._collect()
        p = self.pending
        if p is not None:
            result = self._attempt(p.call, p.attempt)
            self._collect()  # what the retried call sent (a blocked write's data)
            if result is not BLOCK:
                self.pending = None
                if abs(self.now - p.end) > p.tolerance:
                    raise Failure(p.call.line, f"{p.call.name}() returned at {self.now:.3f} s, the script has it "
                                               f"return at {p.end:.3f} s")
                self._check_return(p.call, result)

    def _trace_states(self) -> None:
        for e in self.sink[self._traced:]:
            if e["type"] == "state":
                self.log.append(f"{e['t']:.3f}   [{e['conn']}] {e['from']} -> {e['to']} ({e['why']})")
            elif e["type"] == "drop":
                self.log.append(f"{e['t']:.3f}   [drop: {e['reason']}]")
            elif e["type"] == "handled":
                self.log.append(f"{e['t']:.3f}   [{e['what']}: {e['done']}]")
        self._traced = len(self.sink)

    def _check_stale(self, at: float, event) -> None:
        if self.portable:
            return  # packetdrill looks at sent packets only when a `>` line asks for one
        if self.queue and self.queue[0].time < at - self.tolerance:
            sent = self.queue[0]
            raise Failure(event.line, f"unexpected packet sent at {sent.time:.3f} s before this line: "
                                      f"{packets.describe(sent, self.spaces)}")

    # ------------------------------------------------------------ packets
    def _learn_ports(self, conn) -> None:
        """connect(): the new connection is the one under test, with its own numbering."""
        self.flow = self._flow(conn.local[1], conn.remote[1])
        self.flow.spaces.isn = self.flow.spaces.ts_base = None

    def _inject(self, event: PacketEvent) -> None:
        opts = event.options if isinstance(event.options, list) else []
        key = (event.start, next((o[1] for o in opts if o[0] == "TS"), None))
        new_syn = bool(event.flags & SYN and not event.flags & ACK)
        if event.ports is not None:  # `< 43211>8080 S ...`: the connection on those ports
            self.flow = self._flow(event.ports[1], event.ports[0])
        elif new_syn and self._listening():
            # a SYN to the listener under test opens a new connection, from a port of its own (as
            # packetdrill gives each child socket a fresh ephemeral port)
            taken = {f.remote_port for f in self.flows.values() if f.local_port == self.sockets.bind_port}
            fresh = self.flow.remote_port if self.flow.last_syn is None else max(taken | {REMOTE_PORT}) + 1
            self.flow = self._flow(self.sockets.bind_port, fresh)
        if new_syn and key != self.flow.last_syn:
            # maybe a new connection (not a retransmitted SYN): if the stack answers with a SYN,ACK,
            # that one shows the new ISN; a SYN into a synchronized connection keeps its numbering
            self.flow.last_syn = key
            self.flow.relearn = not self._synchronized()
        raw = packets.build_inbound(event, self.remote, self.local, self.remote_port, self.local_port, self.spaces)
        self.log.append(f"{self.now:.3f} {event.text}")
        self._deliver(raw)
        if new_syn and self._listening():
            self._child_made()
        self._after_step()

    def _child_made(self) -> None:
        child = self._under_test()
        if child is not None and child.state is not State.LISTEN:
            self.sim.under_test = child  # later SYNs go to it, until the next socket() or listen()

    def _synchronized(self) -> bool:
        """The script's connection is synchronized (TIME_WAIT aside, where a SYN may open a new one)."""
        u = self._under_test()
        return u is not None and u.state not in _UNSYNCHRONIZED

    def _listening(self) -> bool:
        u = self.sim.under_test
        return u is not None and u.state is State.LISTEN

    def _expect(self, event: PacketEvent, lo: float | None, hi: float | None) -> float:
        tolerance = self.tolerance if hi is None else self._tolerance(hi)
        deadline = float("inf") if hi is None else hi + tolerance
        self._await_packet(event, lo, deadline)
        sent = self._gather(event, self.queue.popleft(), lo, deadline)
        if event.ports is not None:
            self.flow = self._flow(*event.ports)
        if (sent.src_port, sent.dst_port) != (self.local_port, self.remote_port) and self.portable:
            # packetdrill only sees the packets of the socket under test
            self.log.append(f"{sent.time:.3f} (not checked: from port {sent.src_port} to {sent.dst_port}, "
                            "another connection)")
            return self._expect(event, lo, hi)
        if sent.flags & SYN and (self.spaces.isn is None or self.flow.relearn):
            self.spaces.isn = (sent.seq - event.start) & MASK
            self.spaces.ts_base = None
            self.flow.relearn = False
        elif sent.flags & RST and self.flow.relearn:
            self.spaces.isn = 0  # the new SYN was refused: its RST is numbered absolutely (SEQ=0)
        self.flow.relearn = False  # any other answer: the SYN went to an existing connection
        if self.spaces.ts_base is None:
            self._learn_ts(event, sent)
        shown = packets.describe(sent, self.spaces)
        self.log.append(f"{sent.time:.3f} {shown}")
        if lo is not None and hi is not None and not lo - tolerance <= sent.time <= hi + tolerance:
            expected_at = f"{lo:.3f} s" if lo == hi else f"{lo:.3f}~{hi:.3f} s"
            raise Failure(event.line, f"expected {event.text!r} at {expected_at}; sent {shown!r} at {sent.time:.3f} s")
        if (sent.src_port, sent.dst_port) != (self.local_port, self.remote_port):
            raise Failure(event.line, f"sent from port {sent.src_port} to {sent.dst_port}; the script's connection "
                                      f"is {self.local_port} -> {self.remote_port}")
        diffs = packets.mismatches(event, sent, self.spaces, self.portable)
        if diffs:
            raise Failure(event.line, f"expected {event.text!r}; sent {shown!r} ({'; '.join(diffs)})")
        return sent.time

    def _gather(self, event: PacketEvent, sent: packets.Sent, lo: float | None, deadline: float) -> packets.Sent:
        """The packet a `>` line is checked against: in virtual time the one sent (--tso_size sets
        how large the stack's segments are)."""
        return sent

    def _await_packet(self, event: PacketEvent, lo: float | None, deadline: float) -> None:
        """Run until a packet is queued; fail once the deadline passes without one."""
        while not self.queue:
            t = self._next_wake()
            if t is None or t > deadline:
                when = "" if lo is None else f" at {lo:.3f} s"
                raise Failure(event.line, f"expected {event.text!r}{when}; nothing was sent"
                                          + ("" if t is None else f" (the stack's next timer is at {t:.3f} s)"))
            self._advance(t, event)

    def _learn_ts(self, event: PacketEvent, sent: packets.Sent) -> None:
        have = next((o for o in sent.options if o[0] == "TS"), None)
        if have is None:
            return
        want = next((o for o in event.options if o[0] == "TS"), None) if isinstance(event.options, list) else None
        self.spaces.ts_base = (have[1] - (want[1] if want else 0)) & MASK

    # ------------------------------------------------------------ calls
    def _call(self, event: CallEvent, at: float) -> None:
        if self.pending is not None:
            raise Failure(event.line, f"{event.name}() while {self.pending.call.name}() (line "
                                      f"{self.pending.call.line}) is still blocked; only one call may block")
        try:
            attempt = self.sockets.start(event)
        except SysError as e:
            self._after_step()
            return self._check_return(event, e)
        except Mismatch as e:
            raise Failure(event.line, str(e)) from None
        result = self._attempt(event, attempt)
        self._after_step()
        blocking = event.when.block_end is not None
        if result is BLOCK:
            if not blocking:
                return self._block_unannounced(event, attempt)
            offset = at - event.when.start
            end = (event.when.block_end or 0.0) + offset
            self.pending = _Pending(event, attempt, end, self._tolerance(end, at))
            return
        if blocking:
            end = (event.when.block_end or 0.0) + at - event.when.start
            if abs(end - self.now) > self._tolerance(end, at):
                raise Failure(event.line, f"{event.name}() returned at once ({self.now:.3f} s); the script has it "
                                          f"block until {end:.3f} s")
        self._check_return(event, result)

    def _block_unannounced(self, event: CallEvent, attempt) -> None:
        """A call written without `start...end` that blocks: as packetdrill, which makes such a call on its
        main thread, the script waits until it returns (by a timer of the stack: a timeout, an abort),
        with no return time to check; what the stack sends meanwhile waits for the lines after it."""
        self.pending = _Pending(event, attempt, math.inf, math.inf)
        limit = self.now + UNANNOUNCED_LIMIT
        while self.pending is not None:
            t = self._next_wake()
            if t is None or t > limit:
                self.pending = None
                raise Failure(event.line, f"{event.name}() would block" + (
                    " and nothing in the stack would end it" if t is None else
                    f" for over {UNANNOUNCED_LIMIT:.0f} s") + f"; write it as 'start...end {event.name}(...)' "
                    "with the time it returns")
            self._advance(t, event)

    def _attempt(self, event: CallEvent, attempt) -> object:
        try:
            return attempt()
        except SysError as e:
            return e
        except Mismatch as e:
            raise Failure(event.line, str(e)) from None

    def _check_return(self, event: CallEvent, result) -> None:
        if isinstance(result, SysError):
            have = f"-1 {result.name}"
            ok = event.ret == WILDCARD or (event.ret == -1 and _same_errno(event.errno, result.name))
        else:
            have = str(result)
            ok = event.ret == WILDCARD or (event.errno is None and event.ret == result)
        self.log.append(f"{self.now:.3f} {event.text.rsplit(' = ', 1)[0]} = {have}")
        if not ok:
            want = f"{event.ret}{' ' + event.errno if event.errno else ''}"
            raise Failure(event.line, f"{event.name}() returned {have}, the script expects {want}")

    # ------------------------------------------------------------ end
    def _finish(self) -> None:
        if self.pending is not None:
            p = self.pending
            self._advance(p.end + p.tolerance, p.call)
            if self.pending is not None:
                raise Failure(p.call.line, f"{p.call.name}() never returned (the script has it return at "
                                           f"{p.end:.3f} s)")
        if self.queue and not self.portable:  # packetdrill never looks at what is sent after the last line
            sent = self.queue[0]
            raise Failure(len(self.script.events) and self.script.events[-1].line,
                          f"unexpected packet sent at {sent.time:.3f} s after the last line: "
                          f"{packets.describe(sent, self.spaces)}")


def _same_errno(want: str | None, have: str) -> bool:
    """Errno names compared by value, as packetdrill compares errno numbers: EWOULDBLOCK is EAGAIN."""
    if want == have:
        return True
    return want is not None and getattr(errno, want, None) is not None and getattr(errno, want) == getattr(
        errno, have, None)


def run_text(text: str, path: str = "<script>", defaults: dict[str, str] | None = None,
             defines: dict[str, str] | None = None) -> Result:
    try:
        script = parse_script(text, path, defines)
        runner = Runner(script, defaults)
    except ScriptError as e:
        return Result(path, False, e.line or None, f"cannot read the script: {e.args[0].split(': ', 1)[-1]}")
    try:
        runner.run()
    except Failure as e:
        return Result(path, False, e.line or None, str(e), runner.notes, runner.log)
    except Exception as e:  # a crash in the stack or the runner is a failure to report, with its line
        line = runner.current.line if runner.current else None
        return Result(path, False, line, f"internal error: {type(e).__name__}: {e}", runner.notes, runner.log)
    return Result(path, True, notes=runner.notes, log=runner.log)


def run_file(path: str, defaults: dict[str, str] | None = None, defines: dict[str, str] | None = None) -> Result:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return Result(path, False, None, f"cannot open: {e.strerror}")
    return run_text(text, path, defaults, defines)
