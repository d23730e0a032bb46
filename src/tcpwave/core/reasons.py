"""Why a connection ended and why a segment was dropped: two enums, one table each.

Both are `str` enums, so the values are what the trace and `Closed.reason` have always carried
("reset", "paws", ...) and compare equal to those strings.
"""

import enum
import errno as _errno
import os
from typing import Final


class CloseReason(enum.StrEnum):
    """How a connection reached CLOSED, with the errno and the exception a socket would report
    (`errno`, `error`: None when the call reports no error; the table is _ERRORS below)."""

    NORMAL = "normal"
    RESET = "reset"
    REFUSED = "refused"
    TIMED_OUT = "timed_out"
    ABORTED = "aborted"  # this side called abort() (or closed with unread data)
    OUT_OF_MEMORY = "out_of_memory"  # reset by the memory budget
    # ICMP errors (RFC 1122 §4.2.3.9): at once in SYN_SENT, else only when the connection times out
    NET_UNREACHABLE = "net_unreachable"
    HOST_UNREACHABLE = "host_unreachable"
    HOST_DOWN = "host_down"
    NO_NETWORK = "no_network"
    PROTOCOL_UNREACHABLE = "protocol_unreachable"
    ROUTE_FAILED = "source_route_failed"
    PROHIBITED = "prohibited"
    PROTOCOL_ERROR = "protocol_error"

    @property
    def errno(self) -> int | None:
        found = _ERRORS.get(self.value)
        return found[0] if found else None

    @property
    def error(self) -> type[OSError] | None:
        found = _ERRORS.get(self.value)
        return found[1] if found else None

    @classmethod
    def for_errno(cls, code: int) -> "CloseReason":
        """The reason that reports `code` (from an ICMP error); TIMED_OUT for anything else."""
        for reason in cls:
            if reason.errno == code:
                return reason
        return cls.TIMED_OUT

    def exception(self, call: str) -> OSError | None:
        """The OS-style error a call on a connection ended this way raises (None: no error)."""
        if self.error is None:
            return None
        text = {
            CloseReason.RESET: "connection reset by peer",
            CloseReason.REFUSED: "connection refused by peer",
            CloseReason.TIMED_OUT: "connection timed out",
            CloseReason.OUT_OF_MEMORY: "connection reset: the stack is out of memory",
        }.get(self) or f"{os.strerror(self.errno or 0)} (ICMP)".lower()
        return self.error(self.errno, f"{call}(): {text}")

# The errno and exception of each reason a socket call reports as an error. A table, not members
# carrying extra values: an enum with a custom __new__ cannot be compiled (mypyc).
_ERRORS: Final[dict[str, tuple[int, type[OSError]]]] = {
    "reset": (_errno.ECONNRESET, ConnectionResetError),
    "refused": (_errno.ECONNREFUSED, ConnectionRefusedError),
    "timed_out": (_errno.ETIMEDOUT, TimeoutError),
    "out_of_memory": (_errno.ECONNABORTED, ConnectionAbortedError),
    "net_unreachable": (_errno.ENETUNREACH, OSError),
    "host_unreachable": (_errno.EHOSTUNREACH, OSError),
    "host_down": (_errno.EHOSTDOWN, OSError),
    "no_network": (_errno.ENONET, OSError),
    "protocol_unreachable": (_errno.ENOPROTOOPT, OSError),
    "source_route_failed": (_errno.EOPNOTSUPP, OSError),
    "prohibited": (_errno.EACCES, PermissionError),
    "protocol_error": (_errno.EPROTO, OSError),
}


class DropReason(enum.StrEnum):
    """Why an arriving packet or segment was not used. Each is traced as a `drop` event's reason."""

    # the wire (raised by the parsers as MalformedPacket)
    TRUNCATED = "truncated"
    BAD_CHECKSUM = "bad_checksum"
    BAD_IP_CHECKSUM = "bad_ip_checksum"
    BAD_IP_LENGTH = "bad_ip_length"
    BAD_IP_VERSION = "bad_ip_version"
    BAD_DATA_OFFSET = "bad_data_offset"
    BAD_OPTION = "bad_option"
    IP_FRAGMENT = "ip_fragment"
    # the stack
    NOT_OUR_ADDRESS = "not_our_address"
    MARTIAN_SOURCE = "martian_source"  # from an address no sender has (wire/martians.py): no reply, no state
    UNKNOWN_PROTOCOL = "unknown_protocol"
    NO_SOCKET = "no_socket"
    BACKLOG_FULL = "backlog_full"  # the accept queue is full: a new SYN is dropped
    SYN_QUEUE_FULL = "syn_queue_full"  # half-open connections at max_syn_backlog and no SYN cookies
    ACCEPT_QUEUE_FULL = "accept_queue_full"  # a handshake's final ACK, with no room to queue it
    MEMORY_LIMIT = "memory_limit"  # the stack's memory budget is at its limit (core/memory.py)
    MAX_CONNECTIONS = "max_connections"  # a SYN with Config.max_connections connections open
    INTERNAL_ERROR = "internal_error"  # processing raised (a bug): that packet is dropped, the batch goes on
    # LISTEN and SYN_SENT
    RST_IN_LISTEN = "rst_in_listen"
    ACK_IN_LISTEN = "ack_in_listen"
    NO_SYN_IN_LISTEN = "no_syn_in_listen"
    SYN_FIN = "syn_fin"  # SYN and FIN together to a listener, dropped (drop_synfin)
    UNACCEPTABLE_ACK = "unacceptable_ack"
    RST_WITHOUT_ACK = "rst_without_ack"
    NO_SYN_OR_RST = "no_syn_or_rst"
    # synchronized states (RFC 9293 §3.10.7.4, RFC 5961, RFC 7323)
    PAWS = "paws"
    OUT_OF_WINDOW = "out_of_window"
    RST_OUT_OF_WINDOW = "rst_out_of_window"
    RST_NOT_EXACT = "rst_not_exact_challenge_ack"
    RST_IN_TIME_WAIT = "rst_in_time_wait_rfc1337"
    # ignored, no challenge ACK (as Linux: rst-rfc5961-time-wait.pkt)
    RST_NOT_EXACT_IN_TIME_WAIT = "rst_not_exact_in_time_wait"
    SYN_CHALLENGE = "syn_challenge_ack"
    NO_ACK = "no_ack"
    ACK_ABOVE_SND_NXT = "ack_above_snd_nxt"
    ACK_BELOW_WINDOW = "ack_below_window"
    # ICMP errors (RFC 5927: only one quoting a sequence number we have in flight is believed)
    ICMP_NO_CONNECTION = "icmp_no_connection"
    ICMP_OUT_OF_WINDOW = "icmp_out_of_window"  # in TIME_WAIT: re-ACKed and 2xMSL restarted


class Handled(enum.StrEnum):
    """A segment that asked for nothing new but was acted on: traced as a `handled` event (not a
    drop), with what was done."""

    RETRANSMITTED_FIN = "retransmitted_fin"  # TIME_WAIT: our last ACK was lost
    DUPLICATE_SYN = "duplicate_syn"  # SYN_RCVD: our SYN,ACK was lost
    ACK_IN_TIME_WAIT = "ack_in_time_wait"  # a bare ACK at RCV.NXT
    # data or an old duplicate (as Linux: time-wait-unacceptable-data.pkt)
    SEGMENT_IN_TIME_WAIT = "segment_in_time_wait"

    @property
    def done(self) -> str:
        return _DONE[self.value]


# What was done for each Handled segment (a table, as _ERRORS above)
_DONE: Final = {
    "retransmitted_fin": "re-ACKed, 2×MSL restarted",
    "duplicate_syn": "SYN,ACK sent again",
    "ack_in_time_wait": "2×MSL restarted",
    "segment_in_time_wait": "ACKed, 2×MSL restarted",
}
