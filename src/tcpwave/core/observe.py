"""What a connection reports beyond segments, states and timers (which Timers traces itself), for
event logs and plots: congestion-window and window changes, RTT samples; and the `ss` snapshot.

Only runs when a tracer is listening. `note_changes` compares the connection's numbers with what was
last reported and emits one event per change; the connection calls it after each segment, timer and
user call, so a plot of cwnd or of the windows has one point per step that moved them.
"""

from typing import Any

from .sender import linux_pacing_rate


def flight_size(conn) -> int:
    return conn.snd.flight


class ChangeReporter:
    __slots__ = ("cwnd", "ssthresh", "snd_wnd", "rcv_wnd")

    def __init__(self) -> None:
        self.cwnd: int | None = None
        self.ssthresh: int | None = None
        self.snd_wnd: int | None = None
        self.rcv_wnd: int | None = None

    def note_changes(self, conn) -> None:
        trace = conn.trace
        cc = conn.cc
        if cc.cwnd != self.cwnd or cc.ssthresh != self.ssthresh:
            self.cwnd, self.ssthresh = cc.cwnd, cc.ssthresh
            trace("cc", cwnd=cc.cwnd, ssthresh=cc.ssthresh, flight=flight_size(conn))
        rcv_wnd = conn.rcv.window
        if conn.snd_wnd != self.snd_wnd or rcv_wnd != self.rcv_wnd:
            self.snd_wnd, self.rcv_wnd = conn.snd_wnd, rcv_wnd
            trace("window", snd_wnd=conn.snd_wnd, rcv_wnd=rcv_wnd)

    @staticmethod
    def rtt_sample(conn, sample: float) -> None:
        rtt = conn.rtt
        conn.trace("rtt", sample=round(sample, 9), srtt=round(rtt.srtt, 9), rttvar=round(rtt.rttvar, 9),
                    rto=round(rtt.rto, 9))


def snapshot(conn, now: float) -> dict:
    """What `tcpwave ss` shows for one connection: state, queues, the RFC 9293 variables, cwnd,
    RTT estimates and the armed timers with the time left (the kind of view Linux's TCP_INFO and ss -tinoe give)."""
    rtt = conn.rtt
    info: dict[str, Any] = {
        "state": conn.state.value,
        "local": _endpoint(conn.local),
        "remote": _endpoint(conn.remote) if conn.remote else "*:*",
        "recv_q": conn.readable,  # received, not yet read by the application
        "send_q": conn.send_queue,  # written, not yet acknowledged
        "snd_una": conn.snd_una, "snd_nxt": conn.snd_nxt, "snd_wnd": conn.snd_wnd,
        "rcv_nxt": conn.rcv_nxt, "rcv_wnd": conn.rcv.window,
        "cwnd": conn.cc.cwnd, "ssthresh": conn.cc.ssthresh if conn.cc.ssthresh < 1 << 30 else None,
        "mss": conn.snd_mss,
        "srtt": rtt.srtt, "rttvar": rtt.rttvar if rtt.srtt is not None else None, "rto": rtt.rto,
        "ca_state": conn.recovery.ca_state.value,
        "reo_wnd_mult": conn.recovery.reo_wnd_mult,  # RACK's reordering window, in min_RTT/4 steps
        "timers": {name: round(max(0.0, at - now), 6) for name, at in sorted(conn.timers.armed().items())},
    }
    st, q = conn.stats, conn.recovery.q
    info.update({  # what Linux's ss -i shows (struct tcp_info)
        "retrans": q.retrans_out, "retransmissions": st.retransmissions, "bytes_sent": st.bytes_sent,
        "bytes_retrans": st.retransmitted_bytes, "bytes_acked": st.bytes_acked,
        "bytes_received": conn.rcv.bytes_received,
        "lost": q.lost, "sacked": q.sacked,
        "delivered": conn.recovery.delivered_total,  # bytes the peer showed it holds, each counted once
        "delivery_rate": round(conn.recovery.delivery_rate * 8), "segs_out": st.segments_sent,
        "segs_in": st.segments_received,
        "busy_time": round(st.busy_time + (now - st.busy_since if st.busy_since is not None else 0.0), 6),
    })
    snd, rcv, cc = conn.snd, conn.rcv, conn.cc
    info.update({  # the rest of Linux's ss -i line
        "cc": cc.name, "snd_wscale": snd.wscale, "rcv_wscale": rcv.wscale, "ato": rcv.ato,
        "min_rtt": conn.recovery.min_rtt, "pacing_rate": round(pacing_rate(conn) * 8),
        "lastsnd": round(now - snd.last_send, 6), "lastrcv": round(now - rcv.last_data_at, 6),
        "lastack": round(now - conn.last_recv, 6), "notsent": snd.unsent, "app_limited": not snd.cwnd_limited,
    })
    return info


def pacing_rate(conn) -> float:
    """Bytes per second: the congestion control's, or Linux's default (sender.linux_pacing_rate), 0
    before an RTT sample."""
    cc, srtt = conn.cc, conn.rtt.srtt
    if cc.pacing_rate:
        return cc.pacing_rate
    return linux_pacing_rate(cc.cwnd, cc.ssthresh, srtt) if srtt else 0.0


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
    for tw in stack.time_waits():  # compact records: what is left of a connection in TIME_WAIT
        deadline = tw.deadline if tw.deadline is not None else now
        rows.append({"state": "TIME_WAIT", "local": _endpoint(tw.local), "remote": _endpoint(tw.remote),
                     "recv_q": 0, "send_q": 0, **tw.fields(),
                     "timers": {"time_wait": round(max(0.0, deadline - now), 6)}})
    return rows
