"""A connection in TIME_WAIT, kept as a compact record (after Linux's timewait sock, not the socket).

In TIME_WAIT both directions are finished: no data will be sent or read again. What the 2 x MSL wait
still needs is the 4-tuple, the sequence numbers to recognise and re-ACK a retransmitted FIN, the
timestamp state for PAWS and for reopening (RFC 6191), and the deadline. A Stack swaps a connection
for this record when it enters TIME_WAIT and lets the full Connection go, unless the application
still holds it (the record keeps only a weak reference: `Connection.weak`).

The rare segment that arrives for a record is processed by a full Connection again: the
application's own, if it is still alive, or one rebuilt from the record (`thaw`), so TIME_WAIT
behaves in exactly one way, the way arrival.py says. A record whose application let go expires
without being rebuilt, unless a tracer wants the TIME_WAIT -> CLOSED step. Either way the stack
reports Closed when TIME_WAIT ends: with the application's connection, or with the record.
"""

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .config import Config
from .state import State
from .timers import TIME_WAIT_TIMER

# snd_nxt, rcv_nxt, ts_recent, ts_offset, last_ack_sent, rcv_wnd, max_snd_wnd, snd_mss,
# snd_wscale, rcv_wscale, flags; then ts_recent_at and the last out-of-window ACK (NaN: none)
if TYPE_CHECKING:
    from .connection import Connection

_PACK: Final = struct.Struct("=IIIIIIIHBBBdd")
_TS: Final = 1
_SACK: Final = 2
_PASSIVE: Final = 4


class TimeWait:
    """One TIME_WAIT 4-tuple. `deadline` is None once the record has left the table; `queued` is the
    deadline a Stack's timer heap holds it by (a restarted 2 x MSL only moves `deadline`, later)."""

    __slots__ = ("key", "config", "deadline", "queued", "ref", "packed")

    def __init__(self, key: tuple, conn: "Connection", deadline: float) -> None:
        self.key = key  # (local address, local port, remote address, remote port): the table's key
        self.config: Config = conn.config
        self.deadline: float | None = deadline
        self.queued = deadline
        self.ref: Callable[[], Connection | None] | None = None
        self.packed = b""
        self.update(conn, deadline)

    def update(self, conn: "Connection", deadline: float) -> None:
        """Take the connection's TIME_WAIT state (after it was created or processed a segment)."""
        snd, rcv = conn.snd, conn.rcv
        flags = (_TS if conn.ts_enabled else 0) | (_SACK if conn.sack_ok else 0) | (_PASSIVE if conn.passive else 0)
        oow = conn._last_oow_ack
        self.packed = _PACK.pack(snd.nxt, rcv.nxt, rcv.ts_recent, conn._ts_offset & 0xFFFFFFFF, rcv.last_ack_sent,
                                 rcv.window, min(snd.max_wnd, 0xFFFFFFFF), snd.mss, snd.wscale, rcv.wscale, flags,
                                 rcv.ts_recent_at, float("nan") if oow is None else oow)
        self.deadline = deadline
        self.ref = conn.weak()

    def __hash__(self) -> int:  # by identity, as Python gives any class; a compiled class that defines
        return object.__hash__(self)  # __lt__ has no hash unless it says so (the runtime maps records)

    def __lt__(self, other: "TimeWait") -> bool:  # (the timer heap's order)
        return self.queued < other.queued

    def alive(self) -> "Connection | None":
        """The full Connection behind this record, if something (the application) still holds it."""
        return self.ref() if self.ref is not None else None

    @property
    def state(self) -> State:
        return State.TIME_WAIT if self.deadline is not None else State.CLOSED

    @property
    def local(self) -> tuple:
        return self.key[0], self.key[1]

    @property
    def remote(self) -> tuple:
        return self.key[2], self.key[3]

    def fields(self) -> dict:
        """The sequence and timestamp state, by RFC name (for `ss` and tests)."""
        (snd_nxt, rcv_nxt, ts_recent, _, _, rcv_wnd, _, mss, _, _, _, _, _) = _PACK.unpack(self.packed)
        return {"snd_una": snd_nxt, "snd_nxt": snd_nxt, "rcv_nxt": rcv_nxt, "rcv_wnd": rcv_wnd,
                "ts_recent": ts_recent, "mss": mss}

    def thaw(self, make: Callable[[Config, tuple, tuple], "Connection"], now: float) -> "Connection":
        """A full Connection in TIME_WAIT with this record's state, built by `make(config, local,
        remote)` (a Stack's connection factory), for one segment or one timer."""
        (snd_nxt, rcv_nxt, ts_recent, ts_offset, last_ack_sent, rcv_wnd, max_wnd, mss, snd_ws, rcv_ws, flags,
         ts_recent_at, oow) = _PACK.unpack(self.packed)
        conn = make(self.config, self.local, self.remote)
        conn.state = State.TIME_WAIT  # not a transition: the same connection, rebuilt
        conn._now = now
        conn.passive = bool(flags & _PASSIVE)
        conn.ts_enabled = bool(flags & _TS)
        conn.sack_ok = bool(flags & _SACK)
        conn._ts_offset = ts_offset
        conn._last_oow_ack = None if oow != oow else oow  # (NaN: never)
        snd = conn.snd
        snd.iss = snd.una = snd.nxt = snd.wl2 = snd_nxt
        snd.fin_seq = (snd_nxt - 1) & 0xFFFFFFFF  # our FIN, sent and acknowledged
        snd.wnd = snd.max_wnd = max_wnd
        snd.wscale, snd.mss = snd_ws, mss
        rcv = conn.rcv
        rcv.nxt = rcv.up = snd.wl1 = rcv_nxt
        rcv.adv = (rcv_nxt + rcv_wnd) & 0xFFFFFFFF
        rcv.wscale = rcv_ws
        rcv.ts_recent, rcv.ts_recent_at = ts_recent, ts_recent_at
        rcv.last_ack_sent = last_ack_sent
        rcv.closed = True  # nobody reads a connection the application let go
        conn.keepalive = False
        conn.table_key = self.key
        rep = conn._reported  # nothing new to report: the trace had these numbers before
        rep.cwnd, rep.ssthresh, rep.snd_wnd, rep.rcv_wnd = conn.cc.cwnd, conn.cc.ssthresh, snd.wnd, rcv.window
        assert self.deadline is not None
        conn.timers.restore(TIME_WAIT_TIMER, self.deadline)
        conn.from_record = self  # (its events are the record's: the application never held it)
        self.ref = conn.weak()
        return conn
