"""The receiving half of a connection: the receive sequence variables (RFC 9293 §3.3.1), reassembly,
the window we advertise (and receiver silly-window avoidance), when an ACK is owed (delayed ACK),
the SACK and D-SACK blocks we report, and TS.Recent (RFC 7323).

When to ACK follows Linux where RFC 9293 §3.8.6.3 leaves the choice (SHLD-18/19: delay, but less than
0.5 s and not past a second full segment): the first data, and data after an idle RTO, is ACKed at
once ("quick-ACK" mode, up to Config.quickack ACKs); an exchange that replies within the ACK delay
("ping-pong") delays its ACKs; the delay (ATO) starts at Config.delayed_ack and adapts to how
data arrives, after Linux's tcp_event_data_recv() / tcp_send_delayed_ack() (ack-delayed-timer.pkt and
ack-every-second-segment.pkt pass against Linux).
"""

from typing import TYPE_CHECKING, Final

from ..wire.seq import seq_add, seq_diff, seq_gt, seq_in, seq_le, seq_lt
from . import events as ev
from .memory import LIMIT
from .reasons import DropReason
from .recv_buffer import ReceiveBuffer

if TYPE_CHECKING:
    from .connection import Connection


TICK: Final = 0.001  # the delay of an ACK owed before any data arrived (Linux: ATO 0, the next jiffy)


class Receiver:
    __slots__ = (
        "conn", "irs", "nxt", "up", "adv", "retracted", "wscale", "buf", "closed", "ts_recent", "ts_recent_at",
        "last_ack_sent", "ack_now", "ack_delayed", "delack_bytes", "mss", "recent_ooo", "dsack",
        "readable_signalled", "urgent_advanced", "bytes_received", "quick", "pingpong", "ato", "last_data_at"
    )

    def __init__(self, conn: "Connection") -> None:
        self.conn = conn
        self.irs = 0
        self.nxt = 0  # RCV.NXT
        self.up = 0  # RCV.UP
        self.adv = 0  # the right edge of the window we last advertised
        self.retracted: int | None = None  # the edge offered before a drop at the memory limit closed the window
        self.wscale = 0  # Rcv.Wind.Shift
        self.buf = ReceiveBuffer(conn.config.recv_buffer)
        self.closed = False  # the user called close(): arriving data can no longer be read
        self.ts_recent = 0  # TS.Recent
        self.ts_recent_at = 0.0  # when TS.Recent was last set
        self.last_ack_sent = 0  # Last.ACK.sent
        self.ack_now = False  # an ACK must go out before this call returns
        self.ack_delayed = False  # an ACK is owed, but may wait for the delayed-ACK timer
        self.delack_bytes = 0  # in-order bytes received since our last ACK
        self.mss = 536  # the largest segment the peer has sent: "full-sized"
        self.recent_ooo: list[int] = []  # out-of-order arrivals, newest first: the SACK blocks' order
        self.dsack: tuple[int, int] | None = None  # a duplicate to report first (RFC 2883)
        self.readable_signalled = 0
        self.urgent_advanced = False
        self.bytes_received = 0
        self.quick = 0  # ACKs still to send at once (Linux icsk_ack.quick)
        self.pingpong = False  # an interactive exchange: ACKs wait to ride on replies
        self.ato = 0.0  # the ACK delay; 0 until the first data arrives (Linux icsk_ack.ato)
        self.last_data_at = 0.0

    def start(self, irs: int) -> None:
        self.irs = irs
        self.nxt = self.up = seq_add(irs, 1)

    @property
    def window(self) -> int:
        """RCV.WND as the peer sees it: from RCV.NXT to the edge we last advertised."""
        return max(0, seq_diff(self.adv, self.nxt))

    @property
    def urgent_pending(self) -> int:
        """How many of the bytes the application reads next are urgent (RFC 9293 MUST-33)."""
        rb = self.buf
        up = rb.next_offset + seq_diff(self.up, self.nxt)
        return max(0, up - (rb.next_offset - rb.readable))

    # ------------------------------------------------------------ arrival
    def acceptable(self, seq: int, seg_len: int) -> bool:
        """The four cases of the RFC 9293 §3.10.7.4 acceptability test."""
        nxt = self.nxt
        wnd = (self.adv - nxt) & 0xFFFFFFFF  # RCV.WND (the edge never moves left of RCV.NXT)
        if wnd >= 0x80000000:
            wnd = 0
        if not wnd and self.retracted is not None:  # closed at the memory limit: given back once there is room
            gain = self._window_gain()[1]
            if gain > 0:
                self.adv = self.retracted if seq_lt(self.retracted, seq_add(nxt, gain)) else seq_add(nxt, gain)
                self.retracted = None
                wnd = (self.adv - nxt) & 0xFFFFFFFF
        if self.conn.config.rcv_wnd_from_buffer and not self.conn.mem.level:  # FreeBSD: rcv_wnd =
            wnd = max(wnd, self.buf.capacity - self.buf.readable)  # max(sbspace(), rcv_adv - rcv_nxt)
        if seg_len == 0:
            return seq == nxt if wnd == 0 else seq_in(nxt, seq, seq_add(nxt, wnd))
        if wnd == 0:
            return False
        end = seq_add(nxt, wnd)
        return seq_in(nxt, seq, end) or seq_in(nxt, seq_add(seq, seg_len - 1), end)

    def zero_window_ack(self, seq: int) -> bool:
        """A segment at a zero window whose ACK (and URG) is taken, its data not (RFC 9293 §3.10.7.4's
        "special allowance"): at RCV.NXT, or, after the window was closed at the memory limit, up to the
        edge offered before (the peer's SND.NXT may be anywhere up to it)."""
        return seq == self.nxt or (self.retracted is not None and seq_in(self.nxt, seq, seq_add(self.retracted, 1)))

    def note_duplicate(self, seq: int, n: int) -> None:
        """Data we already had arrived again (it failed the acceptability test): report it in a D-SACK
        (RFC 2883). The peer resent it because our ACKs were lost or late, so, as Linux
        (tcp_send_dupack, tcp_data_queue: ack-duplicate-data-quickack.pkt), ping-pong ends and quick-ACK
        mode starts again: the next data is ACKed at once."""
        if not n or not seq_lt(seq, self.nxt):
            return
        end = seq_add(seq, n)
        if self.conn.sack_ok and seq_le(end, self.nxt):
            self.dsack = (seq, end)
        self.pingpong = False
        if self.ato:
            self.ato = self.conn.config.delayed_ack
        self._quickack(self.window)

    def text(self, seq: int, payload) -> None:
        """Seventh step: store the data, move RCV.NXT, decide how soon to ACK."""
        rb = self.buf
        conn = self.conn
        offered = self.window  # RCV.WND as last advertised (Linux's rcv_wnd), before this segment
        off = rb.next_offset + seq_diff(seq, self.nxt)
        edge = rb.next_offset + max(0, seq_diff(self.adv, self.nxt))
        if off + len(payload) > edge:
            payload = memoryview(payload)[: max(0, edge - off)]
        if len(payload) > self.mss:  # (a GSO super-segment is not one "full-sized segment")
            self.mss = min(len(payload), conn.our_mss)
        if conn.mem.level and payload and self._no_memory(off, payload):
            return
        fin_off = rb.fin_offset  # a FIN held beyond a hole leaves a gap too (RFC 5681 §4.2)
        had_gap = rb.has_gaps or (fin_off is not None and fin_off > rb.next_offset)
        in_order = off <= rb.next_offset
        if conn.sack_ok and payload and rb.holds(off, off + len(payload)):
            self.dsack = (seq, seq_add(seq, len(payload)))  # a duplicate: D-SACK (RFC 2883)
        moved = rb.insert(off, payload)
        if not moved and off > rb.next_offset:
            self._note_ooo(seq)  # out of order: SACK names this block first
        if moved:
            self.nxt = seq_add(self.nxt, moved)
            self.bytes_received += moved
            if rb.readable > self.readable_signalled:
                self.readable_signalled = rb.readable
                conn.events_out.append(ev.DataReadable(rb.readable))
        if moved and in_order:
            self._data_arrived(offered)
        # RFC 9293 §3.8.6.3 / RFC 5681 §4.2: out-of-order data and a filled gap are ACKed at once;
        # in-order data may wait for the delayed-ACK timer, but not past a second full segment.
        self.delack_bytes += moved
        if (not in_order or had_gap or not moved or not conn.config.delayed_ack
                or self.delack_bytes >= 2 * self.mss or (self.quick and not self.pingpong)):
            self.ack_now = True
        else:
            self.ack_delayed = True

    def _no_memory(self, off: int, payload) -> bool:
        """Under memory pressure out-of-order data is not queued and the queue is pruned; at the limit,
        data is stored only while nothing is left unread (so each connection still makes progress).
        A segment refused is dropped as if lost, and ACKed at once with a zero window: the one place
        the window's right edge moves left. RFC 9293 §3.8.6 says a receiver SHOULD NOT shrink the
        window (SHLD-14) and a sender MUST cope with it (MUST-34); a receiver without the memory for
        what it offered has the reason a SHOULD allows: the window left open would be filled again
        and dropped again, each drop a retransmission, while a closed one is probed (with backoff)
        until reads, or a budget back below its limit, open it again."""
        rb, mem = self.buf, self.conn.mem
        if off > rb.next_offset:  # (out of order under pressure: dropped, the window left as it is)
            if rb.has_gaps:
                mem.count("pruned", rb.prune())
                self.recent_ooo.clear()
        elif mem.level < LIMIT or not rb.readable or off + len(payload) <= rb.next_offset:
            return False
        else:  # in order, at the limit, with data unread: RCV.WND = 0
            if self.retracted is None or seq_gt(self.adv, self.retracted):
                self.retracted = self.adv
            self.adv = self.nxt
        mem.count("dropped")
        self.ack_now = True
        self.conn.trace("drop", reason=DropReason.MEMORY_LIMIT.value, seq=seq_add(self.nxt, off - rb.next_offset),
                        len=len(payload))
        return True

    def _data_arrived(self, offered: int) -> None:
        """New in-order data: Linux's tcp_event_data_recv(). The first data, or data after more than
        an RTO of silence, starts quick-ACK mode; close arrivals shrink the ACK delay."""
        conn = self.conn
        now, cfg = conn._now, conn.config
        ato_min = cfg.delayed_ack
        if not self.ato:
            self._quickack(offered)
            self.ato = ato_min
        else:
            gap = now - self.last_data_at
            if gap <= ato_min / 2:
                self.ato = self.ato / 2 + ato_min / 2
            elif gap < self.ato:
                self.ato = min(self.ato / 2 + gap, conn.rtt.rto)
            elif gap > conn.rtt.rto:
                self._quickack(offered)
        self.last_data_at = now

    def _quickack(self, offered: int) -> None:
        """Linux's tcp_incr_quickack(): as many quick ACKs as half the window holds segments, at
        least 2, at most Config.quickack."""
        limit = self.conn.config.quickack
        if limit:
            n = max(2, offered // (2 * max(1, self.mss)))
            self.quick = max(self.quick, min(n, limit))

    def ack_delay(self, srtt: float | None) -> float:
        """How long an owed ACK may wait (Linux's tcp_send_delayed_ack())."""
        ato_min = self.conn.config.delayed_ack
        if not self.ato:  # nothing but a FIN arrived yet: Linux's timer fires at the next tick
            return min(TICK, ato_min)
        ato = self.ato
        if ato > ato_min:
            max_ato = 0.2 if self.pingpong else 0.5
            if srtt is not None:
                max_ato = min(max_ato, max(srtt, ato_min))
            ato = min(ato, max_ato)
        return ato

    def delayed_ack_fired(self) -> None:
        """The delayed-ACK timer ran out with an ACK owed: the ACK delay was too long (Linux inflates
        it), or in ping-pong the reply did not come (Linux leaves ping-pong)."""
        if self.pingpong:
            self.pingpong = False
            self.ato = self.conn.config.delayed_ack
        elif self.ato:
            self.ato = min(2 * self.ato, self.conn.rtt.rto)

    def data_sent(self, now: float) -> None:
        """We send data within the ACK delay of the peer's last data: a reply, so ping-pong (Linux's
        tcp_event_data_sent(), with tcp_pingpong_thresh 1)."""
        if self.ato and now - self.last_data_at < self.ato:
            self.pingpong = True

    def fin_arrived(self, fin_seq: int) -> None:
        """Eighth step: remember where the FIN sits; it is processed once everything before it is here."""
        if seq_in(self.nxt, fin_seq, self.adv) or fin_seq == self.adv:
            rb = self.buf
            rb.fin_offset = rb.next_offset + seq_diff(fin_seq, self.nxt)
            if fin_seq != self.nxt:
                self.ack_now = True
                self._note_ooo(fin_seq)  # an out-of-order FIN is SACKed, newest first, in one block with the
                # data it ends (as Linux: ack-sack-covers-fin-beyond-hole.pkt)

    def _note_ooo(self, seq: int) -> None:
        """Remember the newest out-of-order arrival first (RFC 2018 §4), at most one per block."""
        recent = self.recent_ooo
        rb = self.buf
        here = rb.range_at(rb.next_offset + seq_diff(seq, self.nxt))
        keep = [s for s in recent if rb.range_at(rb.next_offset + seq_diff(s, self.nxt)) not in (None, here)]
        recent[:] = [seq, *keep[:3]]

    def take_fin(self) -> bool:
        """If the FIN is next in sequence, consume it (RCV.NXT + 1) and return True. The caller
        decides how soon it is acknowledged."""
        rb = self.buf
        if rb.fin_offset is None or rb.fin_offset != rb.next_offset:
            return False
        rb.fin_offset = None
        rb.next_offset += 1
        self.nxt = seq_add(self.nxt, 1)
        return True

    def urgent(self, seq: int, pointer: int) -> None:
        """Sixth step: the pointer never recedes; an advance is told to the application (MUST-32)."""
        up = seq_add(seq, pointer)
        if seq_gt(up, self.up) and seq_le(up, self.adv):
            self.up = up
            self.urgent_advanced = True

    # ------------------------------------------------------------ the user
    def read(self, max_bytes: int | None) -> bytes | bytearray:
        data = self.buf.read(max_bytes)
        self.readable_signalled = self.buf.readable
        return data

    # ----------------------------------------------------------- outgoing
    def acked(self) -> int:
        """An ACK-bearing segment is going out: it pays whatever ACK was owed. Returns RCV.NXT."""
        if self.quick and (self.ack_now or self.ack_delayed):
            self.quick -= 1  # an ACK of new data spends a quick ACK (Linux's tcp_dec_quickack_mode())
        self.last_ack_sent = self.nxt
        self.ack_now = self.ack_delayed = False
        self.delack_bytes = 0
        return self.nxt

    def sack_blocks(self, limit: int) -> tuple:
        """The D-SACK block (once) and the SACK blocks, newest arrival's first (RFC 2018 §4)."""
        dsack = (self.dsack,) if self.dsack is not None else ()
        self.dsack = None  # a D-SACK is reported once (RFC 2883 §4)
        rb = self.buf
        fin = rb.fin_offset if rb.fin_offset is not None and rb.fin_offset > rb.next_offset else None
        if not rb.has_gaps and fin is None:
            return dsack
        base, nxt, want = rb.next_offset, self.nxt, limit - len(dsack)

        def block(r: tuple[int, int] | None) -> tuple[int, int] | None:
            if fin is not None:  # a FIN beyond a hole occupies a sequence number: SACK it too (as Linux:
                #                  ack-sack-covers-fin-beyond-hole.pkt)
                if r is None:
                    return None
                if r[1] == fin:
                    return r[0], fin + 1
            return r

        found: list[tuple[int, int]] = []
        for seq in self.recent_ooo:  # built from the few newest arrivals: no sort, no full list
            off = base + seq_diff(seq, nxt)
            if fin is not None and off == fin:  # the FIN: one block with the data it ends, if any
                r = rb.range_at(fin - 1)
                r = block(r if r is not None and r[1] == fin else (fin, fin))
            else:
                r = block(rb.range_at(off))
            if r is not None and r not in found:
                found.append(r)
        for r in rb.last_ranges(want):  # then the highest others, if there is room
            r2 = block(r)
            if len(found) >= want:
                break
            if r2 is not None and r2 not in found:
                found.append(r2)
        if fin is not None and len(found) < want and not any(s <= fin < e for s, e in found):
            found.append((fin, fin + 1))
        blocks = tuple((seq_add(nxt, s - base), seq_add(nxt, e - base)) for s, e in found[:want])
        return dsack + blocks

    def _window_gain(self) -> tuple[int, int]:
        """(offered, gain): the window we offer now, and how far reads would let its edge move."""
        rb = self.buf
        free = min(max(0, rb.capacity - rb.readable), 0xFFFF << self.wscale)
        if self.conn.mem.level:  # memory pressure: no more than a few segments (as Linux's tcp_clamp_window);
            # at the limit, one while nothing is left unread (each connection still makes progress)
            free = min(free, 4 * self.mss if self.conn.mem.level < LIMIT else 0 if rb.readable else self.mss)
        offered = max(0, seq_diff(self.adv, self.nxt))
        return offered, free - offered

    def advertise(self, syn: bool = False) -> int:
        """The window field to send. The right edge never moves left (RFC 9293 §3.8.6; _no_memory
        excepted), and moves right only by at least min(buffer / 2, MSS): receiver silly-window
        avoidance (§3.8.6.2.2). With Config.rcv_sws_free (FreeBSD's tcp_output()), every segment
        offers all the free space once it is at least min(buffer / 4, MSS)."""
        offered, gain = self._window_gain()
        if self.conn.config.rcv_sws_free:
            wnd = offered + gain if offered + gain >= min(self.buf.capacity // 4, self.mss) else offered
        else:
            wnd = offered + gain if gain >= min(self.buf.capacity // 2, self.mss) else offered
        if syn:  # a SYN's window is never scaled (RFC 7323 §2.2)
            field = min(wnd, 0xFFFF)
            self.adv = seq_add(self.nxt, field)
            return field
        shift = self.wscale
        field = min(wnd >> shift, 0xFFFF)
        if (field << shift) < offered and field < 0xFFFF:
            field += 1
        self.adv = seq_add(self.nxt, field << shift)
        if self.retracted is not None and not seq_lt(self.adv, self.retracted):
            self.retracted = None  # open again as far as before
        return field

    def window_update_after_read(self) -> None:
        """After a read: if the edge may move (the SWS rule), tell the peer. At once when the peer may
        be stalled on a small window; as a delayed ACK (which a reply can carry) when the window would
        at least double; not at all while the peer still has most of the window (after Linux's
        __tcp_cleanup_rbuf; window-receiver-sws.pkt shows Linux's updates differ in size)."""
        offered, gain = self._window_gain()
        if gain >= min(self.buf.capacity // 2, self.mss):
            if offered < 2 * self.mss or not self.conn.config.delayed_ack:
                self.ack_now = True
            elif gain >= offered:
                self.ack_delayed = True
