"""Errors raised to the local user for API misuse. Peer misbehaviour never raises."""

from .reasons import CloseReason


class TcpError(Exception):
    """Base class of tcpwave's local errors."""


class StateError(TcpError):
    """The call is not allowed in the connection's current state; the message names it."""

    def __init__(self, call: str, state, why: str):
        super().__init__(f"{call}() not allowed in state {state}: {why}")
        self.call = call
        self.state = state


def closed_error(call: str, state, reason: CloseReason | None) -> Exception:
    """The error a call on a closed connection raises: the OS-style one when the peer or the
    network ended it (as a socket would), a StateError otherwise."""
    error = reason.exception(call) if reason is not None else None
    if error is not None:
        return error
    why = "the connection does not exist" if reason is None else f"the connection is closed ({reason})"
    return StateError(call, state, why)
