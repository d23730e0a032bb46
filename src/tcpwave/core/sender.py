"""The sending half of a connection: the send sequence variables (RFC 9293 §3.3.1), the send buffer,
what may go out now (Nagle, sender silly-window avoidance, PSH, the windows, pacing), retransmissions
of what recovery deems lost, the zero-window probe and RTT timing.

It builds no segment itself: `Connection.emit` adds what the receiving half owns (ACK, window,
timestamps, SACK blocks).
"""

import collections
from typing import TYPE_CHECKING

from ..wire.seq import seq_add, seq_diff, seq_ge, seq_gt, seq_le, seq_lt
from ..wire.tcp import ACK, FIN, PSH
from . import events as ev
from .ca_state import CaState
from .memory import LIMIT
from .rtxqueue import Record
from .send_buffer import SendBuffer
from .timers import PACING, PERSIST, SWS_OVERRIDE

if TYPE_CHECKING:
    from .connection import Connection


def linux_pacing_rate(cwnd: int, ssthresh: int, srtt: float) -> float:
    """What Linux sets sk_pacing_rate to, in bytes per second: cwnd / SRTT, times 2 in slow start
    (cwnd below half ssthresh) and 1.2 after."""
    return cwnd * (2.0 if cwnd < ssthresh / 2 else 1.2) / srtt


class Sender:
    __slots__ = (
        "conn", "iss", "una", "nxt", "wnd", "wl1", "wl2", "max_wnd", "up", "wscale", "mss", "buf", "unsent",
        "blocked", "nodelay", "tso_max", "fin_wanted", "fin_seq", "push_points", "sent_push", "small_end",
        "sws_expired", "last_send", "progress_at", "persist_backoff", "probes_out", "persist_since", "rtt_seq",
        "rtt_time",
        "pace_at", "cwnd_limited"
    )

    def __init__(self, conn: "Connection") -> None:
        cfg = conn.config
        self.conn = conn
        self.iss = 0
        self.una = 0  # SND.UNA
        self.nxt = 0  # SND.NXT
        self.wnd = 0  # SND.WND, scaled
        self.wl1 = 0  # SND.WL1
        self.wl2 = 0  # SND.WL2
        self.max_wnd = 0  # the largest window the peer has offered (sender SWS)
        self.up: int | None = None  # SND.UP, while urgent data is unacknowledged
        self.wscale = 0  # Snd.Wind.Shift
        self.mss = 536  # the peer's MSS, less our options
        self.buf = SendBuffer(cfg.send_buffer, 0)
        self.unsent = 0  # bytes queued and never sent (buf.bytes_from(SND.NXT), kept as a count)
        self.blocked = False  # a send() was cut short: tell the user when space returns
        self.nodelay = cfg.nodelay
        self.tso_max = 0  # > 0: the device cuts segments (TSO), so one may carry up to this many bytes
        self.fin_wanted = False  # the user called CLOSE (shutdown or close)
        self.fin_seq: int | None = None  # sequence number of our FIN once sent
        # where writes end (PSH), and the ends of sent segments that carried PSH; made at first use
        # (an idle connection pays for neither: a deque is 600 bytes)
        self.push_points: collections.deque[int] | None = None
        self.sent_push: collections.deque[int] | None = None
        self.small_end: int | None = None  # end of the last sub-MSS segment sent (Nagle/Minshall)
        self.sws_expired = False
        self.last_send = 0.0
        self.progress_at = 0.0  # when sent data was last acknowledged (user timeout)
        self.persist_backoff = 0
        self.probes_out = 0  # zero-window probes sent since the peer last ACKed anything
        self.persist_since: float | None = None  # the persist timer's first expiry of this zero window
        self.rtt_seq: int | None = None  # the segment being timed (Karn: cleared on retransmit)
        self.rtt_time = 0.0
        self.pace_at = 0.0  # the earliest time the next paced segment may leave
        self.cwnd_limited = False  # the last output stopped for want of congestion window

    def start(self, iss: int) -> None:
        self.iss = self.una = iss
        self.nxt = seq_add(iss, 1)
        self.buf.start_seq = self.nxt

    def _push_every(self) -> int:
        """Where RFC 9293 leaves PSH to the sender (§3.9.1, MAY), do as Linux (data-psh-on-last-segment.pkt):
        it cuts a write into
        buffers of its TSO size goal (about 1 ms at the pacing rate, at least 2 segments, at most
        64 KB and half the peer's largest window) and sends each with PSH on its last segment."""
        conn, mss = self.conn, max(1, self.mss)
        srtt, cc = conn.rtt.srtt, conn.cc
        if srtt:
            rate = linux_pacing_rate(cc.cwnd, cc.ssthresh, srtt)
            segs = max(2, int(rate / 1024) // mss)
        else:
            segs = 65536 // mss
        goal = max(1, min(segs, 65536 // mss)) * mss
        half = self.max_wnd // 2 if self.max_wnd > 536 else self.max_wnd
        if half and goal > half:
            goal = max(mss, half // mss * mss)
        return goal

    @property
    def fin_waiting(self) -> bool:
        """Is our FIN due but not yet sent? It needs a byte of window (a receiver with RCV.WND = 0 would
        not accept it, RFC 9293 §3.10.7.4), as Linux's tcp_snd_wnd_test (close-fin-waits-for-zero-window.pkt)."""
        return self.fin_wanted and self.fin_seq is None and not self.unsent and self.conn.closing_state

    @property
    def seg_max(self) -> int:
        mss = self.mss
        return (self.tso_max // mss) * mss if self.tso_max > mss else mss

    # ----------------------------------------------------------- the user
    def queue(self, data, urgent: bool) -> int:
        if self.conn.mem.level < LIMIT:
            n = self.buf.append(data)
        else:  # the stack's memory is at its limit: one segment into an empty buffer, so it still moves
            n = 0 if len(self.buf) else self.buf.append(memoryview(data)[: self.mss])
        self.unsent += n
        if n:
            points = self.push_points
            if points is None:
                points = self.push_points = collections.deque()
            end = self.buf.end_seq
            goal = self._push_every()
            if goal < n:  # a long write: PSH ends each chunk of it too, as Linux's sendmsg marks each skb
                #           (data-psh-on-last-segment.pkt)
                start = seq_add(end, -n)
                points.extend(seq_add(start, k) for k in range(goal, n, goal))
            points.append(end)
            if urgent:
                self.up = self.buf.end_seq  # MUST-62: the octet following the urgent data
        if n < len(data):
            self.blocked = True
        return n

    # ------------------------------------------------------------ output
    def output(self, now: float) -> None:
        """Send what recovery, the windows and the pacing rate allow: lost segments first (RFC 6675
        §5: retransmissions before new data), then new data, then the FIN."""
        conn = self.conn
        rec, cc = conn.recovery, conn.cc
        q = rec.q
        waiting = self.unsent
        if not waiting and not q.lost and (not self.fin_wanted or self.fin_seq is not None):
            return  # nothing to send, resend or close: the common case for a receiving endpoint
        if self.una == self.nxt and waiting and now - self.last_send > conn.rtt.rto:
            cc.on_idle_restart()
        paced = cc.pacing_rate > 0
        mss, seg_max = self.mss, self.seg_max
        if q.lost:
            while (r := q.next_lost()) is not None:
                room = cc.cwnd - rec.in_flight
                if room < min(len(r), mss) and rec.in_flight:
                    break
                if paced and now < self.pace_at:
                    conn.timers.arm(PACING, now, self.pace_at - now)
                    return
                limit = min(max(mss, room // mss * mss), seg_max)
                if len(r) - r.fin > limit:  # (a FIN rides with its segment's bytes, as first sent)
                    q.split(r, r.start + limit)
                self.retransmit(r, now)
        if self.fin_seq is not None:
            return
        state_closing = conn.closing_state
        nxt_before = self.nxt
        # the two limits, counted down as segments go (send_new adds n to what is in flight)
        avail = self.unsent
        rwnd_room = seq_diff(seq_add(self.una, self.wnd), self.nxt)
        cwnd_room = cc.cwnd - (q.nxt - q.una - q.sacked - q.lost + q.retrans_out) + (
            0 if conn.sack_ok else rec.reno_sacked)  # cwnd - pipe
        while True:
            usable = rwnd_room if rwnd_room < cwnd_room else cwnd_room
            n = avail if avail < usable else usable
            if n > seg_max:
                n = seg_max
            if n <= 0 or (n < mss and not self._may_send_small(n, avail, usable, now)):
                self.cwnd_limited = avail > 0 and cwnd_room < mss
                if avail == 0 and self.fin_wanted and state_closing and rwnd_room > 0:
                    self.send_new(0, True, now)  # (the FIN takes a sequence number: one byte of window)
                break
            if paced and now < self.pace_at:
                conn.timers.arm(PACING, now, self.pace_at - now)
                break
            fin = self.fin_wanted and n == avail and state_closing and n < rwnd_room
            self.send_new(n, fin, now)
            if fin:  # (not `self.fin_seq is not None`: mypy holds it None since the check above)
                break
            avail -= n
            rwnd_room -= n
            cwnd_room -= n
        if self.nxt != nxt_before:
            conn.arm_loss_timer(new_data=True)  # once per burst, after its last segment
        if (self.unsent or self.fin_waiting) and not self.wnd and self.una == self.nxt \
                and PERSIST not in conn.timers.at:
            self.persist_backoff = 0
            conn.timers.arm(PERSIST, now, conn.rtt.rto)

    def _may_send_small(self, n: int, avail: int, usable: int, now: float) -> bool:
        """May a segment shorter than the MSS go now? (RFC 9293 §3.7.4 Nagle, §3.8.6.2.1 sender SWS)"""
        if n == avail:  # everything queued fits: Nagle decides, in Minshall's variant (as Linux: nagle-*.pkt):
            # hold a small segment only while an earlier small segment is unacknowledged, so small
            # writes coalesce but the tail of one large write is not held back for a round trip
            return (self.nodelay or self.fin_wanted or self.small_end is None
                    or seq_le(self.small_end, self.una))
        # the window, not the queue, limits us: send at least half the largest window seen,
        # or whatever fits once the override timer has run out
        if n >= self.max_wnd // 2 or self.sws_expired:
            self.sws_expired = False
            return True
        timers = self.conn.timers
        if usable > 0:
            timers.arm_once(SWS_OVERRIDE, now, self.conn.config.sws_override)
        return False

    def send_new(self, n: int, fin: bool, now: float) -> None:
        """Send n new bytes at SND.NXT (and the FIN after them if fin)."""
        conn = self.conn
        seq = self.nxt
        payload = self.buf.copy(seq, n) if n else b""
        end = seq_add(seq, n)
        push = 0
        points = self.push_points
        while points and seq_le(points[0], end):  # this segment ends a write (or more than one)
            points.popleft()
            push = PSH
        flags = ACK | (push if n else 0) | (FIN if fin else 0)
        if push and n:
            marks = self.sent_push
            if marks is None:
                marks = self.sent_push = collections.deque()
            while marks and seq_le(marks[0], self.una):
                marks.popleft()
            marks.append(end)  # a retransmission of this segment carries PSH again
        if 0 < n < self.mss:
            self.small_end = end
        if self.una == self.nxt:
            self.progress_at = now  # the user-timeout clock starts with the first unacked byte
            if n:
                conn.cc.on_tx_start(now - self.last_send, now)
        conn.emit(flags, seq, payload)
        self.last_send = now
        if n:
            conn.rcv.data_sent(now)
        if fin:
            self.fin_seq = end
        self.nxt = seq_add(seq, n + fin)
        self.unsent -= n
        rec = conn.recovery
        rec.q.sent(n, fin, now)
        if rec.ca_state is CaState.RECOVERY:
            rec.prr_out += n + fin
        rate = conn.cc.pacing_rate
        if rate > 0:
            self.pace_at = max(self.pace_at, now) + (n + fin) / rate
        if self.rtt_seq is None:
            self.rtt_seq, self.rtt_time = self.nxt, now

    def retransmit(self, r: Record, now: float, probe: bool = False) -> None:
        """Send the bytes of record r again (its FIN too); `probe`: as the tail loss probe."""
        conn = self.conn
        q = conn.recovery.q
        seq = seq_add(self.una, r.start - q.una)
        n = len(r) - r.fin
        payload = self.buf.copy(seq, n) if n else b""
        push = PSH if n and self._pushed(seq, n) else 0
        conn.emit(ACK | (FIN if r.fin else 0) | push, seq, payload, note="retransmission")
        if probe:
            q.probed(r, now)
        else:
            q.retransmitted(r, now)
        self.rtt_seq = None  # Karn's rule
        self._sent(len(r), now)
        if conn.timers.slot is None:
            conn.arm_loss_timer()

    def _sent(self, n: int, now: float) -> None:
        conn = self.conn
        conn.recovery.sent(n)
        if conn.stats.busy_since is None:
            conn.stats.busy_since = now
        rate = conn.cc.pacing_rate
        if rate > 0:
            self.pace_at = max(self.pace_at, now) + n / rate

    def _pushed(self, seq: int, n: int) -> bool:
        """Did the first transmission of bytes [seq, seq + n) end a write (PSH)?"""
        marks, end = self.sent_push, seq_add(seq, n)
        if marks is None:
            return False
        while marks and seq_le(marks[0], self.una):
            marks.popleft()
        for mark in marks:
            if seq_gt(mark, end):
                return False
            if seq_gt(mark, seq):
                return True
        return False

    def probe(self, now: float) -> None:
        """The tail loss probe (RFC 8985 §7.3): one new segment if the peer's window allows, else the
        last segment sent, again."""
        conn = self.conn
        rec = conn.recovery
        q = rec.q
        avail = self.unsent
        room = seq_diff(seq_add(self.una, self.wnd), self.nxt)
        if self.fin_seq is None and avail and room > 0:
            n = min(avail, self.mss, room)
            rec.probe_sent(retrans=False)
            self.send_new(n, self.fin_wanted and n == avail and conn.closing_state, now)
            rec.tlp_end = q.nxt
            return
        last = q.last()
        if last is None:
            return
        if len(last) - last.fin > self.mss:  # the last segment as sent: its FIN takes no payload room
            last = q.split(last, last.end - last.fin - self.mss)
        rec.probe_sent(retrans=True)
        self.retransmit(last, now, probe=True)

    def zero_window_probe(self) -> None:
        """An old sequence number draws an ACK with the current window (RFC 9293 §3.8.6.1)."""
        self.conn.emit(ACK, seq_add(self.una, -1), note="zero-window probe")

    # ------------------------------------------------------------- the ACK
    def acknowledged(self, ack: int, ts: tuple[int, int] | None, now: float) -> float | None:
        """SND.UNA moves forward to ack: free buffer, time the RTT. Returns the RTT sample, if any."""
        conn = self.conn
        freed = self.buf.acknowledge(ack)
        st = conn.stats
        st.bytes_acked += (ack - self.una) & 0xFFFFFFFF
        self.una = ack
        if ack == self.nxt and st.busy_since is not None:  # everything sent is acknowledged: idle again
            st.busy_time += now - st.busy_since
            st.busy_since = None
        self.progress_at = now
        if self.up is not None and seq_ge(ack, self.up):
            self.up = None  # all urgent data acknowledged: URG goes off
        sample = None
        if conn.ts_enabled and ts is not None and ts[1]:
            # RFC 7323 §4: TSecr names the transmission being answered, so even an ACK of a
            # retransmission is a valid sample (Karn's ambiguity does not arise) and RTO recovers.
            elapsed_ms = seq_diff(conn.tsval(), ts[1])
            if elapsed_ms >= 0:
                sample = max(elapsed_ms, 1) / 1000  # (as Linux: at least one tick, never a 0 RTT)
            self.rtt_seq = None
        elif self.rtt_seq is not None and seq_ge(ack, self.rtt_seq):
            sample = now - self.rtt_time
            self.rtt_seq = None
        if freed and self.blocked and self.buf.space:
            self.blocked = False
            conn.events_out.append(ev.SendSpace(self.buf.space))
        return sample

    def update_window(self, seq: int, ack: int, window: int, now: float, advanced: bool = False) -> None:
        """RFC 9293 §3.10.7.4 fifth, ESTABLISHED: take the window from the newest segment. Which
        segment is newer is Linux's tcp_may_update_window(): one that acknowledges new data or comes
        later in sequence; at the same SEG.SEQ and SEG.ACK only a larger (or zero) window counts,
        so a bare update that only shrinks the window is ignored (the RFC says it "should" be taken)."""
        if (advanced or seq_lt(self.wl1, seq)
                or (self.wl1 == seq and seq_le(self.wl2, ack) and (window > self.wnd or not window))):
            self.wnd = window
            if window > self.max_wnd:
                self.max_wnd = window
            self.wl1, self.wl2 = seq, ack
            if window:
                self.conn.timers.cancel(PERSIST, now)
                self.persist_since = None

    @property
    def flight(self) -> int:
        return seq_diff(self.nxt, self.una)

    def is_duplicate_ack(self, ack: int, payload_len: int, flags: int, window: int) -> bool:
        """RFC 5681 §2: (a) data outstanding, (b) no data, (c) no SYN or FIN, (d) the ACK equals
        SND.UNA, (e) the window did not change."""
        return (ack == self.una and not payload_len and not flags & FIN and window == self.wnd
                and self.una != self.nxt)

