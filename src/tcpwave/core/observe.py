"""What a connection reports beyond segments and states, for event logs and plots: timers armed and
cancelled, congestion-window and window changes, RTT samples.

Only runs when a tracer is listening. `note_changes` compares the connection's numbers with what was
last reported and emits one event per change; the connection calls it after each segment, timer and
user call, so a plot of cwnd or of the windows has one point per step that moved them.
"""

from ..seq import seq_diff


def offered_window(conn) -> int:
    """The receive window we last advertised, from RCV.NXT (RCV.WND as the peer sees it)."""
    return max(0, seq_diff(conn._rcv_adv, conn.rcv_nxt))


def flight_size(conn) -> int:
    return seq_diff(conn.snd_nxt, conn.snd_una)


class ChangeReporter:
    __slots__ = ("timers", "cwnd", "ssthresh", "snd_wnd", "rcv_wnd")

    def __init__(self):
        self.timers: dict[str, float] = {}
        self.cwnd = self.ssthresh = self.snd_wnd = self.rcv_wnd = None

    def fired(self, name: str) -> None:
        """A timer fired: it is gone without being cancelled."""
        self.timers.pop(name, None)

    def note_changes(self, conn) -> None:
        trace, now = conn._trace, conn._now
        armed = conn._timers
        if armed != self.timers:
            for name, at in armed.items():
                if self.timers.get(name) != at:
                    trace("timer", name=name, action="arm", at=round(at, 9), delay=round(at - now, 9))
            for name in self.timers.keys() - armed.keys():
                trace("timer", name=name, action="cancel")
            self.timers = dict(armed)
        cc = conn.cc
        if cc.cwnd != self.cwnd or cc.ssthresh != self.ssthresh:
            self.cwnd, self.ssthresh = cc.cwnd, cc.ssthresh
            trace("cc", cwnd=cc.cwnd, ssthresh=cc.ssthresh, flight=flight_size(conn))
        rcv_wnd = offered_window(conn)
        if conn.snd_wnd != self.snd_wnd or rcv_wnd != self.rcv_wnd:
            self.snd_wnd, self.rcv_wnd = conn.snd_wnd, rcv_wnd
            trace("window", snd_wnd=conn.snd_wnd, rcv_wnd=rcv_wnd)

    @staticmethod
    def rtt_sample(conn, sample: float) -> None:
        rtt = conn._rtt
        conn._trace("rtt", sample=round(sample, 9), srtt=round(rtt.srtt, 9), rttvar=round(rtt.rttvar, 9),
                    rto=round(rtt.rto, 9))


def snapshot(conn, now: float) -> dict:
    """What `tcpwave ss` shows for one connection: state, queues, the RFC 9293 variables, cwnd,
    RTT estimates and the armed timers with the time left (like Linux's TCP_INFO and ss -tinoe)."""
    rtt = conn._rtt
    info = {
        "state": conn.state.value,
        "local": _endpoint(conn.local),
        "remote": _endpoint(conn.remote) if conn.remote else "*:*",
        "recv_q": conn.readable,  # received, not yet read by the application
        "send_q": len(conn._sendbuf),  # written, not yet acknowledged
        "snd_una": conn.snd_una, "snd_nxt": conn.snd_nxt, "snd_wnd": conn.snd_wnd,
        "rcv_nxt": conn.rcv_nxt, "rcv_wnd": offered_window(conn),
        "cwnd": conn.cc.cwnd, "ssthresh": conn.cc.ssthresh if conn.cc.ssthresh < 1 << 30 else None,
        "mss": conn.snd_mss,
        "srtt": rtt.srtt, "rttvar": rtt.rttvar if rtt.srtt is not None else None, "rto": rtt.rto,
        "timers": {name: round(max(0.0, at - now), 6) for name, at in sorted(conn._timers.items())},
    }
    return info


def _endpoint(pair) -> str:
    addr, port = pair
    return f"[{addr}]:{port}" if getattr(addr, "version", 4) == 6 else f"{addr}:{port}"


def stack_snapshot(stack, now: float) -> list[dict]:
    """Every listener and connection of a Stack, listeners first (as `ss -ta` lists them)."""
    rows = []
    for listener in stack.listeners():
        tcb = listener.tcb
        local = ("*" if listener.any_address else tcb.local[0], tcb.local[1])
        rows.append({"state": "LISTEN", "local": _endpoint(local), "remote": "*:*",
                     "recv_q": len(listener.accept_queue), "send_q": listener.backlog,
                     "half_open": len(listener.pending), "timers": {}})
    for conn in stack.connections():
        if conn.state.value != "LISTEN":
            rows.append(snapshot(conn, now))
    return rows
