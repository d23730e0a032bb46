"""One TCP connection, sans-IO (RFC 9293 §3.10).

Inputs: user calls (connect, listen, send, receive, close, abort), arriving
segments (`segment_arrived`, in arrival.py) and `handle_timer`, each with `now`.
Outputs, pulled by the caller: `drain_output()` / `segments_to_send()`,
`events()` and `next_timer()`. Nothing here reads a clock, opens a socket or
draws an unseeded random number.
"""

import collections
import dataclasses
import functools
import random

from ..cc import create as create_cc
from ..seq import seq_add, seq_diff, seq_gt, seq_le
from ..trace import NULL_TRACER, Tracer
from ..wire.options import Options
from ..wire.tcp import ACK, FIN, PSH, RST, SYN, URG, Segment, flags_text
from . import events as ev
from .arrival import SegmentArrival
from .config import Config
from .errors import StateError, closed_error
from .isn import IsnGenerator
from .observe import ChangeReporter
from .recv_buffer import ReceiveBuffer
from .rtt import RttEstimator
from .sack import Scoreboard
from .send_buffer import SendBuffer
from .state import SENDING, SYNCHRONIZED, State, check_transition
from .timers import DELAYED_ACK, KEEPALIVE, PERSIST, RETRANSMIT, SWS_OVERRIDE, TIME_WAIT_TIMER, USER_TIMEOUT
from .window import window_shift_for

S = State
_RST_ON_ABORT = frozenset({S.SYN_RCVD, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT})
# States that may still send queued data (and then the FIN): CLOSE is allowed before all
# data has gone out, and the peer's FIN can move FIN_WAIT_1 to CLOSING meanwhile.
_DATA_STATES = frozenset({S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_1, S.CLOSING, S.LAST_ACK})
_KEEPALIVE_STATES = frozenset({S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_2})


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


@dataclasses.dataclass(slots=True)
class Stats:
    """Counters of one connection (what `ss -i` would show)."""

    segments_sent: int = 0
    bytes_sent: int = 0  # payload bytes, first transmissions and retransmissions
    retransmitted_bytes: int = 0
    retransmissions: int = 0  # segments sent again, for any reason
    fast_retransmits: int = 0
    timeouts: int = 0  # retransmission timer expirations
    segments_received: int = 0


class Connection(SegmentArrival):
    def __init__(
        self,
        config: Config | None = None,
        local: tuple | None = None,
        remote: tuple | None = None,
        *,
        isn: IsnGenerator | None = None,
        rng: random.Random | None = None,
        tracer: Tracer = NULL_TRACER,
        host: str = "tcp",
        default_mss: int = 1460,
    ):
        cfg = self.config = config or Config()
        self.local = local  # (address, port)
        self.remote = remote  # (address, port), or None while listening unspecified
        self.host = host
        self._tracer = tracer
        self._isn = isn or IsnGenerator(b"tcpwave-default-isn-key")
        self._rng = rng or random.Random(0)
        self.state = S.CLOSED
        self.passive = False  # went through LISTEN
        self._now = 0.0
        self._out: list[tuple[Segment, str]] = []
        self._events: list = []
        # RFC 9293 §3.3.1 send and receive sequence variables
        self.iss = self.irs = 0
        self.snd_una = self.snd_nxt = self.snd_wnd = self.snd_wl1 = self.snd_wl2 = 0
        self.max_snd_wnd = 0
        self.rcv_nxt = 0
        self.rcv_up = 0
        self.snd_up: int | None = None  # send urgent pointer, while urgent data is unacknowledged
        self._rcv_adv = 0  # right edge of the window we last advertised
        self.snd_wscale = self.rcv_wscale = 0
        self.ts_enabled = False
        self.ts_recent = 0
        self.last_ack_sent = 0
        self._ts_offset = 0
        self.sack_ok = False
        self._our_mss = cfg.mss or default_mss
        self.snd_mss = 536
        self._sendbuf = SendBuffer(cfg.send_buffer, 0)
        self._recvbuf = ReceiveBuffer(cfg.recv_buffer)
        self._send_blocked = False  # a send() was cut short: tell the user when space returns
        self.nodelay = cfg.nodelay  # per connection, may be changed at any time (TCP_NODELAY)
        self.tso_max = 0  # > 0: the device cuts segments (TSO), so one may carry up to this many bytes
        self.keepalive = cfg.keepalive  # per connection, may be changed at any time (SO_KEEPALIVE)
        self.user_timeout = cfg.user_timeout  # per connection (TCP_USER_TIMEOUT), seconds or None
        self._last_recv = 0.0  # when a segment last arrived (keep-alive idleness)
        self._probes = 0  # unanswered keep-alive probes
        self._progress_at = 0.0  # when sent data was last acknowledged (user timeout)
        self._urgent_advanced = False
        self._push_points: collections.deque[int] = collections.deque()  # where writes end: PSH
        self._sent_push: collections.deque[int] = collections.deque()  # ends of sent segments with PSH
        self._sws_expired = False
        self._small_end: int | None = None  # end of the last sub-MSS segment sent (Nagle/Minshall)
        self._fin_wanted = False  # the user called CLOSE (shutdown or close)
        self._rcv_closed = False  # the user called close(): arriving data can no longer be read
        self._fin_seq: int | None = None  # sequence number of our FIN once sent
        self._iss_floor: int | None = None  # set when reopening from TIME_WAIT
        self._rtt = RttEstimator(cfg)
        self._rtt_seq: int | None = None  # the segment being timed (Karn: cleared on retransmit)
        self._rtt_time = 0.0
        self._retries = 0
        self._persist_backoff = 0
        self._timers: dict[str, float] = {}
        self.cc = create_cc(cfg.congestion_control, self.snd_mss, cfg.initial_cwnd_segments)
        self._dupacks = 0
        self._recover: int | None = None  # loss recovery runs until SND.UNA passes this
        self._recovery_kind = "fast"  # "fast" (duplicate ACKs / SACK) or "rto" (after a timeout)
        self._high_rxt = 0  # HighRxt (RFC 6675): the end of what this recovery has retransmitted
        self._sb = Scoreboard()
        self._acked_total = 0  # bytes cumulatively acknowledged since the start (with SACKed: delivered)
        self._rtt_new: float | None = None  # the RTT sample the ACK being processed gave, if any
        self._last_send = 0.0
        self._ack_now = False  # an ACK must go out before this call returns
        self._ack_delayed = False  # an ACK is owed, but may wait for the delayed-ACK timer
        self._delack_bytes = 0  # in-order bytes received since our last ACK
        self._rcv_mss = 536  # the largest segment the peer has sent: "full-sized"
        self._peer_offered_wscale = False
        self._last_ooo: int | None = None  # newest out-of-order arrival (first SACK block)
        self._dsack: tuple[int, int] | None = None  # a duplicate to report first (RFC 2883)
        self._readable_signalled = 0
        self.close_reason: str | None = None
        self.stats = Stats()
        self._reported = ChangeReporter()  # what the event log last heard of timers, cwnd, windows
        self.on_change = None  # set by a Stack: called after each user call with output to collect

    def spawn(self, local: tuple, remote: tuple, iss_floor: int | None = None,
              default_mss: int | None = None) -> "Connection":
        """A new TCB in LISTEN for one arriving segment, cloned from this listening one.

        iss_floor: when the 4-tuple is being reopened from TIME_WAIT, the old incarnation's
        SND.NXT; the new ISS is chosen above it (RFC 9293 §3.6.1 (1)). default_mss: the MSS for
        the address family the SYN came in on (a listener on any address serves both).
        """
        child = Connection(self.config, local, remote, isn=self._isn, rng=self._rng, tracer=self._tracer,
                           host=self.host, default_mss=default_mss or self._our_mss)
        child.state = S.LISTEN
        child.passive = True
        child._now = self._now
        child._iss_floor = iss_floor
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
        out, self._events = self._events, []
        return out

    def next_timer(self) -> float | None:
        return min(self._timers.values()) if self._timers else None

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
    def readable(self) -> int:
        return self._recvbuf.readable

    @property
    def urgent_pending(self) -> int:
        """How many of the bytes the application reads next are urgent (RFC 9293 MUST-33)."""
        rb = self._recvbuf
        up = rb.next_offset + seq_diff(self.rcv_up, self.rcv_nxt)
        return max(0, up - (rb.next_offset - rb.readable))

    @property
    def send_space(self) -> int:
        return self._sendbuf.space

    @property
    def cwnd(self) -> int:
        return self.cc.cwnd

    @property
    def ssthresh(self) -> int:
        return self.cc.ssthresh

    @property
    def rto(self) -> float:
        return self._rtt.rto

    @property
    def srtt(self) -> float | None:
        return self._rtt.srtt

    # --------------------------------------------------------------- user calls
    @_user_call
    def connect(self, now: float) -> None:
        """Active OPEN (RFC 9293 §3.10.1)."""
        self._now = now
        if self.state is not S.CLOSED:
            raise StateError("connect", self.state, "the connection already exists")
        if not self.remote or not self.remote[1]:
            raise ValueError("connect() needs a fully specified remote (address, port)")
        self._choose_iss()
        self.rcv_wscale = window_shift_for(self.config.recv_buffer) if self.config.window_scaling else 0
        self._set_state(S.SYN_SENT, "active OPEN")
        self._send_syn()

    @_user_call
    def listen(self, now: float) -> None:
        """Passive OPEN."""
        self._now = now
        if self.state is not S.CLOSED:
            raise StateError("listen", self.state, "the connection already exists")
        self.passive = True
        self._set_state(S.LISTEN, "passive OPEN")

    @_user_call
    def send(self, data: bytes | bytearray | memoryview, now: float, urgent: bool = False) -> int:
        """SEND: accept as much of data as the send buffer holds; return that count. With urgent=True
        the accepted data is urgent: the urgent pointer will point just past it (RFC 9293 §3.8.5)."""
        self._now = now
        st = self.state
        if st is S.CLOSED:
            raise closed_error("send", st, self.close_reason)
        if st not in SENDING or self._fin_wanted:
            raise StateError("send", st, "the connection is closing")
        if st is S.LISTEN:
            raise StateError("send", st, "a listening connection has no peer")
        n = self._sendbuf.append(data)
        if n:
            self._push_points.append(self._sendbuf.end_seq)
            if urgent:
                self.snd_up = self._sendbuf.end_seq  # MUST-62: the octet following the urgent data
        if n < len(data):
            self._send_blocked = True
        self._output()
        return n

    @_user_call
    def receive(self, max_bytes: int | None = None, *, now: float) -> bytes:
        """RECEIVE: up to max_bytes of in-order data; b'' when none is waiting or after a normal end."""
        self._now = now
        if self.state is S.CLOSED and not self._recvbuf.readable and self.close_reason != ev.NORMAL:
            raise closed_error("receive", self.state, self.close_reason)
        data = self._recvbuf.read(max_bytes)
        self._readable_signalled = self._recvbuf.readable
        if data and self.state in SYNCHRONIZED:
            self._maybe_window_update()
            self._output()
        return data

    @_user_call
    def set_keepalive(self, enabled: bool, now: float) -> None:
        """Turn keep-alive on or off for this connection (RFC 9293 MUST-24), like SO_KEEPALIVE."""
        self._now = now
        self.keepalive = enabled
        self._output()  # arms or cancels the timer

    @_user_call
    def set_nodelay(self, enabled: bool, now: float) -> None:
        """Turn Nagle's algorithm off (True) or back on, like TCP_NODELAY; small queued data goes at once."""
        self._now = now
        self.nodelay = enabled
        if self.state in SYNCHRONIZED:
            self._output()

    @_user_call
    def set_user_timeout(self, seconds: float | None, now: float) -> None:
        """Abort when sent data stays unacknowledged this long (None: off), like TCP_USER_TIMEOUT."""
        self._now = now
        self.user_timeout = seconds
        self._output()

    @_user_call
    def shutdown(self, now: float) -> None:
        """CLOSE as RFC 9293 §3.10.4 defines it: "no more data from this side". A FIN follows the
        queued data; receiving goes on (half-close). Idempotent once closing or closed."""
        self._now = now
        self._close(now)

    @_user_call
    def close(self, now: float) -> None:
        """Close both directions, like socket.close(): a FIN if nothing is unread; a RST if received
        data is unread, or if new data arrives afterwards (RFC 9293 §3.6.1 SHLD-3)."""
        self._now = now
        if self._recvbuf.readable and self.state in SYNCHRONIZED:
            self.abort(now, why="CLOSE with unread data")
            return
        self._rcv_closed = True
        self._close(now)

    def _close(self, now: float) -> None:
        st = self.state
        if st is S.CLOSED:
            if self.close_reason is None:
                raise StateError("close", st, "the connection does not exist")
            return
        if st in (S.LISTEN, S.SYN_SENT):
            self._terminate(ev.NORMAL, "CLOSE")
            return
        if self._fin_wanted:
            return  # already closing: a second FIN is never sent
        self._fin_wanted = True
        if st is S.ESTABLISHED:
            self._set_state(S.FIN_WAIT_1, "CLOSE")
        elif st is S.CLOSE_WAIT:
            self._set_state(S.LAST_ACK, "CLOSE")
        elif st is S.SYN_RCVD and not len(self._sendbuf):
            self._set_state(S.FIN_WAIT_1, "CLOSE")
        # else SYN_RCVD with queued data: the FIN follows once ESTABLISHED (see _established).
        self._output()

    @_user_call
    def abort(self, now: float, why: str = "ABORT") -> None:
        """ABORT (RFC 9293 §3.10.5): RST the peer where it holds state, drop everything."""
        self._now = now
        st = self.state
        if st is S.CLOSED:
            return
        if st in _RST_ON_ABORT:
            self._emit(RST | ACK, self.snd_nxt, note=why)
        self._terminate(ev.ABORTED, why)

    def flush(self, now: float) -> None:
        """After segment_arrived(..., flush=False) for a batch: send what the batch calls for."""
        self._now = now
        self._output()

    def time_wait_accepts(self, seg: Segment) -> bool:
        """May this SYN end TIME_WAIT and open a new incarnation? (RFC 9293 §3.6.1, RFC 6191)"""
        if self.state is not S.TIME_WAIT or not self.config.time_wait_reopen:
            return False
        if seg.flags & (SYN | ACK | RST) != SYN:
            return False
        ts = seg.options.ts
        if self.ts_enabled and ts is not None:
            return seq_gt(ts[0], self.ts_recent)  # RFC 6191: a newer timestamp
        return seq_gt(seg.seq, self.rcv_nxt)  # no timestamps: a higher sequence number

    def end_time_wait(self, now: float) -> None:
        self._now = now
        self._terminate(ev.NORMAL, "new SYN reopens the 4-tuple")

    # ---------------------------------------------------------------- timers
    def handle_timer(self, now: float) -> None:
        self._now = now
        due = [name for name, t in self._timers.items() if t <= now]
        for name in due:
            if self._timers.get(name, float("inf")) > now:
                continue  # cancelled by an earlier handler in this loop
            del self._timers[name]
            self._reported.fired(name)
            self._trace("timer", name=name, action="fire")
            if name == TIME_WAIT_TIMER:
                self._terminate(ev.NORMAL, "2MSL timeout")
            elif name == RETRANSMIT:
                self._on_retransmit_timeout()
            elif name == PERSIST:
                self._on_persist_timeout()
            elif name == DELAYED_ACK:
                self._ack_now = self._ack_delayed
            elif name == SWS_OVERRIDE:
                self._sws_expired = True
            elif name == KEEPALIVE:
                self._on_keepalive_timeout()
            elif name == USER_TIMEOUT:
                self._trace("timer", name=USER_TIMEOUT, action="give_up")
                self._terminate(ev.TIMED_OUT, "user timeout: sent data unacknowledged too long")
        self._output()
        if self._tracer.enabled:
            self._reported.note_changes(self)

    def _arm(self, name: str, delay: float) -> None:
        self._timers[name] = self._now + delay

    def _cancel(self, name: str) -> None:
        self._timers.pop(name, None)

    def _on_retransmit_timeout(self) -> None:
        st = self.state
        limit = (
            self.config.syn_retries if st is S.SYN_SENT
            else self.config.synack_retries if st is S.SYN_RCVD
            else self.config.data_retries
        )
        if self._retries >= limit:
            self._trace("timer", name=RETRANSMIT, action="give_up", retries=self._retries)
            self._terminate(ev.TIMED_OUT, "retransmissions exhausted")
            return
        self._retries += 1
        self.stats.timeouts += 1
        self._rtt.backoff()
        self._rtt_seq = None  # Karn's rule
        if st in SYNCHRONIZED:
            self.cc.on_rto(seq_diff(self.snd_nxt, self.snd_una))
            self._recover = self.snd_nxt
            self._recovery_kind = "rto"  # every un-SACKed byte is now presumed lost
            self._high_rxt = self.snd_una
            self._dupacks = 0
        self._retransmit_head()
        self._arm(RETRANSMIT, self._rtt.rto)

    def _on_keepalive_timeout(self) -> None:
        cfg = self.config
        if not self.keepalive or self.state not in _KEEPALIVE_STATES:
            return
        if self.snd_una != self.snd_nxt or self._sendbuf.bytes_from(self.snd_nxt):
            self._arm(KEEPALIVE, cfg.keepalive_idle)  # not idle: data in flight or waiting (MUST-26)
            return
        if self._probes >= cfg.keepalive_count:
            self._emit(RST | ACK, self.snd_nxt, note="keep-alive: peer gone")
            self._trace("timer", name=KEEPALIVE, action="give_up", probes=self._probes)
            self._terminate(ev.TIMED_OUT, "keep-alive probes unanswered")
            return
        self._probes += 1
        self._emit(ACK, seq_add(self.snd_nxt, -1), note="keep-alive probe")  # SEG.SEQ = SND.NXT - 1
        self._arm(KEEPALIVE, cfg.keepalive_interval)

    def _on_persist_timeout(self) -> None:
        if self.snd_wnd or not self._sendbuf.bytes_from(self.snd_nxt) or self.state not in _DATA_STATES:
            return
        # Zero-window probe: an old sequence number draws an ACK with the current window.
        self._emit(ACK, seq_add(self.snd_una, -1), note="zero-window probe")
        self._persist_backoff += 1
        self._arm(PERSIST, min(self._rtt.rto * (1 << self._persist_backoff), self.config.rto_max))

    # --------------------------------------------------------------- output
    def _output(self) -> None:
        """Send what the windows allow, then a pure ACK if one is still owed."""
        if self.state in _DATA_STATES and self._fin_seq is None:
            buf, mss = self._sendbuf, self.snd_mss
            if (self.snd_una == self.snd_nxt and buf.bytes_from(self.snd_nxt)
                    and self._now - self._last_send > self._rtt.rto):
                self.cc.on_idle_restart()
            pipe = self._recover_lost() if self._scoreboard_recovery else None
            seg_max = (self.tso_max // mss) * mss if self.tso_max > mss else mss
            while True:
                avail = buf.bytes_from(self.snd_nxt)
                if pipe is None:
                    # RFC 3042 Limited Transmit: each of the first two duplicate ACKs lets one new
                    # segment out, so that a small window can still produce three duplicates
                    extra = min(self._dupacks, 2) * mss if self._recover is None else 0
                    usable = seq_diff(seq_add(self.snd_una, min(self.snd_wnd, self.cc.cwnd + extra)), self.snd_nxt)
                else:  # in recovery the pipe estimate, not the flight size, limits new data
                    usable = min(seq_diff(seq_add(self.snd_una, self.snd_wnd), self.snd_nxt), self.cc.cwnd - pipe)
                n = min(avail, seg_max, usable)
                if n <= 0:
                    if avail == 0 and self._fin_wanted and self.state is not S.ESTABLISHED:
                        self._send_data(0, fin=True)
                    break
                if n < mss and not self._may_send_small(n, avail, usable):
                    break
                self._send_data(n, fin=self._fin_wanted and n == avail and self.state is not S.ESTABLISHED)
                if pipe is not None:
                    pipe += n
                if self._fin_seq is not None:
                    break
            if buf.bytes_from(self.snd_nxt) and not self.snd_wnd and self.snd_una == self.snd_nxt:
                if PERSIST not in self._timers:
                    self._persist_backoff = 0
                    self._arm(PERSIST, self._rtt.rto)
        if self.state is S.CLOSED:
            return
        timers = self._timers
        if self.keepalive and self.state in _KEEPALIVE_STATES and KEEPALIVE not in timers:
            self._arm(KEEPALIVE, max(0.0, self._last_recv + self.config.keepalive_idle - self._now))
        elif not self.keepalive and KEEPALIVE in timers:
            del timers[KEEPALIVE]
        if self.user_timeout and self.snd_una != self.snd_nxt and self.state in SYNCHRONIZED:
            timers[USER_TIMEOUT] = self._progress_at + self.user_timeout
        else:
            timers.pop(USER_TIMEOUT, None)
        if self._ack_now:
            self._emit(ACK, self.snd_nxt)
        elif self._ack_delayed and DELAYED_ACK not in self._timers:
            self._arm(DELAYED_ACK, self.config.delayed_ack)

    @property
    def _scoreboard_recovery(self) -> bool:
        return self._recover is not None and (self.sack_ok or self._recovery_kind == "rto")

    def _recover_lost(self) -> int:
        """RFC 6675 recovery step: retransmit lost ranges while cwnd - pipe allows; return the pipe.
        After a timeout every un-SACKed byte is lost, which makes this go-back-N (without SACK)
        or a SACK-guided resend, in slow start, without moving SND.NXT back."""
        sb, mss = self._sb, self.snd_mss
        flight = seq_diff(self.snd_nxt, self.snd_una)
        edge = flight if self._recovery_kind == "rto" else sb.lost_below(mss)
        high = max(0, seq_diff(self._high_rxt, self.snd_una))
        pipe = sb.pipe(flight, edge, high)
        while self.cc.cwnd - pipe >= mss:
            nxt = sb.next_lost(flight, edge, high, mss)
            if nxt is None:
                break
            a, b = nxt
            self._retransmit_range(a, b)
            high = b
            pipe += b - a
        return pipe

    def _retransmit_range(self, a: int, b: int) -> None:
        """Send bytes [a, b) (offsets from SND.UNA) again; the FIN too if the range covers it."""
        data_end = seq_diff(self._fin_seq, self.snd_una) if self._fin_seq is not None else b
        n = max(0, min(b, data_end) - a)
        fin = self._fin_seq is not None and b > data_end
        seq = seq_add(self.snd_una, a)
        payload = self._sendbuf.copy(seq, n) if n else b""
        self._emit(ACK | (FIN if fin else 0) | (PSH if n and self._pushed(seq, n) else 0), seq, payload,
                   note="retransmission")
        self._high_rxt = seq_add(self.snd_una, b)
        if RETRANSMIT not in self._timers:
            self._arm(RETRANSMIT, self._rtt.rto)

    def _pushed(self, seq: int, n: int) -> bool:
        """Did the first transmission of bytes [seq, seq + n) end a write (PSH)?"""
        marks, end = self._sent_push, seq_add(seq, n)
        while marks and seq_le(marks[0], self.snd_una):
            marks.popleft()
        for mark in marks:
            if seq_gt(mark, end):
                return False
            if seq_gt(mark, seq):
                return True
        return False

    def _may_send_small(self, n: int, avail: int, usable: int) -> bool:
        """May a segment shorter than the MSS go now? (RFC 9293 §3.7.4 Nagle, §3.8.6.2.1 sender SWS)"""
        if n == avail:  # everything queued fits: Nagle decides, in Minshall's variant (as Linux):
            # hold a small segment only while an earlier small segment is unacknowledged, so small
            # writes coalesce but the tail of one large write is not held back for a round trip
            return (self.nodelay or self._fin_wanted or self._small_end is None
                    or seq_le(self._small_end, self.snd_una))
        # the window, not the queue, limits us: send at least half the largest window seen,
        # or whatever fits once the override timer has run out
        if n >= self.max_snd_wnd // 2 or self._sws_expired:
            self._sws_expired = False
            return True
        if SWS_OVERRIDE not in self._timers and usable > 0:
            self._arm(SWS_OVERRIDE, self.config.sws_override)
        return False

    def _send_data(self, n: int, fin: bool) -> None:
        seq = self.snd_nxt
        payload = self._sendbuf.copy(seq, n) if n else b""
        end = seq_add(seq, n)
        push = 0
        points = self._push_points
        while points and seq_le(points[0], end):  # this segment ends a write (or more than one)
            points.popleft()
            push = PSH
        flags = ACK | (push if n else 0) | (FIN if fin else 0)
        if push and n:
            marks = self._sent_push
            while marks and seq_le(marks[0], self.snd_una):
                marks.popleft()
            marks.append(end)  # a retransmission of this segment carries PSH again
        if 0 < n < self.snd_mss:
            self._small_end = end
        if self.snd_una == self.snd_nxt:
            self._progress_at = self._now  # the user-timeout clock starts with the first unacked byte
        self._emit(flags, seq, payload)
        self._last_send = self._now
        if fin:
            self._fin_seq = seq_add(seq, n)
        self.snd_nxt = seq_add(seq, n + fin)
        if self._rtt_seq is None:
            self._rtt_seq, self._rtt_time = self.snd_nxt, self._now
        if RETRANSMIT not in self._timers:
            self._arm(RETRANSMIT, self._rtt.rto)

    def _retransmit_head(self) -> None:
        """Resend the oldest unacknowledged segment (SYN, SYN,ACK, data and/or FIN)."""
        if self.snd_una == self.iss and self.state in (S.SYN_SENT, S.SYN_RCVD, S.FIN_WAIT_1):
            self._send_syn(note="retransmission")
            return
        if self.snd_una == self.snd_nxt:
            return
        in_flight = seq_diff(self._fin_seq if self._fin_seq is not None else self.snd_nxt, self.snd_una)
        n = min(self.snd_mss, in_flight)
        fin = self._fin_seq is not None and seq_add(self.snd_una, n) == self._fin_seq
        payload = self._sendbuf.copy(self.snd_una, n) if n else b""
        push = PSH if n and self._pushed(self.snd_una, n) else 0
        self._emit(ACK | (FIN if fin else 0) | push, self.snd_una, payload, note="retransmission")
        end = seq_add(self.snd_una, n + fin)
        if seq_gt(end, self._high_rxt):
            self._high_rxt = end

    def _send_syn(self, note: str = "") -> None:
        cfg = self.config
        synack = self.state is not S.SYN_SENT
        mss = self._our_mss
        if synack:  # echo only what the peer offered
            opts = Options(
                mss=mss,
                wscale=self.rcv_wscale if self._peer_offered_wscale else None,
                sack_permitted=self.sack_ok,
                ts=(self._tsval(), self.ts_recent) if self.ts_enabled else None,
            )
        else:
            opts = Options(
                mss=mss,
                wscale=self.rcv_wscale if cfg.window_scaling else None,
                sack_permitted=cfg.sack,
                ts=(self._tsval(), 0) if cfg.timestamps else None,
            )
        self._emit(SYN | (ACK if synack else 0), self.iss, options=opts, note=note)
        if not note and self._rtt_seq is None:
            self._rtt_seq, self._rtt_time = seq_add(self.iss, 1), self._now
        if RETRANSMIT not in self._timers:
            self._arm(RETRANSMIT, self._rtt.rto)

    def _emit(self, flags: int, seq: int, payload=b"", options: Options | None = None, note: str = "") -> None:
        """Build one outgoing segment; every segment this connection sends passes here."""
        urgent = 0
        if self.snd_up is not None and seq_gt(self.snd_up, seq) and flags & ACK and not flags & RST:
            flags |= URG
            urgent = min(seq_diff(self.snd_up, seq), 0xFFFF)
        window = 0 if flags & RST else self._advertise(syn=bool(flags & SYN))
        ack = 0
        if flags & ACK:
            ack = self.rcv_nxt
            self.last_ack_sent = ack
            self._ack_now = self._ack_delayed = False  # any ACK-bearing segment pays what is owed
            self._delack_bytes = 0
            self._timers.pop(DELAYED_ACK, None)
        if options is None:
            options = self._segment_options(flags)
        self._out.append((Segment(self.local[1], self.remote[1], seq, ack, flags, window, payload, options, urgent),
                          note))
        st = self.stats
        st.segments_sent += 1
        st.bytes_sent += len(payload)
        if note == "retransmission":
            st.retransmissions += 1
            st.retransmitted_bytes += len(payload)

    def _segment_options(self, flags: int) -> Options:
        if flags & RST:
            return Options()
        ts = (self._tsval(), self.ts_recent) if self.ts_enabled else None
        sack = ()
        if self.sack_ok and flags & ACK:
            limit = 3 if ts else 4
            dsack = (self._dsack,) if self._dsack is not None else ()
            self._dsack = None  # a D-SACK is reported once (RFC 2883 §4)
            sack = dsack + (self._sack_blocks(limit - len(dsack)) if self._recvbuf.has_gaps else ())
        return Options(ts=ts, sack=sack) if ts or sack else Options()

    def _sack_blocks(self, limit: int) -> tuple:
        base, nxt = self._recvbuf.next_offset, self.rcv_nxt
        blocks = [(seq_add(nxt, s - base), seq_add(nxt, e - base)) for s, e in self._recvbuf.ranges()]
        last = self._last_ooo
        blocks.sort(key=lambda b: 0 if last is not None and seq_le(b[0], last) and seq_gt(b[1], last) else 1)
        return tuple(blocks[:limit])

    def _window_gain(self) -> tuple[int, int]:
        """(offered, gain): the window we offer now, and how far reads would let its edge move."""
        free = min(max(0, self._recvbuf.capacity - self._recvbuf.readable), 0xFFFF << self.rcv_wscale)
        offered = max(0, seq_diff(self._rcv_adv, self.rcv_nxt))
        return offered, free - offered

    def _advertise(self, syn: bool = False) -> int:
        """The window field to send. The right edge never moves left (RFC 9293 §3.8.6), and moves
        right only by at least min(buffer / 2, MSS): receiver silly-window avoidance (§3.8.6.2.2)."""
        offered, gain = self._window_gain()
        wnd = offered + gain if gain >= min(self._recvbuf.capacity // 2, self._rcv_mss) else offered
        if syn:
            field = min(wnd, 0xFFFF)
            self._rcv_adv = seq_add(self.rcv_nxt, field)
            return field
        shift = self.rcv_wscale
        field = min(wnd >> shift, 0xFFFF)
        if (field << shift) < offered and field < 0xFFFF:
            field += 1
        self._rcv_adv = seq_add(self.rcv_nxt, field << shift)
        return field

    def _maybe_window_update(self) -> None:
        """After a read: if the edge may move (the SWS rule), tell the peer. At once when the peer may
        be stalled on a small window; as a delayed ACK (which a reply can carry) when the window would
        at least double; not at all while the peer still has most of the window (as Linux)."""
        offered, gain = self._window_gain()
        if gain >= min(self._recvbuf.capacity // 2, self._rcv_mss):
            if offered < 2 * self._rcv_mss or not self.config.delayed_ack:
                self._ack_now = True
            elif gain >= offered:
                self._ack_delayed = True

    def _tsval(self) -> int:
        return (int(self._now * 1000) + self._ts_offset) & 0xFFFFFFFF

    # ----------------------------------------------------------- state change
    def _set_state(self, new: State, why: str = "") -> None:
        """The one place a state changes: checked against TRANSITIONS, traced."""
        old = self.state
        check_transition(old, new)
        self.state = new
        self._trace("state", **{"from": old.value, "to": new.value}, why=why)
        if new is S.TIME_WAIT:
            self._timers.clear()
            self._arm(TIME_WAIT_TIMER, 2 * self.config.msl)
            self._events.append(ev.TimeWait())
        elif new in (S.CLOSED, S.LISTEN):
            self._timers.clear()

    def _terminate(self, reason: str, why: str) -> None:
        self._timers.clear()
        if self.state is not S.CLOSED:
            self._set_state(S.CLOSED, why)
        self.close_reason = reason
        self._ack_now = self._ack_delayed = False
        self._events.append(ev.Closed(reason))

    def _choose_iss(self) -> None:
        la, lp = self.local
        ra, rp = self.remote
        iss = self._isn.iss(self._now, la, lp, ra, rp)
        if self._iss_floor is not None and seq_le(iss, self._iss_floor):
            iss = seq_add(self._iss_floor, 1 << 16)
        self.iss = iss
        self.snd_una = iss
        self.snd_nxt = seq_add(iss, 1)
        self._sendbuf.start_seq = self.snd_nxt
        self._ts_offset = self._rng.getrandbits(32)

    def _trace(self, type: str, **fields) -> None:
        if self._tracer.enabled:
            self._tracer.emit(self._now, self.host, type, conn=self.name, **fields)

    def _rtt_sample(self, r: float) -> None:
        self._rtt.sample(r)
        self._rtt_new = r
        if self._tracer.enabled:
            ChangeReporter.rtt_sample(self, r)

    def _drop(self, seg: Segment, reason: str) -> None:
        if self._tracer.enabled:
            self._trace("drop", reason=reason, flags=flags_text(seg.flags), seq=seg.seq, ack=seg.ack,
                        len=len(seg.payload), win=seg.window)

    def __repr__(self) -> str:
        return f"<Connection {self.name} {self.state}>"
