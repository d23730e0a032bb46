"""One TCP connection, sans-IO (RFC 9293 §3.10): the endpoint that coordinates its parts.

Inputs: user calls (connect, listen, send, receive, close, abort), arriving segments
(`segment_arrived`, processed as steps in arrival.py) and `handle_timer`, each with `now`.
Outputs, pulled by the caller: `drain_output()` / `segments_to_send()`, `events()` and `next_timer()`.
Nothing here reads a clock, opens a socket or draws an unseeded random number.

The parts, by composition:
- `snd` (sender.py): SND.*, the send buffer, Nagle/SWS/PSH, retransmissions, the persist probe;
- `rcv` (receiver.py): RCV.*, reassembly, delayed ACK, SACK/D-SACK blocks, the advertised window;
- `recovery` (recovery.py): the retransmission queue, RACK-TLP, NewReno, PRR, the ca_state;
- `cc`: the congestion control (tcpwave.cc), `rtt`: RFC 6298, `timers`: every deadline.
This class owns the state machine (`set_state`, checked against state.TRANSITIONS), the user calls,
the handshake's options and `emit`, through which every segment goes out.
"""

import dataclasses
import errno as _errno
import functools
import math
import os
import random
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..cc import create as create_cc
from ..cc.base import mypyc_attr
from ..wire.options import Options
from ..wire.seq import seq_add, seq_diff, seq_gt, seq_le
from ..wire.tcp import ACK, FIN, RST, SYN, URG, Segment, flags_text
from . import arrival
from . import events as ev
from .config import Config
from .errors import StateError, closed_error
from .isn import IsnGenerator, IsnSource
from .limits import RateBudget
from .memory import UNLIMITED, MemoryBudget
from .observe import ChangeReporter
from .reasons import CloseReason, DropReason, Handled
from .receiver import Receiver
from .recovery import Recovery
from .rtt import RttEstimator
from .sender import Sender
from .state import RECEIVING, SENDING, SYNCHRONIZED, State, check_transition
from .timers import (
    DELAYED_ACK,
    FIN_WAIT_2_TIMER,
    KEEPALIVE,
    PERSIST,
    REORDER,
    RETRANSMIT,
    SWS_OVERRIDE,
    TIME_WAIT_TIMER,
    TLP,
    USER_TIMEOUT,
    Timers,
)
from .trace import NULL_TRACER, Tracer
from .window import our_shift

if TYPE_CHECKING:
    from .time_wait import TimeWait

_RST_ON_ABORT: Final = frozenset({State.SYN_RCVD, State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2,
                                  State.CLOSE_WAIT})
# States that may still send queued data (and then the FIN): CLOSE is allowed before all
# data has gone out, and the peer's FIN can move FIN_WAIT_1 to CLOSING meanwhile.
_DATA_STATES: Final = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK})
_KEEPALIVE_STATES: Final = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_2})
_LOSS_TIMERS: Final = frozenset({RETRANSMIT, TLP, REORDER})


def _user_call(method):
    """After a user call, let the owner (a Stack) collect segments and events at once."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        finally:
            if self.on_change is not None:
                self.on_change(self)

    return wrapper


@mypyc_attr(native_class=False)  # (a Python class: it takes weak references, a compiled one takes none)
class _Anchor:
    """What a weak reference to a Connection points at (`Connection.weak`). It holds its connection,
    which holds it: the two are freed together, as the connection's own cycles are (its parts point
    back at it), so a weak reference to the anchor ends exactly when one to the connection would."""

    __slots__ = ("conn", "__weakref__")

    def __init__(self, conn: "Connection") -> None:
        self.conn = conn


@dataclasses.dataclass(slots=True)
class Stats:
    """Counters of one connection (what `ss -i` would show)."""

    segments_sent: int = 0
    bytes_sent: int = 0  # payload bytes, first transmissions and retransmissions
    retransmitted_bytes: int = 0
    retransmissions: int = 0  # segments sent again, for any reason
    fast_retransmits: int = 0  # recoveries entered (fast retransmit / RACK)
    timeouts: int = 0  # retransmission timer expirations
    probes: int = 0  # tail loss probes sent
    segments_received: int = 0
    bytes_acked: int = 0  # sequence space the peer acknowledged (tcpi_bytes_acked)
    busy_time: float = 0.0  # seconds with data in flight, ended periods (tcpi_busy_time)
    busy_since: float | None = None  # when the current busy period began


class Connection:
    __slots__ = (
        "config", "local", "remote", "host", "_tracer", "_isn", "_rng", "_challenges", "_last_oow_ack",
        "state", "passive", "_now", "_out", "events_out", "our_mss", "ts_enabled", "sack_ok",
        "peer_offered_wscale", "_ts_offset", "timers", "rtt", "cc", "snd", "rcv", "recovery", "keepalive",
        "user_timeout", "last_recv", "keepalive_probes", "retries", "iss_floor", "close_reason", "stats",
        "_reported", "on_change", "_port_pair", "soft_error", "table_key", "retrans_stamp", "syn_at", "mem", "charged",
        "_anchor", "from_record",
    )

    def __init__(
        self,
        config: Config | None = None,
        local: tuple | None = None,
        remote: tuple | None = None,
        *,
        isn: IsnSource | None = None,
        rng: random.Random | None = None,
        challenge_budget: RateBudget | None = None,
        tracer: Tracer = NULL_TRACER,
        host: str = "tcp",
        default_mss: int = 1460,
        memory: MemoryBudget = UNLIMITED,
    ):
        cfg = self.config = config or Config()
        self.local = local  # (address, port)
        self.remote = remote  # (address, port), or None while listening unspecified
        self.host = host
        self._tracer = tracer
        self.mem = memory  # the stack's budget (core/memory.py): its level shapes windows and sends
        self.charged = 0  # what the stack last charged to it for this connection's buffers; -1: left the account
        self._isn: IsnSource = isn or IsnGenerator(os.urandom(32))  # (any ISN source: tests fix it)
        self._rng = rng or random.SystemRandom()  # a Stack passes its own (seeded in simulation)
        # challenge ACKs: one budget per stack (a Stack passes its own), per second
        self._challenges = challenge_budget or RateBudget(cfg.challenge_ack_limit, self._rng)
        self._last_oow_ack: float | None = None
        self.state = State.CLOSED
        self.passive = False  # went through LISTEN
        self._now = 0.0
        self._out: list[tuple[Segment, str]] = []
        self.events_out: list[ev.Event] = []
        self.our_mss = cfg.mss or default_mss
        self.ts_enabled = False  # negotiated options
        self.sack_ok = False
        self.peer_offered_wscale = False
        self._ts_offset = 0
        self.timers = Timers(tracer, host, self)
        self.rtt = RttEstimator(cfg)
        self.cc = create_cc(cfg.congestion_control, 536, cfg.initial_cwnd_segments)
        self.snd = Sender(self)
        self.rcv = Receiver(self)
        self.recovery = Recovery(self, self.cc)
        self.keepalive = cfg.keepalive  # per connection, may be changed at any time (SO_KEEPALIVE)
        self.user_timeout = cfg.user_timeout  # per connection (TCP_USER_TIMEOUT), seconds or None
        self.last_recv = 0.0  # when a segment last arrived (keep-alive idleness)
        self.keepalive_probes = 0  # unanswered keep-alive probes
        self.retries = 0  # retransmissions of the same data without progress
        self.retrans_stamp: float | None = None  # when what is being retransmitted was first sent
        self.syn_at = 0.0  # when our SYN (or SYN,ACK) first went out
        self.iss_floor: int | None = None  # set when reopening from TIME_WAIT
        self.close_reason: CloseReason | None = None
        self.stats = Stats()
        self._reported = ChangeReporter()  # what the event log last heard of cwnd and windows
        # set by a Stack: called after each user call with output to collect
        self.on_change: Callable[[Connection], None] | None = None
        self._port_pair: tuple[int, int] | None = None
        self.table_key: tuple | None = None  # a Stack's key for it (the same object: a TIME_WAIT record shares it)
        # the last ICMP soft error (RFC 1122 §4.2.3.9): what a timeout reports instead of ETIMEDOUT
        self.soft_error: CloseReason | None = None
        self._anchor: _Anchor | None = None  # made by the first weak()
        self.from_record: TimeWait | None = None  # rebuilt from this TIME_WAIT record (its events go out under it)

    def spawn(self, local: tuple, remote: tuple, iss_floor: int | None = None,
              default_mss: int | None = None) -> "Connection":
        """A new TCB in LISTEN for one arriving segment, cloned from this listening one.

        iss_floor: when the 4-tuple is being reopened from TIME_WAIT, the old incarnation's
        SND.NXT; the new ISS is chosen above it (RFC 9293 §3.6.1 (1)). default_mss: the MSS for
        the address family the SYN came in on (a listener on any address serves both).
        """
        child = Connection(self.config, local, remote, isn=self._isn, rng=self._rng,
                           challenge_budget=self._challenges, tracer=self._tracer, host=self.host,
                           default_mss=default_mss or self.our_mss, memory=self.mem)
        child._now = self._now
        child.passive = True
        child.iss_floor = iss_floor
        child.state = State.LISTEN  # not a transition: the listener's own LISTEN, copied for this 4-tuple
        return child

    # ----------------------------------------------------------------- outputs
    def drain_output(self) -> list[tuple[Segment, str]]:
        """Segments to send, each with a short note ('retransmission', 'challenge ACK', ...)."""
        if self._tracer.enabled:
            self._reported.note_changes(self)
        out, self._out = self._out, []
        return out

    def segments_to_send(self) -> list[Segment]:
        return [seg for seg, _ in self.drain_output()]

    def events(self) -> list:
        out, self.events_out = self.events_out, []
        return out

    def weak(self) -> "Callable[[], Connection | None]":
        """A weak reference to this connection, as weakref.ref(conn) would be: call it for the
        connection, or None once it has been freed. (The compiled build's Connection, a native class,
        takes no weakref.ref of its own.)"""
        anchor = self._anchor
        if anchor is None:
            anchor = self._anchor = _Anchor(self)
        return functools.partial(_follow, weakref.ref(anchor))

    def next_timer(self) -> float | None:
        at = self.timers.at
        return min(at.values()) if at else None

    @property
    def name(self) -> str:
        r, loc = self.remote, self.local
        if not loc:
            return "unbound"
        return f"{loc[0]}:{loc[1]}-{r[0]}:{r[1]}" if r else f"{loc[0]}:{loc[1]} (listening)"

    @property
    def now(self) -> float:
        """The time passed in by the latest call (the clock belongs to the caller)."""
        return self._now

    @property
    def tracing(self) -> bool:
        return self._tracer.enabled

    # the RFC 9293 variables, read-only from outside (defs, not property(lambda): compiled classes need them)
    @property
    def iss(self) -> int:
        return self.snd.iss

    @property
    def irs(self) -> int:
        return self.rcv.irs

    @property
    def snd_una(self) -> int:
        return self.snd.una

    @property
    def snd_nxt(self) -> int:
        return self.snd.nxt

    @property
    def snd_wnd(self) -> int:
        return self.snd.wnd

    @property
    def max_snd_wnd(self) -> int:
        return self.snd.max_wnd

    @property
    def snd_mss(self) -> int:
        return self.snd.mss

    @property
    def rcv_nxt(self) -> int:
        return self.rcv.nxt

    @property
    def rcv_wnd(self) -> int:
        return self.rcv.window

    @property
    def ts_recent(self) -> int:
        return self.rcv.ts_recent

    @property
    def readable(self) -> int:
        return self.rcv.buf.readable

    @property
    def urgent_pending(self) -> int:
        return self.rcv.urgent_pending

    @property
    def send_space(self) -> int:
        return self.snd.buf.space

    @property
    def cwnd(self) -> int:
        return self.cc.cwnd

    @property
    def ssthresh(self) -> int:
        return self.cc.ssthresh

    @property
    def srtt(self) -> float | None:
        return self.rtt.srtt


    @property
    def rto(self) -> float:
        return self.rtt.rto

    @property
    def nodelay(self) -> bool:
        return self.snd.nodelay

    @nodelay.setter
    def nodelay(self, value: bool) -> None:
        self.snd.nodelay = value

    @property
    def tso_max(self) -> int:
        return self.snd.tso_max

    @tso_max.setter
    def tso_max(self, value: int) -> None:
        self.snd.tso_max = value

    @property
    def send_queue(self) -> int:
        """Bytes written and not yet acknowledged by the peer (ss's Send-Q)."""
        return len(self.snd.buf)

    @property
    def held(self) -> int:
        """Bytes its buffers hold: the send buffer, unread data and the out-of-order queue's charge."""
        return len(self.snd.buf) + self.rcv.buf.held

    @property
    def closing_state(self) -> bool:
        """May our FIN go once the queue is empty? (CLOSE was called and the state has moved on)"""
        return self.state is not State.ESTABLISHED and self.snd.fin_wanted

    # --------------------------------------------------------------- user calls
    @_user_call
    def connect(self, now: float) -> None:
        """Active OPEN (RFC 9293 §3.10.1)."""
        self._now = now
        if self.state is not State.CLOSED:
            raise StateError("connect", self.state, "the connection already exists")
        if not self.remote or not self.remote[1]:
            raise ValueError("connect() needs a fully specified remote (address, port)")
        self.choose_iss()
        self.rcv.wscale = our_shift(self.config) if self.config.window_scaling else 0
        self.set_state(State.SYN_SENT, "active OPEN")
        self.send_syn()

    @_user_call
    def listen(self, now: float) -> None:
        """Passive OPEN."""
        self._now = now
        if self.state is not State.CLOSED:
            raise StateError("listen", self.state, "the connection already exists")
        self.passive = True
        self.set_state(State.LISTEN, "passive OPEN")

    @_user_call
    def send(self, data: bytes | bytearray | memoryview, now: float, urgent: bool = False) -> int:
        """SEND: accept as much of data as the send buffer holds; return that count. With urgent=True
        the accepted data is urgent: the urgent pointer will point just past it (RFC 9293 §3.8.5)."""
        self._now = now
        st = self.state
        if st is State.CLOSED:
            raise closed_error("send", st, self.close_reason)
        if st not in SENDING or self.snd.fin_wanted:
            raise StateError("send", st, "the connection is closing")
        if st is State.LISTEN:
            raise StateError("send", st, "a listening connection has no peer")
        n = self.snd.queue(data, urgent)
        self.output()
        return n

    @_user_call
    def receive(self, max_bytes: int | None = None, *, now: float, zero_copy: bool = False) -> bytes | bytearray:
        """RECEIVE: up to max_bytes of in-order data; b'' when none is waiting or after a normal end.
        zero_copy: taking everything that is waiting hands over the buffer itself, a bytearray the
        caller then owns, instead of a copy as bytes (the asyncio transport's bulk path)."""
        self._now = now
        rcv = self.rcv
        if self.state is State.CLOSED and not rcv.buf.readable and self.close_reason != CloseReason.NORMAL:
            raise closed_error("receive", self.state, self.close_reason)
        data = rcv.read(max_bytes)
        if not zero_copy and data.__class__ is bytearray:
            data = bytes(data)
        if data and self.state in RECEIVING:  # once the peer's FIN is in, no window update (after
            rcv.window_update_after_read()  # LAST_ACK the peer's socket may be gone, and it would answer RST)
            self.output()
        return data

    @_user_call
    def set_keepalive(self, enabled: bool, now: float) -> None:
        """Turn keep-alive on or off for this connection (RFC 9293 MUST-24), like SO_KEEPALIVE."""
        self._now = now
        self.keepalive = enabled
        self.output()  # arms or cancels the timer

    @_user_call
    def set_nodelay(self, enabled: bool, now: float) -> None:
        """Turn Nagle's algorithm off (True) or back on, like TCP_NODELAY; small queued data goes at once."""
        self._now = now
        self.snd.nodelay = enabled
        if self.state in SYNCHRONIZED:
            self.output()

    @_user_call
    def set_user_timeout(self, seconds: float | None, now: float) -> None:
        """Abort when sent data stays unacknowledged this long (None: off), like TCP_USER_TIMEOUT."""
        self._now = now
        self.user_timeout = seconds
        self.output()

    @_user_call
    def set_buffers(self, now: float, send: int | None = None, recv: int | None = None) -> None:
        """Resize the send and/or receive buffer at any time, as SO_SNDBUF/SO_RCVBUF allow in Linux.
        The window scale was fixed by the SYN; a smaller receive buffer never retracts the window
        already offered (RFC 9293 §3.8.6, MUST-35)."""
        self._now = now
        if send is not None:
            self.snd.buf.capacity = send
        if recv is not None:
            self.rcv.buf.capacity = recv
        self.output()

    @_user_call
    def shutdown(self, now: float) -> None:
        """CLOSE as RFC 9293 §3.10.4 defines it: "no more data from this side". A FIN follows the
        queued data; receiving goes on (half-close). Idempotent once closing or closed."""
        self._now = now
        self._close("shutdown()")

    @_user_call
    def close(self, now: float) -> None:
        """Close both directions, like socket.close(): a FIN if nothing is unread; a RST if received
        data is unread, or if new data arrives afterwards (RFC 9293 §3.6.1 SHLD-3)."""
        self._now = now
        if self.rcv.buf.readable and self.state in SYNCHRONIZED:
            self.abort(now, why="CLOSE with unread data")
            return
        self.rcv.closed = True
        self._close("close()")
        if self.state is State.FIN_WAIT_2:
            self._orphaned()

    def _close(self, call: str) -> None:
        st = self.state
        if st is State.CLOSED:
            if self.close_reason is None:
                raise StateError("close", st, "the connection does not exist")
            return
        if st in (State.LISTEN, State.SYN_SENT):
            self.terminate(CloseReason.NORMAL, "CLOSE")
            return
        if self.snd.fin_wanted:
            return  # already closing: a second FIN is never sent
        self.snd.fin_wanted = True
        if st is State.ESTABLISHED:
            self.set_state(State.FIN_WAIT_1, "CLOSE", call)
        elif st is State.CLOSE_WAIT:
            self.set_state(State.LAST_ACK, "CLOSE", call)
        elif st is State.SYN_RCVD and not len(self.snd.buf):
            self.set_state(State.FIN_WAIT_1, "CLOSE", call)
        # else SYN_RCVD with queued data: the FIN follows once ESTABLISHED (see established()).
        self.output()

    @_user_call
    def abort(self, now: float, why: str = "ABORT", reason: CloseReason = CloseReason.ABORTED) -> None:
        """ABORT (RFC 9293 §3.10.5): RST the peer where it holds state, drop everything. reason: what
        the application is told (the stack resetting it for memory says OUT_OF_MEMORY)."""
        self._now = now
        st = self.state
        if st is State.CLOSED:
            return
        if st in _RST_ON_ABORT:
            self.emit(RST | ACK, self.snd.nxt, note=why)
        self.terminate(reason, why)

    def flush(self, now: float) -> None:
        """After segment_arrived(..., flush=False) for a batch: send what the batch calls for."""
        self._now = now
        self.output()

    def segment_arrived(self, seg: Segment, now: float, flush: bool = True) -> None:
        """Process one segment. With flush=False (more segments of a batch follow), an ACK that is owed
        now still goes now, as without a batch: for out-of-order data, a filled hole and every second
        full-sized segment (RFC 5681 §4.2, and Linux without GRO). Otherwise (an ACK that may be
        delayed) nothing is sent until flush()."""
        self._now = now
        self.stats.segments_received += 1
        arrival.segment_arrives(self, seg)
        if flush or self.rcv.ack_now:  # a stretch ACK per batch (about 6 segments per ACK on a TUN read)
            self.output()  # left a lossy sender's window hanging on one ACK: a lost one cost it an RTO
        if self._tracer.enabled:
            self._reported.note_changes(self)

    def time_wait_accepts(self, seg: Segment) -> bool:
        """May this SYN end TIME_WAIT and open a new incarnation? (RFC 9293 §3.6.1, RFC 6191)"""
        if self.state is not State.TIME_WAIT or not self.config.time_wait_reopen:
            return False
        if seg.flags & (SYN | ACK | RST) != SYN:
            return False
        ts = seg.options.ts
        higher = seq_gt(seg.seq, self.rcv.nxt)
        if self.ts_enabled and ts is not None:  # RFC 6191: a newer timestamp, or the same one and a
            return seq_gt(ts[0], self.rcv.ts_recent) or (ts[0] == self.rcv.ts_recent and higher)  # higher seq
        return higher  # no timestamps: a higher sequence number

    def end_time_wait(self, now: float) -> None:
        self._now = now
        self.terminate(CloseReason.NORMAL, "new SYN reopens the 4-tuple")

    # ---------------------------------------------------------------- timers
    def handle_timer(self, now: float) -> None:
        self._now = now
        timers = self.timers
        for name in timers.due(now):
            if not timers.take(name, now):
                continue  # cancelled by an earlier handler in this loop
            if name == TIME_WAIT_TIMER:
                self.terminate(CloseReason.NORMAL, "2MSL timeout")
            elif name == RETRANSMIT:
                self._on_retransmit_timeout()
            elif name == TLP:
                self._on_probe_timeout()
            elif name == REORDER:
                self.recovery.on_reorder_timeout(now)
                self.output()
                self.arm_loss_timer(acked=True)
            elif name == PERSIST:
                self._on_persist_timeout()
            elif name == DELAYED_ACK:
                if self.rcv.ack_delayed:
                    self.rcv.delayed_ack_fired()
                self.rcv.ack_now = self.rcv.ack_delayed
            elif name == SWS_OVERRIDE:
                self.snd.sws_expired = True
            elif name == KEEPALIVE:
                self._on_keepalive_timeout()
            elif name == FIN_WAIT_2_TIMER:
                self.timers.give_up(FIN_WAIT_2_TIMER, now)
                self.emit(RST | ACK, self.snd.nxt, note="orphan FIN_WAIT_2 timed out")
                self.terminate(CloseReason.TIMED_OUT, "orphan FIN_WAIT_2 timeout (fin_timeout)")
            elif name == USER_TIMEOUT:
                timers.give_up(USER_TIMEOUT, now)
                self.terminate(self._timed_out(), "user timeout: sent data unacknowledged too long")
            # PACING: nothing to do but send, below
        self.output()
        if self._tracer.enabled:
            self._reported.note_changes(self)

    def arm_loss_timer(self, new_data: bool = False, acked: bool = False) -> None:
        """Keep the right one of retransmit / tail loss probe / RACK reorder timer armed (RFC 6298 §5,
        RFC 8985 §6.2 step 5 and §7.2): `acked` after an ACK that delivered data (restart),
        `new_data` after new data went out (start, or push the probe back)."""
        timers, snd, now = self.timers, self.snd, self._now
        slot = timers.slot
        if snd.una == snd.nxt:
            if slot in _LOSS_TIMERS:
                timers.cancel(slot, now)
            return
        if self.state not in SYNCHRONIZED:
            timers.arm_once(RETRANSMIT, now, self.rtt.rto)
            return
        rec = self.recovery
        if acked and rec.reo_timeout > 0:
            timers.arm(REORDER, now, rec.reo_timeout)
            return
        if acked or slot is None or slot == PERSIST or (new_data and slot == TLP):
            pto = rec.pto(-(-snd.flight // snd.mss))
            if pto is not None:
                timers.arm(TLP, now, pto)
            elif acked or slot != RETRANSMIT:
                timers.arm(RETRANSMIT, now, self.rtt.rto)

    def _on_retransmit_timeout(self) -> None:
        st, cfg = self.state, self.config
        if self.retries == 0:  # Linux's retrans_stamp: the SYN's first send, or data's first retransmission
            self.retrans_stamp = self._now if st in SYNCHRONIZED else self.syn_at
        if st in SYNCHRONIZED and not self.snd.wnd and not self.rcv.closed:
            # RFC 9293 §3.8.6.1: the peer shut its window on data in flight, so the retransmissions are
            # its zero-window probes; while it answers them the connection stays, whatever R2 says
            # (as Linux's zero-window branch of tcp_retransmit_timer: zero-window-on-data-in-flight-outlasts-
            # retries.pkt). A close()d one gets R2.
            if self._zero_window_timed_out():
                self.timers.give_up(RETRANSMIT, self._now, retries=self.retries)
                self.terminate(self._timed_out(), "zero window: peer silent")
                return
        elif self._gave_up(st, cfg):
            self.timers.give_up(RETRANSMIT, self._now, retries=self.retries)
            self.terminate(self._timed_out(), "retransmissions exhausted")
            return
        self.retries += 1
        self.stats.timeouts += 1
        if st is not State.SYN_SENT or self.retries > cfg.syn_linear_timeouts:
            self.rtt.backoff()  # (an active SYN's first retransmissions keep the RTO, as Linux: open-syn-
            #                     retransmit-backoff.pkt)
        else:
            self.rtt.backoffs += 1
        snd = self.snd
        snd.rtt_seq = None  # Karn's rule
        if snd.una == snd.iss and st in (State.SYN_SENT, State.SYN_RCVD, State.FIN_WAIT_1):
            self.send_syn(note="retransmission")
        elif st in SYNCHRONIZED:
            self.recovery.on_rto(self._now)
            snd.output(self._now)
        if self.timers.slot is None:
            self.timers.arm(RETRANSMIT, self._now, self.rtt.rto)

    def _gave_up(self, st: State, cfg) -> bool:
        """Linux's tcp_write_timeout(): an active SYN gives up after syn_retries + syn_linear_timeouts
        retransmissions or the time syn_retries doublings from the initial RTO take; a SYN,ACK after
        synack_retries; data after the time data_retries (tcp_retries2) doublings from 200 ms take
        (15: 924.6 s), counted from the first retransmission. RFC 9293 §3.8.3 lets R2 be a time."""
        if st is State.SYN_RCVD:
            return self.retries >= cfg.synack_retries
        if st is State.SYN_SENT:
            if self.retries >= cfg.syn_retries + cfg.syn_linear_timeouts:
                return True
            boundary, base = cfg.syn_retries, cfg.rto_initial
        else:
            boundary, base = cfg.data_retries, 0.2  # Linux's TCP_RTO_MIN, whatever the route's minimum
        if not self.retries or self.retrans_stamp is None:
            return False
        thresh = max(0, int(math.log2(cfg.rto_max / base)))
        limit = ((2 << min(boundary, thresh)) - 1) * base + max(0, boundary - thresh) * cfg.rto_max
        return self._now - self.retrans_stamp >= limit - 1e-9

    def _zero_window_timed_out(self) -> bool:
        """Retransmitting into a zero window: has the peer stopped answering? Linux's
        tcp_rtx_probe0_timed_out(): silent for longer than twice the maximum RTO (or the user
        timeout) while retransmitting for that long; with a user timeout, retransmitting longer than
        it ends the connection even if the peer answers."""
        now, stamp = self._now, self.retrans_stamp if self.retrans_stamp is not None else self._now
        limit, user = 2 * self.config.rto_max, self.user_timeout
        if user:
            if now - stamp > user:
                return True
            limit = min(limit, user)
        return now - self.last_recv > limit and now - stamp > limit

    def _on_probe_timeout(self) -> None:
        self.stats.probes += 1
        self.snd.probe(self._now)
        if self.timers.slot is None:
            self.timers.arm(RETRANSMIT, self._now, self.rtt.rto)

    def _on_keepalive_timeout(self) -> None:
        cfg, snd = self.config, self.snd
        if not self.keepalive or self.state not in _KEEPALIVE_STATES:
            return
        if snd.una != snd.nxt or snd.buf.bytes_from(snd.nxt):
            self.timers.arm(KEEPALIVE, self._now, cfg.keepalive_idle)  # not idle (MUST-26)
            return
        user = self.user_timeout  # with TCP_USER_TIMEOUT set, it replaces the probe count (as Linux:
        #                           user-timeout-ends-keepalive.pkt)
        if (self.keepalive_probes >= cfg.keepalive_count if not user
                else self.keepalive_probes and self._now - self.last_recv >= user - 1e-9):
            self.emit(RST | ACK, snd.nxt, note="keep-alive: peer gone")
            self.timers.give_up(KEEPALIVE, self._now, probes=self.keepalive_probes)
            self.terminate(self._timed_out(), "keep-alive probes unanswered")
            return
        self.keepalive_probes += 1
        self.emit(ACK, seq_add(snd.nxt, -1), note="keep-alive probe")  # SEG.SEQ = SND.NXT - 1
        self.timers.arm(KEEPALIVE, self._now, cfg.keepalive_interval)

    def _on_persist_timeout(self) -> None:
        snd, cfg = self.snd, self.config
        now, user = self._now, self.user_timeout
        if snd.wnd or not (snd.buf.bytes_from(snd.nxt) or snd.fin_waiting) or self.state not in _DATA_STATES:
            snd.persist_since = None
            return
        if snd.persist_since is None:
            snd.persist_since = now
        elif user and now - snd.persist_since >= user - 1e-9:
            # a window shut for longer than the user timeout ends the connection even though the
            # peer answers every probe (as Linux's icsk_probes_tstamp: user-timeout-ends-zero-window-
            # probing.pkt); the peer is there: no RST
            self.timers.give_up(PERSIST, now, probes=snd.probes_out)
            self.terminate(self._timed_out(), "user timeout: zero window too long")
            return
        if snd.probes_out >= cfg.data_retries:  # the peer is gone, not just busy (Linux: tcp_retries2)
            self.timers.give_up(PERSIST, now, probes=snd.probes_out)
            self.emit(RST | ACK, snd.nxt, note="zero-window probes unanswered")
            self.terminate(self._timed_out(), "zero-window probes unanswered")
            return
        snd.zero_window_probe()
        snd.probes_out += 1
        snd.persist_backoff = min(snd.persist_backoff + 1, 30)  # 2**30 x RTO is far past rto_max
        wait = min(self.rtt.rto * (1 << snd.persist_backoff), cfg.rto_max)
        if user:  # the probe that ends it comes when the user timeout does, not a backoff later
            wait = max(0.002, min(wait, snd.persist_since + user - now))
        self.timers.arm(PERSIST, now, wait)

    # --------------------------------------------------------------- output
    def output(self) -> None:
        """Send what the windows allow, then a pure ACK if one is still owed; keep the timers that
        depend on the connection's condition (keep-alive, user timeout, delayed ACK) right."""
        state, now = self.state, self._now
        if state in _DATA_STATES:
            self.snd.output(now)
        if state is State.CLOSED:
            return
        timers = self.timers
        if self.keepalive and state in _KEEPALIVE_STATES:
            timers.arm_once(KEEPALIVE, now, max(0.0, self.last_recv + self.config.keepalive_idle - now))
        elif not self.keepalive and KEEPALIVE in timers.at:
            timers.cancel(KEEPALIVE, now)
        snd = self.snd
        if self.user_timeout and snd.una != snd.nxt and state in SYNCHRONIZED:
            at = snd.progress_at + self.user_timeout
            if timers.get(USER_TIMEOUT) != at:
                timers.arm(USER_TIMEOUT, now, at - now)
        elif USER_TIMEOUT in timers.at:
            timers.cancel(USER_TIMEOUT, now)
        rcv = self.rcv
        if rcv.ack_now:
            if state is State.CLOSING and self.config.closing_resends_fin and snd.fin_seq is not None:
                # as FreeBSD's tcp_output() (CLOSING sends FIN|ACK): the ACK carries our FIN again
                self.emit(FIN | ACK, snd.fin_seq, note="retransmission: FIN with the ACK (closing_resends_fin)")
            else:
                self.emit(ACK, snd.nxt)
        elif rcv.ack_delayed:
            timers.arm_once(DELAYED_ACK, now, rcv.ack_delay(self.rtt.srtt))

    def send_syn(self, note: str = "") -> None:
        cfg, snd, rcv = self.config, self.snd, self.rcv
        synack = self.state is not State.SYN_SENT
        if cfg.noopt:  # FreeBSD's TCP_NOOPT: not even MSS; nothing is negotiated (window scale etc. are off)
            opts = Options()
        elif synack:  # echo only what the peer offered
            opts = Options(
                mss=self.our_mss,
                wscale=rcv.wscale if self.peer_offered_wscale and cfg.window_scaling else None,
                sack_permitted=self.sack_ok,
                ts=(self.tsval(), rcv.ts_recent) if self.ts_enabled else None,
                bsd=cfg.option_layout == "freebsd",
            )
        else:
            opts = Options(
                mss=self.our_mss,
                wscale=rcv.wscale if cfg.window_scaling else None,
                sack_permitted=cfg.sack,
                ts=(self.tsval(), 0) if cfg.timestamps else None,
                bsd=cfg.option_layout == "freebsd",
            )
        self.emit(SYN | (ACK if synack else 0), snd.iss, options=opts, note=note)
        if not note:
            self.syn_at = self._now
        if not note and snd.rtt_seq is None:
            snd.rtt_seq, snd.rtt_time = seq_add(snd.iss, 1), self._now
        self.timers.arm_once(RETRANSMIT, self._now, self.rtt.rto)

    def emit(self, flags: int, seq: int, payload=b"", options: Options | None = None, note: str = "") -> None:
        """Build one outgoing segment; every segment this connection sends passes here."""
        snd, rcv = self.snd, self.rcv
        urgent = 0
        if snd.up is not None and seq_gt(snd.up, seq) and flags & ACK and not flags & RST:
            flags |= URG
            urgent = min(seq_diff(snd.up, seq), 0xFFFF)
        window = 0 if flags & RST else rcv.advertise(syn=bool(flags & SYN))
        ack = 0
        if flags & ACK:
            ack = rcv.acked()
            if DELAYED_ACK in self.timers.at:
                self.timers.cancel(DELAYED_ACK, self._now)
        if options is None:
            options = self._segment_options(flags)
        self._out.append((Segment(self._ports[0], self._ports[1], seq, ack, flags, window, payload, options,
                                  urgent), note))
        st = self.stats
        st.segments_sent += max(1, -(-len(payload) // self.snd.mss)) if self.snd.mss else 1  # TSO: in segments
        st.bytes_sent += len(payload)
        if note.startswith("retransmission"):
            st.retransmissions += 1
            st.retransmitted_bytes += len(payload)

    def _segment_options(self, flags: int) -> Options:
        if flags & RST:
            return Options()
        ts = (self.tsval(), self.rcv.ts_recent) if self.ts_enabled else None
        sack = self.rcv.sack_blocks(3 if ts else 4) if self.sack_ok and flags & ACK else ()
        return Options(ts=ts, sack=sack) if ts or sack else Options()

    def oow_ack(self, seg: Segment) -> None:
        """Answer a segment that failed the sequence or PAWS check with an ACK (RFC 9293
        §3.10.7.4), at most once per invalid_ratelimit when it carries no data (Linux
        tcp_oow_rate_limited): a flood of forged empty segments must not draw a flood of ACKs.
        Data (a retransmission we already have) is always answered: that is no ACK loop."""
        if seg.payload and not seg.flags & SYN:
            self.rcv.ack_now = True
        elif not self._oow_limited():
            self.rcv.ack_now = True

    def challenge_ack(self, seg: Segment) -> None:
        """RFC 5961 §7: challenge ACKs are limited per connection (as out-of-window ACKs) and by one
        budget per second for the whole stack."""
        if not self._oow_limited() and self._challenges.allow(self._now):
            self.rcv.ack_now = True

    def _oow_limited(self) -> bool:
        last, now = self._last_oow_ack, self._now
        if last is not None and 0 <= now - last < self.config.invalid_ratelimit - 1e-9:  # (float clock)
            return True
        self._last_oow_ack = now
        return False

    def icmp_error(self, kind: str, mtu: int, seq: int, now: float, errno: int = _errno.EHOSTUNREACH) -> None:
        """An ICMP error about one of our segments (RFC 1122 §4.2.3.9). RFC 5927: believed only if
        the quoted sequence number is in flight (SND.UNA <= seq < SND.NXT). "Too big" lowers the MSS
        to fit the path (RFC 1191 / RFC 8201) and resends what was sent larger. The others (the choices
        Linux makes, not checked against the kernel here):
        in SYN_SENT the connection fails at once with the matching errno (EHOSTUNREACH, ECONNREFUSED,
        ...); a half-open passive connection is dropped; otherwise it is a soft error, kept and
        reported instead of ETIMEDOUT if the connection then times out."""
        self._now = now
        snd = self.snd
        if not (seq_le(snd.una, seq) and seq_gt(snd.nxt, seq)):
            if self._tracer.enabled:
                self.trace("drop", reason=DropReason.ICMP_OUT_OF_WINDOW.value, kind=kind, seq=seq)
            return
        if kind != "too_big":
            reason = CloseReason.for_errno(errno)
            name = _errno.errorcode.get(errno, str(errno))
            if self._tracer.enabled:
                self.trace("icmp", kind=kind, errno=name, state=self.state.value)
            if self.state is State.SYN_SENT or (self.state is State.SYN_RCVD and self.passive):
                self.terminate(reason, f"ICMP {kind.replace('_', ' ')} ({name})")
            else:
                self.soft_error = reason
            return
        version = getattr(self.local[0], "version", 4) if self.local else 4
        floor = 536 if version == 4 else 1220
        mss = max(floor - (12 if self.ts_enabled else 0), mtu - (40 if version == 4 else 60)
                  - (12 if self.ts_enabled else 0)) if mtu else snd.mss
        if mss >= snd.mss:
            return
        snd.mss = mss
        self.cc.mss = mss
        self.trace("pmtu", mtu=mtu, mss=mss)
        q = self.recovery.q
        for rec in q:  # what went out larger than the path carries is lost: resend it smaller
            if not rec.sacked and len(rec) > mss:
                q.mark_lost(rec)
        self.output()

    def _timed_out(self) -> CloseReason:
        """How a timeout ends the connection: the ICMP soft error if one came, else ETIMEDOUT (RFC 1122
        §4.2.3.9 leaves it open; Linux's sk_err_soft choice)."""
        return self.soft_error or CloseReason.TIMED_OUT

    def send_reset(self, seq: int, note: str, ack: int | None = None) -> None:
        """A RST that answers a segment without being part of the connection's own sequence."""
        flags = RST if ack is None else RST | ACK
        self._out.append((Segment(self._ports[0], self._ports[1], seq, ack or 0, flags, 0), note))

    def tsval(self) -> int:
        return (int(self._now * 1000) + self._ts_offset) & 0xFFFFFFFF

    # ----------------------------------------------------------- state change
    def set_state(self, new: State, why: str = "", call: str = "") -> None:
        """The one place a state changes: checked against TRANSITIONS, traced (with the application
        call that made it, when one did and it matters: close() or shutdown())."""
        old = self.state
        check_transition(old, new)
        self.state = new
        if self._tracer.enabled:
            extra = {"call": call} if call else {}
            self.trace("state", **{"from": old.value, "to": new.value}, why=why, **extra)
        if new is State.TIME_WAIT:
            self.timers.clear(self._now)
            self.timers.arm(TIME_WAIT_TIMER, self._now, 2 * self.config.msl)
            self.events_out.append(ev.TimeWait())
        elif new in (State.CLOSED, State.LISTEN):
            self.timers.clear(self._now)
        elif new is State.FIN_WAIT_2 and self.rcv.closed:
            self._orphaned()

    def _orphaned(self) -> None:
        """FIN_WAIT_2 after close(): nobody will read, and a peer that never sends its FIN would hold
        the connection forever. Linux resets it after tcp_fin_timeout."""
        self.timers.arm_once(FIN_WAIT_2_TIMER, self._now, self.config.fin_timeout)

    def terminate(self, reason: CloseReason, why: str) -> None:
        self.timers.clear(self._now)
        if self.state is not State.CLOSED:
            self.set_state(State.CLOSED, why)
        self.close_reason = reason
        self.rcv.ack_now = self.rcv.ack_delayed = False
        self.snd.buf.discard()  # never to be sent: the memory goes now, whoever still holds the connection
        self.snd.unsent = 0
        if self.rcv.buf.has_gaps:
            self.rcv.buf.prune()  # (unread in-order data stays: it can still be read)
        self.events_out.append(ev.Closed(reason))

    def established(self, why: str) -> None:
        self.set_state(State.ESTABLISHED, why)
        self.retries = 0
        if self.stats.timeouts and self.rtt.srtt is None:
            self.rtt.after_syn_timeout()  # RFC 6298 (5.7)
        self.last_recv = self._now
        self.cc.set_mss(self.snd.mss)
        if self.config.rcv_buffer_mss_round:  # FreeBSD's tcp_mss(): roundup(sb_hiwat, mss), at most sb_max
            mss = self.snd.mss + (12 if self.ts_enabled else 0)  # (its t_maxseg: options not taken off)
            buf = self.rcv.buf
            buf.capacity = max(buf.capacity, min(-(-buf.capacity // mss) * mss, self.config.maxsockbuf or 1 << 30))
        self.events_out.append(ev.Connected())
        if self.snd.fin_wanted:  # CLOSE was called in SYN_RCVD with data still queued
            self.set_state(State.FIN_WAIT_1, "CLOSE (deferred)")

    @property
    def _ports(self) -> tuple[int, int]:
        """(local port, remote port): only a connection with both ends can send."""
        ports = self._port_pair
        if ports is None:
            if self.local is None or self.remote is None:
                raise StateError("send", self.state, "the connection has no remote end")
            ports = self._port_pair = (self.local[1], self.remote[1])
        return ports

    def choose_iss(self) -> None:
        if self.local is None or self.remote is None:
            raise StateError("connect", self.state, "the connection has no remote end")
        la, lp = self.local
        ra, rp = self.remote
        iss, self._ts_offset = self._isn.start(self._now, la, lp, ra, rp)
        if self.iss_floor is not None and seq_le(iss, self.iss_floor):
            iss = seq_add(self.iss_floor, 1 << 16)
        self.snd.start(iss)
        self.recovery.q.reset(0)
        self.recovery.q.nxt = 1  # the SYN

    def trace(self, type: str, **fields) -> None:
        if self._tracer.enabled:
            self._tracer.emit(self._now, self.host, type, conn=self.name, **fields)

    def rtt_sample(self, r: float, newest: float | None = None) -> None:
        """An RTT sample for SRTT and the RTO; `newest`: the newest segment's, which is the better
        one for the minimum RTT (Linux's ca_rtt_us: no delayed-ACK wait of the oldest in it)."""
        self.rtt.sample(r)
        rec = self.recovery
        low = r if newest is None else newest
        if rec.min_rtt is None or low < rec.min_rtt:
            rec.min_rtt = low
        if self._tracer.enabled:
            ChangeReporter.rtt_sample(self, r)

    def drop(self, seg: Segment, reason: DropReason) -> None:
        if self._tracer.enabled:
            self.trace("drop", reason=reason.value, flags=flags_text(seg.flags), seq=seg.seq, ack=seg.ack,
                       len=len(seg.payload), win=seg.window)

    def handled(self, seg: Segment, what: Handled) -> None:
        """A segment that was acted on without being new (not a drop): traced with what was done."""
        if self._tracer.enabled:
            self.trace("handled", what=what.value, done=what.done, flags=flags_text(seg.flags), seq=seg.seq,
                       ack=seg.ack, len=len(seg.payload))

    def __repr__(self) -> str:
        return f"<Connection {self.name} {self.state}>"


def _follow(ref: "weakref.ref[_Anchor]") -> Connection | None:
    anchor = ref()
    return None if anchor is None else anchor.conn
