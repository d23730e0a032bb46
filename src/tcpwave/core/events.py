"""What a connection tells its application. Drained with Connection.events()."""

from dataclasses import dataclass
from typing import Final

from .reasons import CloseReason


@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake completed (ESTABLISHED reached)."""


@dataclass(frozen=True, slots=True)
class DataReadable:
    """In-order data is waiting; `available` bytes can be read with receive()."""

    available: int

    def __init__(self, available: int) -> None:  # (compiled by mypyc; @dataclass's runs as Python)
        object.__setattr__(self, "available", available)


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The peer sent FIN and every byte before it has been made readable."""


@dataclass(frozen=True, slots=True)
class SendSpace:
    """Send-buffer space returned; `available` bytes can now be accepted by send()."""

    available: int

    def __init__(self, available: int) -> None:  # (compiled by mypyc; @dataclass's runs as Python)
        object.__setattr__(self, "available", available)


@dataclass(frozen=True, slots=True)
class TimeWait:
    """Both directions are finished and acknowledged: for the application the connection is over.
    The 4-tuple lingers in TIME_WAIT for 2 x MSL; Closed(normal) follows when it expires. If the
    application no longer holds the Connection, the stack keeps only a compact record (after Linux, which keeps
    a timewait sock), and Closed comes with that record in place of the connection."""


@dataclass(frozen=True, slots=True)
class Urgent:
    """The peer's urgent pointer appeared or advanced (RFC 9293 §3.8.5, MUST-32): `pending` bytes
    of the stream, counted from what the application reads next, are urgent data."""

    pending: int

    def __init__(self, pending: int) -> None:  # (compiled by mypyc; @dataclass's runs as Python)
        object.__setattr__(self, "pending", pending)


# Reasons carried by Closed (str enums: they compare equal to "normal", "reset", ...).
NORMAL: Final = CloseReason.NORMAL
RESET: Final = CloseReason.RESET
REFUSED: Final = CloseReason.REFUSED
TIMED_OUT: Final = CloseReason.TIMED_OUT
ABORTED: Final = CloseReason.ABORTED  # this side called abort() (or closed with unread data)


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection reached CLOSED. `reason` is one of normal, reset, refused, timed_out, aborted."""

    reason: CloseReason

    def __init__(self, reason: CloseReason) -> None:  # (compiled by mypyc; @dataclass's runs as Python)
        object.__setattr__(self, "reason", reason)


Event = Connected | DataReadable | EndOfStream | SendSpace | Urgent | TimeWait | Closed
