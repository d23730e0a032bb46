"""A connection's timers: named deadlines, each armed at most once, traced by this object itself.

The timers that cannot coexist share one slot, after Linux's `icsk_pending` and smoltcp's timer enum:
the retransmission timer, the persist (zero-window probe) timer, the tail loss probe, RACK's reorder
timer and TIME_WAIT's 2×MSL. Arming one of them replaces whichever held the slot, so "which of these
is armed" is never ambiguous. The others (delayed ACK, sender SWS override, keep-alive, user timeout,
orphan FIN_WAIT_2, pacing) each have their own deadline.

Every arm, cancel and fire goes through here and, while a tracer listens, becomes a `timer` event
(`action`: arm with `at` and `delay`, cancel, fire).
"""

from typing import Final

from .trace import Tracer

RETRANSMIT: Final = "retransmit"
PERSIST: Final = "persist"  # zero-window probes
TLP: Final = "tlp"  # tail loss probe (RFC 8985 §7)
REORDER: Final = "rack_reorder"  # RACK's reordering window (RFC 8985 §6.2 step 5)
TIME_WAIT_TIMER: Final = "time_wait"  # 2 x MSL
DELAYED_ACK: Final = "delayed_ack"
SWS_OVERRIDE: Final = "sws_override"  # sender silly-window avoidance
KEEPALIVE: Final = "keepalive"
USER_TIMEOUT: Final = "user_timeout"
PACING: Final = "pacing"  # the next paced segment's release time
FIN_WAIT_2_TIMER: Final = "fin_wait_2"  # an orphan FIN_WAIT_2 (the application closed) is not kept forever

EXCLUSIVE: Final = frozenset({RETRANSMIT, PERSIST, TLP, REORDER, TIME_WAIT_TIMER})
"""The timers that share one slot: arming one cancels the others."""

NAMES: Final = (RETRANSMIT, PERSIST, TLP, REORDER, TIME_WAIT_TIMER, DELAYED_ACK, SWS_OVERRIDE, KEEPALIVE,
         USER_TIMEOUT, PACING, FIN_WAIT_2_TIMER)


class Timers:
    __slots__ = ("at", "_slot", "_tracer", "_host", "_owner")

    def __init__(self, tracer: Tracer, host: str = "tcp", owner: object = None) -> None:
        self.at: dict[str, float] = {}  # name -> deadline; read it freely, change it only through methods
        self._slot: str | None = None  # which EXCLUSIVE timer holds the shared slot
        self._tracer = tracer
        self._host = host
        self._owner = owner  # its `name` labels the trace events (looked up only when tracing)

    def arm(self, name: str, now: float, delay: float) -> None:
        """Set `name` to fire at now + delay (replacing its deadline, and any other slot timer)."""
        at = now + delay
        timers = self.at
        if name in EXCLUSIVE:
            held = self._slot
            if held is not None and held != name:
                del timers[held]
                if self._tracer.enabled:
                    self._emit(now, held, "cancel")
            self._slot = name
        timers[name] = at
        if self._tracer.enabled:
            self._emit(now, name, "arm", at=round(at, 9), delay=round(delay, 9))

    def restore(self, name: str, at: float) -> None:
        """Set `name`'s deadline without tracing: a connection rebuilt with a timer it already had."""
        if name in EXCLUSIVE:
            assert self._slot is None
            self._slot = name
        self.at[name] = at

    def arm_once(self, name: str, now: float, delay: float) -> None:
        """Arm `name` unless it is armed already."""
        if name not in self.at:
            self.arm(name, now, delay)

    def cancel(self, name: str, now: float) -> None:
        if self.at.pop(name, None) is not None:
            if self._slot == name:
                self._slot = None
            if self._tracer.enabled:
                self._emit(now, name, "cancel")

    def clear(self, now: float) -> None:
        for name in list(self.at):
            self.cancel(name, now)

    def __contains__(self, name: str) -> bool:
        return name in self.at  # (hot paths test `name in timers.at` and save the call)

    def get(self, name: str) -> float | None:
        return self.at.get(name)

    def armed(self) -> dict[str, float]:
        """Every armed timer with its deadline (a copy)."""
        return dict(self.at)

    @property
    def slot(self) -> str | None:
        """Which of the exclusive timers (retransmit, persist, tlp, rack_reorder, time_wait) is armed."""
        return self._slot

    def next(self) -> float | None:
        at = self.at
        return min(at.values()) if at else None

    def due(self, now: float) -> list[str]:
        return [name for name, t in self.at.items() if t <= now]

    def take(self, name: str, now: float) -> bool:
        """If `name` is due, disarm it, trace the firing and return True."""
        t = self.at.get(name)
        if t is None or t > now:
            return False
        del self.at[name]
        if self._slot == name:
            self._slot = None
        if self._tracer.enabled:
            self._emit(now, name, "fire")
        return True

    def give_up(self, name: str, now: float, **fields) -> None:
        """Trace that the timer's purpose ended in failure (retries exhausted, probes unanswered)."""
        if self._tracer.enabled:
            self._emit(now, name, "give_up", **fields)

    def _emit(self, now: float, name: str, action: str, **fields) -> None:
        conn = getattr(self._owner, "name", "") if self._owner is not None else ""
        self._tracer.emit(now, self._host, "timer", conn=conn, name=name, action=action, **fields)
