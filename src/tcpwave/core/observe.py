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
