"""Errors raised to the local user for API misuse. Peer misbehaviour never raises."""


class TcpError(Exception):
    """Base class of tcpwave's local errors."""


class StateError(TcpError):
    """The call is not allowed in the connection's current state; the message names it."""

    def __init__(self, call: str, state, why: str):
        super().__init__(f"{call}() not allowed in state {state}: {why}")
        self.call = call
        self.state = state
