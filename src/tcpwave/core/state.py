"""The eleven RFC 9293 states and the table of transitions a connection may take.

Every state change in tcpwave goes through Connection._set_state, which checks
this table: a transition missing here is a bug, and raises.
"""

import enum
from typing import Final


class State(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RCVD = "SYN_RCVD"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSING = "CLOSING"
    TIME_WAIT = "TIME_WAIT"
    CLOSE_WAIT = "CLOSE_WAIT"
    LAST_ACK = "LAST_ACK"

    # Members are singletons: identity hashing is right and skips Enum's Python-level __hash__,
    # which every `state in SOME_SET` test on the per-segment path would otherwise call.
    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.value



# state -> {next state: what causes it}. The causes document the table (and the
# generated diagram); the code checks only the keys.
TRANSITIONS: Final[dict[State, dict[State, str]]] = {
    State.CLOSED: {State.LISTEN: "passive OPEN", State.SYN_SENT: "active OPEN / send SYN"},
    State.LISTEN: {State.SYN_RCVD: "rcv SYN / send SYN,ACK", State.CLOSED: "CLOSE"},
    State.SYN_SENT: {
        State.SYN_RCVD: "rcv SYN / send SYN,ACK (simultaneous open)",
        State.ESTABLISHED: "rcv SYN,ACK / send ACK",
        State.CLOSED: "CLOSE, RST, or SYN retransmissions exhausted",
    },
    State.SYN_RCVD: {
        State.ESTABLISHED: "rcv ACK of SYN",
        State.FIN_WAIT_1: "CLOSE / send FIN",
        State.LISTEN: "rcv RST (passive open)",
        State.CLOSED: "rcv RST (active open), ABORT, or SYN,ACK retransmissions exhausted",
    },
    State.ESTABLISHED: {
        State.FIN_WAIT_1: "CLOSE / send FIN",
        State.CLOSE_WAIT: "rcv FIN / send ACK",
        State.CLOSED: "RST, ABORT or timeout",
    },
    State.FIN_WAIT_1: {
        State.FIN_WAIT_2: "rcv ACK of FIN",
        State.CLOSING: "rcv FIN / send ACK (simultaneous close)",
        State.TIME_WAIT: "rcv FIN,ACK of FIN / send ACK",
        State.CLOSED: "RST, ABORT or timeout",
    },
    State.FIN_WAIT_2: {State.TIME_WAIT: "rcv FIN / send ACK", State.CLOSED: "RST, ABORT or timeout"},
    State.CLOSING: {State.TIME_WAIT: "rcv ACK of FIN", State.CLOSED: "RST, ABORT or timeout"},
    State.TIME_WAIT: {State.CLOSED: "2xMSL timeout (or RST, or reopened by a new SYN)"},
    State.CLOSE_WAIT: {State.LAST_ACK: "CLOSE / send FIN", State.CLOSED: "RST, ABORT or timeout"},
    State.LAST_ACK: {State.CLOSED: "rcv ACK of FIN, RST or timeout"},
}

SYNCHRONIZED: Final = frozenset(
    {State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK,
     State.TIME_WAIT}
)
# States in which arriving text is delivered to the user (RFC 9293 §3.10.7.4, seventh).
RECEIVING: Final = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
# States in which the user may still SEND.
SENDING: Final = frozenset({State.LISTEN, State.SYN_SENT, State.SYN_RCVD, State.ESTABLISHED, State.CLOSE_WAIT})


class TransitionError(Exception):  # not RuntimeError: compiled classes derive only from Exception
    """An internal bug: a transition the table does not allow."""


def check_transition(old: State, new: State) -> None:
    if new not in TRANSITIONS[old]:
        raise TransitionError(f"illegal TCP state transition {old} -> {new}")
