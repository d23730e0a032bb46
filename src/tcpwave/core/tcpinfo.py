"""struct tcp_info for a script: the fields packetdrill's `%{ }%` blocks and getsockopt(TCP_INFO) see.

Values follow Linux's units: times in microseconds, windows and counts in segments, `tcpi_state` with
Linux's numbers. A state compares equal to its Linux constant (TCP_ESTABLISHED, ...) and to its FreeBSD
one (TCPI_ESTABLISHED / TCPS_ESTABLISHED, ...), whose numbers differ, so scripts written for either
stack read naturally.
"""

from .ca_state import CA_STATE_NUMBER
from .state import State

# Linux's include/net/tcp_states.h numbering, and FreeBSD's netinet/tcp_fsm.h
_LINUX = {State.ESTABLISHED: 1, State.SYN_SENT: 2, State.SYN_RCVD: 3, State.FIN_WAIT_1: 4, State.FIN_WAIT_2: 5,
          State.TIME_WAIT: 6, State.CLOSED: 7, State.CLOSE_WAIT: 8, State.LAST_ACK: 9, State.LISTEN: 10,
          State.CLOSING: 11}
_LINUX_NAMES = {State.ESTABLISHED: "ESTABLISHED", State.SYN_SENT: "SYN_SENT", State.SYN_RCVD: "SYN_RECV",
                State.FIN_WAIT_1: "FIN_WAIT1", State.FIN_WAIT_2: "FIN_WAIT2", State.TIME_WAIT: "TIME_WAIT",
                State.CLOSED: "CLOSE", State.CLOSE_WAIT: "CLOSE_WAIT", State.LAST_ACK: "LAST_ACK",
                State.LISTEN: "LISTEN", State.CLOSING: "CLOSING"}
_FREEBSD = {State.CLOSED: 0, State.LISTEN: 1, State.SYN_SENT: 2, State.SYN_RCVD: 3, State.ESTABLISHED: 4,
            State.CLOSE_WAIT: 5, State.FIN_WAIT_1: 6, State.CLOSING: 7, State.LAST_ACK: 8, State.FIN_WAIT_2: 9,
            State.TIME_WAIT: 10}
_FREEBSD_NAMES = {State.SYN_RCVD: "SYN_RECEIVED"}
TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE = 1, 2, 4
TCP_INFINITE_SSTHRESH = 0x7FFFFFFF


class TcpState(int):
    """A state number that also equals the other stack's constant for the same state."""

    state: State

    def __new__(cls, state: State, number: int) -> "TcpState":
        obj = super().__new__(cls, number)
        obj.state = state
        return obj

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TcpState):
            return self.state is other.state
        return int(self) == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = int.__hash__


def linux_state(number: int) -> State:
    """The State for a Linux tcpi_state number (NEW_SYN_RECV, 12, is SYN_RCVD)."""
    for state, n in _LINUX.items():
        if n == number:
            return state
    return State.SYN_RCVD


def constants() -> dict[str, object]:
    """The names a `%{ }%` block may use: TCP_ESTABLISHED, TCPI_ESTABLISHED, TCPS_ESTABLISHED, TCP_CA_*,
    TCPI_OPT_*, TCP_INFINITE_SSTHRESH."""
    names: dict[str, object] = {}
    for state, number in _LINUX.items():
        names["TCP_" + _LINUX_NAMES[state]] = TcpState(state, number)
    names["TCP_SYN_RCVD"] = names["TCP_SYN_RECV"]
    names["TCP_CLOSED"] = names["TCP_CLOSE"]
    for state, number in _FREEBSD.items():
        for prefix in ("TCPI_", "TCPS_"):
            names[prefix + _FREEBSD_NAMES.get(state, state.name)] = TcpState(state, number)
    for ca_state, ca_number in CA_STATE_NUMBER.items():
        names["TCP_CA_" + ca_state.value.capitalize()] = ca_number
    names.update(TCPI_OPT_TIMESTAMPS=TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK=TCPI_OPT_SACK,
                 TCPI_OPT_WSCALE=TCPI_OPT_WSCALE, TCPI_OPT_ECN=8, TCPI_OPT_ECN_SEEN=16, TCPI_OPT_SYN_DATA=32,
                 TCP_INFINITE_SSTHRESH=TCP_INFINITE_SSTHRESH)
    return names


def _us(seconds: float | None) -> int:
    return round((seconds or 0.0) * 1_000_000)


def tcp_info(conn, now: float) -> dict[str, int]:
    """The tcp_info of a Connection (a listener's TCB included) at `now`."""
    state = conn.state
    info: dict[str, int] = {"tcpi_state": TcpState(state, _LINUX[state])}
    if state is State.LISTEN:
        info.update(tcpi_ca_state=0, tcpi_options=0, tcpi_snd_mss=conn.our_mss, tcpi_rcv_mss=0)
        return {**_zeros(), **info}
    rtt, cc, rec, snd, st = conn.rtt, conn.cc, conn.recovery, conn.snd, conn.stats
    mss = max(1, conn.snd_mss)
    records = list(rec.q)
    options = (TCPI_OPT_TIMESTAMPS if conn.ts_enabled else 0) | (TCPI_OPT_SACK if conn.sack_ok else 0)
    wscale = conn.peer_offered_wscale and conn.config.window_scaling
    if wscale:
        options |= TCPI_OPT_WSCALE
    ssthresh = cc.ssthresh
    info.update({
        "tcpi_ca_state": CA_STATE_NUMBER[rec.ca_state],
        "tcpi_retransmits": conn.retries,
        "tcpi_probes": snd.probes_out + conn.keepalive_probes,
        "tcpi_backoff": rtt.backoffs,
        "tcpi_options": options,
        "tcpi_snd_wscale": snd.wscale if wscale else 0,
        "tcpi_rcv_wscale": conn.rcv.wscale if wscale else 0,
        "tcpi_rto": _us(rtt.rto),
        "tcpi_ato": 40_000,
        "tcpi_snd_mss": mss,
        "tcpi_rcv_mss": conn.rcv.mss,
        "tcpi_unacked": len(records),
        "tcpi_sacked": sum(1 for r in records if r.sacked),
        "tcpi_lost": sum(1 for r in records if r.lost),
        "tcpi_retrans": sum(1 for r in records if r.retrans),
        "tcpi_fackets": 0,
        "tcpi_pmtu": mss + 40,
        "tcpi_rcv_ssthresh": conn.rcv.window,
        "tcpi_rtt": _us(rtt.srtt),
        "tcpi_rttvar": _us(rtt.rttvar if rtt.srtt is not None else None),
        "tcpi_snd_ssthresh": TCP_INFINITE_SSTHRESH if ssthresh >= 1 << 30 else ssthresh // mss,
        "tcpi_snd_cwnd": max(1, cc.cwnd // mss),
        "tcpi_advmss": conn.our_mss,
        "tcpi_reordering": 3,
        "tcpi_rcv_space": conn.rcv.window,
        "tcpi_total_retrans": st.retransmissions,
        "tcpi_pacing_rate": 0,
        "tcpi_bytes_acked": st.bytes_acked,
        "tcpi_bytes_received": conn.rcv.bytes_received,
        "tcpi_bytes_sent": st.bytes_sent,
        "tcpi_bytes_retrans": st.retransmitted_bytes,
        "tcpi_segs_out": st.segments_sent,
        "tcpi_segs_in": st.segments_received,
        "tcpi_notsent_bytes": snd.unsent,
        "tcpi_delivery_rate": round(rec.delivery_rate),
        "tcpi_busy_time": _us(st.busy_time + (now - st.busy_since if st.busy_since is not None else 0.0)),
        "tcpi_last_data_sent": _us(now - snd.last_send) // 1000,
        "tcpi_last_data_recv": _us(now - conn.last_recv) // 1000,
        "tcpi_last_ack_recv": _us(now - conn.last_recv) // 1000,
    })
    return {**_zeros(), **info}


def unconnected_tcp_info(initial_cwnd: int, rto_initial: float) -> dict[str, int]:
    """The tcp_info of a socket with no connection yet: CLOSED, and the values Linux gives a new socket
    (a 536-byte MSS, the initial window and RTO, no slow-start threshold; api-tcp-info-before-connect.pkt)."""
    return {**_zeros(), "tcpi_state": TcpState(State.CLOSED, _LINUX[State.CLOSED]), "tcpi_snd_mss": 536,
            "tcpi_snd_cwnd": initial_cwnd, "tcpi_rto": _us(rto_initial), "tcpi_snd_ssthresh": TCP_INFINITE_SSTHRESH,
            "tcpi_reordering": 3}


_ZERO_FIELDS = ("tcpi_ca_state", "tcpi_retransmits", "tcpi_probes", "tcpi_backoff", "tcpi_options",
                "tcpi_snd_wscale", "tcpi_rcv_wscale", "tcpi_rto", "tcpi_ato", "tcpi_snd_mss", "tcpi_rcv_mss",
                "tcpi_unacked", "tcpi_sacked", "tcpi_lost", "tcpi_retrans", "tcpi_fackets", "tcpi_pmtu",
                "tcpi_rcv_ssthresh", "tcpi_rtt", "tcpi_rttvar", "tcpi_snd_ssthresh", "tcpi_snd_cwnd",
                "tcpi_advmss", "tcpi_reordering", "tcpi_rcv_space", "tcpi_total_retrans", "tcpi_pacing_rate",
                "tcpi_bytes_acked", "tcpi_bytes_received", "tcpi_bytes_sent", "tcpi_bytes_retrans",
                "tcpi_segs_out", "tcpi_segs_in", "tcpi_notsent_bytes", "tcpi_delivery_rate", "tcpi_busy_time",
                "tcpi_last_data_sent", "tcpi_last_data_recv", "tcpi_last_ack_recv")


def _zeros() -> dict[str, int]:
    return dict.fromkeys(_ZERO_FIELDS, 0)
