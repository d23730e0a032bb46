"""The eleven RFC 9293 states and the table of transitions a connection may take.

Every state change in tcpwave goes through Connection._set_state, which checks
this table: a transition missing here is a bug, and raises.
"""

import enum


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


S = State

# state -> {next state: what causes it}. The causes document the table (and the
# generated diagram); the code checks only the keys.
TRANSITIONS: dict[State, dict[State, str]] = {
    S.CLOSED: {S.LISTEN: "passive OPEN", S.SYN_SENT: "active OPEN / send SYN"},
    S.LISTEN: {S.SYN_RCVD: "rcv SYN / send SYN,ACK", S.CLOSED: "CLOSE"},
    S.SYN_SENT: {
        S.SYN_RCVD: "rcv SYN / send SYN,ACK (simultaneous open)",
        S.ESTABLISHED: "rcv SYN,ACK / send ACK",
        S.CLOSED: "CLOSE, RST, or SYN retransmissions exhausted",
    },
    S.SYN_RCVD: {
        S.ESTABLISHED: "rcv ACK of SYN",
        S.FIN_WAIT_1: "CLOSE / send FIN",
        S.LISTEN: "rcv RST (passive open)",
        S.CLOSED: "rcv RST (active open), ABORT, or SYN,ACK retransmissions exhausted",
    },
    S.ESTABLISHED: {
        S.FIN_WAIT_1: "CLOSE / send FIN",
        S.CLOSE_WAIT: "rcv FIN / send ACK",
        S.CLOSED: "RST, ABORT or timeout",
    },
    S.FIN_WAIT_1: {
        S.FIN_WAIT_2: "rcv ACK of FIN",
        S.CLOSING: "rcv FIN / send ACK (simultaneous close)",
        S.TIME_WAIT: "rcv FIN,ACK of FIN / send ACK",
        S.CLOSED: "RST, ABORT or timeout",
    },
    S.FIN_WAIT_2: {S.TIME_WAIT: "rcv FIN / send ACK", S.CLOSED: "RST, ABORT or timeout"},
    S.CLOSING: {S.TIME_WAIT: "rcv ACK of FIN", S.CLOSED: "RST, ABORT or timeout"},
    S.TIME_WAIT: {S.CLOSED: "2xMSL timeout (or RST, or reopened by a new SYN)"},
    S.CLOSE_WAIT: {S.LAST_ACK: "CLOSE / send FIN", S.CLOSED: "RST, ABORT or timeout"},
    S.LAST_ACK: {S.CLOSED: "rcv ACK of FIN, RST or timeout"},
}

SYNCHRONIZED = frozenset(
    {S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT}
)
# States in which arriving text is delivered to the user (RFC 9293 §3.10.7.4, seventh).
RECEIVING = frozenset({S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2})
# States in which the user may still SEND.
SENDING = frozenset({S.LISTEN, S.SYN_SENT, S.SYN_RCVD, S.ESTABLISHED, S.CLOSE_WAIT})


class TransitionError(Exception):  # not RuntimeError: compiled classes derive only from Exception
    """An internal bug: a transition the table does not allow."""


def check_transition(old: State, new: State) -> None:
    if new not in TRANSITIONS[old]:
        raise TransitionError(f"illegal TCP state transition {old} -> {new}")
