"""Errors raised to the local user for API misuse. Peer misbehaviour never raises.

Left Python in the compiled build (setup.py): the stack's errors are OSErrors too, and a compiled
exception class cannot combine with OSError's layout."""

import errno

from .reasons import CloseReason


class TcpError(Exception):
    """Base class of tcpwave's local errors."""


class StateError(TcpError):
    """The call is not allowed in the connection's current state; the message names it."""

    def __init__(self, call: str, state, why: str):
        super().__init__(f"{call}() not allowed in state {state}: {why}")
        self.call = call
        self.state = state


class PortInUse(TcpError, OSError):
    """The port (or 4-tuple) is taken: an OSError with errno EADDRINUSE, as bind() raises."""

    def __init__(self, *args):
        super().__init__(*((errno.EADDRINUSE, *args) if len(args) == 1 else args))


class Unreachable(TcpError, OSError):
    """A destination no connection can have (broadcast, multicast, reserved), as ENETUNREACH."""

    def __init__(self, message: str):
        super().__init__(errno.ENETUNREACH, message)

    def __str__(self) -> str:
        return self.strerror or ""


def closed_error(call: str, state, reason: CloseReason | None) -> Exception:
    """The error a call on a closed connection raises: the OS-style one when the peer or the
    network ended it (as a socket would), a StateError otherwise."""
    error = reason.exception(call) if reason is not None else None
    if error is not None:
        return error
    why = "the connection does not exist" if reason is None else f"the connection is closed ({reason})"
    return StateError(call, state, why)
