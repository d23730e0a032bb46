"""SEGMENT ARRIVES (RFC 9293 §3.10.7), hardened per RFC 5961 and RFC 7323.

A mixin of Connection: the per-state steps in RFC order (sequence check, RST,
SYN, ACK, URG, text, FIN). Peer input never raises; a segment that is not
used is dropped with a named reason in the trace.
"""

from dataclasses import replace

from ..seq import seq_add, seq_diff, seq_ge, seq_gt, seq_in, seq_le, seq_lt
from ..wire.tcp import ACK, FIN, RST, SYN, URG, Segment
from . import events as ev
from . import timers
from .reset import reset_for
from .state import RECEIVING, SYNCHRONIZED, State
from .window import window_shift_for

S = State
_DEFAULT_MSS = {4: 536, 6: 1220}  # RFC 9293 §3.7.1 when no MSS option arrives


class SegmentArrival:
    def segment_arrived(self, seg: Segment, now: float, flush: bool = True) -> None:
        """Process one segment. With flush=False (more segments of a batch follow), nothing is sent
        until flush(): a batch of data segments then draws one ACK, not one per segment."""
        self._now = now
        self.stats.segments_received += 1
        st = self.state
        if st is S.CLOSED:
            rst = reset_for(seg)
            if rst is not None:
                self._out.append((rst, "reset: no connection"))
            return
        if st is S.LISTEN:
            self._arrive_listen(seg)
        elif st is S.SYN_SENT:
            self._arrive_syn_sent(seg)
        else:
            self._arrive_other(seg)
        if flush:
            self._output()
        if self._tracer.enabled:
            self._reported.note_changes(self)

    # ------------------------------------------------------------ LISTEN
    def _arrive_listen(self, seg: Segment) -> None:
        f = seg.flags
        if f & RST:
            return self._drop(seg, "rst_in_listen")
        if f & ACK:
            self._out.append((Segment(self.local[1], seg.src_port, seg.ack, 0, RST, 0), "reset: ACK in LISTEN"))
            return self._drop(seg, "ack_in_listen")
        if not f & SYN:
            return self._drop(seg, "no_syn_in_listen")
        self.irs = seg.seq
        self.rcv_nxt = self._rcv_adv = self.rcv_up = seq_add(seg.seq, 1)
        self._negotiate(seg, offered_by_us=None)
        self._choose_iss()
        self.snd_wnd = seg.window  # never scaled in a SYN
        self.max_snd_wnd = self.snd_wnd
        self.snd_wl1, self.snd_wl2 = seg.seq, self.iss
        self._set_state(S.SYN_RCVD, "rcv SYN")
        self._send_syn()
        # Data on a SYN is not acknowledged here; the peer sends it again (as Linux without TFO).

    # ---------------------------------------------------------- SYN_SENT
    def _arrive_syn_sent(self, seg: Segment) -> None:
        f = seg.flags
        if f & ACK and (seq_le(seg.ack, self.iss) or seq_gt(seg.ack, self.snd_nxt)):
            if not f & RST:
                self._out.append((Segment(self.local[1], seg.src_port, seg.ack, 0, RST, 0),
                                  "reset: unacceptable ACK in SYN_SENT"))
            return self._drop(seg, "unacceptable_ack")
        if f & RST:
            if f & ACK:  # the ACK acknowledges our SYN: the peer refused
                return self._terminate(ev.REFUSED, "rcv RST,ACK")
            return self._drop(seg, "rst_without_ack")
        if not f & SYN:
            return self._drop(seg, "no_syn_or_rst")
        self.irs = seg.seq
        self.rcv_nxt = self.rcv_up = seq_add(seg.seq, 1)
        # The window our SYN offered (never scaled) now starts at RCV.NXT: data on the SYN,ACK fits in it.
        self._rcv_adv = seq_add(self.rcv_nxt, min(self._recvbuf.capacity, 0xFFFF))
        self._negotiate(seg, offered_by_us=True)
        self.snd_wnd = self.max_snd_wnd = seg.window
        self.snd_wl1 = seg.seq
        if f & ACK:
            self.snd_wl2 = seg.ack
            self._ack_advanced(seg.ack, seg.options.ts)
            self._established("rcv SYN,ACK")
            self._ack_now = True
            if seg.payload or f & FIN:  # the rest of the segment, as in ESTABLISHED
                self._arrive_other(replace(seg, seq=seq_add(seg.seq, 1), flags=f & ~SYN))
        else:
            self.snd_wl2 = self.snd_una
            self._retries = 0
            self._set_state(S.SYN_RCVD, "rcv SYN (simultaneous open)")
            self._send_syn()

    # ------------------------------------------- SYN_RCVD and synchronized
    def _arrive_other(self, seg: Segment) -> None:
        st, f = self.state, seg.flags
        self._last_recv = self._now
        self._probes = 0
        self._timers.pop(timers.KEEPALIVE, None)  # idleness starts again; _output re-arms it
        if st is S.SYN_RCVD and f & SYN and seg.seq == self.irs:
            if not f & ACK:  # the peer's SYN again: our SYN,ACK was lost
                self._retransmit_head()
                return self._drop(seg, "duplicate_syn")
            # Simultaneous open: the peer's SYN,ACK; its SYN is old news, its ACK is not.
            seg = replace(seg, seq=seq_add(seg.seq, 1), flags=f & ~SYN)
            f = seg.flags
        if st is S.TIME_WAIT and f & FIN and not f & RST and seq_add(seg.seq, seg.seg_len) == self.rcv_nxt:
            self._ack_now = True  # a retransmitted FIN: our last ACK was lost
            self._arm(timers.TIME_WAIT_TIMER, 2 * self.config.msl)
            return self._drop(seg, "retransmitted_fin")
        ts = seg.options.ts
        if self.ts_enabled and ts is not None and not f & RST and seq_lt(ts[0], self.ts_recent):
            self._ack_now = True  # PAWS (RFC 7323 §5.3), checked once, here
            return self._drop(seg, "paws")

        # First: sequence number (RFC 9293 §3.10.7.4).
        wnd = max(0, seq_diff(self._rcv_adv, self.rcv_nxt))
        payload = seg.payload
        if not self._acceptable(seg, wnd):
            if wnd == 0 and seg.seq == self.rcv_nxt and not f & (RST | SYN):
                payload = b""  # zero window: take the ACK (and URG) but not the data
                f &= ~FIN
                self._ack_now = True
            else:
                if not f & RST:
                    self._ack_now = True
                    end = seq_add(seg.seq, len(payload))
                    if self.sack_ok and payload and seq_le(end, self.rcv_nxt):
                        self._dsack = (seg.seq, end)  # data we already had: D-SACK (RFC 2883)
                return self._drop(seg, "rst_out_of_window" if f & RST else "out_of_window")
        if ts is not None and self.ts_enabled and seq_le(seg.seq, self.last_ack_sent):
            self.ts_recent = ts[0]

        # Second: RST (RFC 5961 §3: only an exact match resets).
        if f & RST:
            if self.config.rfc5961 and seg.seq != self.rcv_nxt:
                self._ack_now = True
                return self._drop(seg, "rst_not_exact_challenge_ack")
            if st is S.SYN_RCVD:
                if self.passive:
                    self._set_state(S.LISTEN, "rcv RST")
                    return
                return self._terminate(ev.REFUSED, "rcv RST")
            if st is S.TIME_WAIT:
                if self.config.rfc1337:
                    return self._drop(seg, "rst_in_time_wait_rfc1337")
                # Both directions were already finished and acknowledged: for the application
                # the connection ended normally; only the 2xMSL wait is cut short (RFC 1337).
                return self._terminate(ev.NORMAL, "rcv RST in TIME_WAIT")
            return self._terminate(ev.RESET, "rcv RST")

        # Fourth: SYN (RFC 5961 §4: a challenge ACK, whatever the sequence number).
        if f & SYN:
            if st is S.SYN_RCVD and self.passive:
                self._set_state(S.LISTEN, "rcv SYN in SYN_RCVD")
                return
            self._ack_now = True
            return self._drop(seg, "syn_challenge_ack")

        # Fifth: ACK.
        if not f & ACK:
            return self._drop(seg, "no_ack")
        ack = seg.ack
        if st is S.SYN_RCVD:
            if not (seq_lt(self.snd_una, ack) and seq_le(ack, self.snd_nxt)):
                self._out.append((Segment(self.local[1], seg.src_port, ack, 0, RST, 0),
                                  "reset: unacceptable ACK in SYN_RCVD"))
                return self._drop(seg, "unacceptable_ack")
            self.snd_wnd = seg.window << self.snd_wscale
            self.max_snd_wnd = max(self.max_snd_wnd, self.snd_wnd)
            self.snd_wl1, self.snd_wl2 = seg.seq, ack
            self._ack_advanced(ack, ts)
            self._established("rcv ACK of SYN")
            st = self.state
        elif seq_gt(ack, self.snd_nxt):
            self._ack_now = True
            return self._drop(seg, "ack_above_snd_nxt")
        elif self.config.rfc5961 and seq_lt(ack, seq_add(self.snd_una, -self.max_snd_wnd)):
            self._ack_now = True
            return self._drop(seg, "ack_below_window")
        else:
            window = seg.window << self.snd_wscale
            if self.sack_ok and seg.options.sack:
                self._sb.update(seg.options.sack, self.snd_una, self.snd_nxt)
            if seq_lt(self.snd_una, ack):
                self._ack_advanced(ack, ts)
            elif (ack == self.snd_una and not payload and not f & FIN and window == self.snd_wnd
                  and self.snd_una != self.snd_nxt):
                self._duplicate_ack()
            if (self.sack_ok and self._recover is None and self.snd_una != self.snd_nxt
                    and self._sb.lost_below(self.snd_mss) > 0):
                self._enter_recovery()  # RFC 6675: IsLost(HighACK + 1), before three duplicates
            if self.cc.uses_delivery:  # loss-based controls skip the scoreboard sum on every ACK
                self.cc.on_delivery(self._acked_total + self._sb.sacked_bytes(),
                                    seq_diff(self.snd_nxt, self.snd_una), self._rtt_new, self._now)
                self._rtt_new = None
            if seq_lt(self.snd_wl1, seg.seq) or (self.snd_wl1 == seg.seq and seq_le(self.snd_wl2, ack)):
                self.snd_wnd = window
                self.max_snd_wnd = max(self.max_snd_wnd, window)
                self.snd_wl1, self.snd_wl2 = seg.seq, ack
                if window:
                    self._cancel(timers.PERSIST)
        fin_acked = self._fin_seq is not None and seq_gt(self.snd_una, self._fin_seq)
        if fin_acked:
            if st is S.CLOSING:
                self._set_state(S.TIME_WAIT, "rcv ACK of FIN")
                return
            if st is S.LAST_ACK:
                return self._terminate(ev.NORMAL, "rcv ACK of FIN")
        if st is S.TIME_WAIT:
            return

        # Sixth: URG. The pointer never recedes; an advance is told to the application (MUST-32).
        if f & URG and st in RECEIVING:
            up = seq_add(seg.seq, seg.urgent)
            if seq_gt(up, self.rcv_up) and seq_le(up, self._rcv_adv):
                self.rcv_up = up
                self._urgent_advanced = True

        # Seventh: segment text.
        if payload and st in RECEIVING:
            if self._rcv_closed and seq_gt(seq_add(seg.seq, len(payload)), self.rcv_nxt):
                # nobody will read it: tell the peer its data is lost (RFC 9293 §3.6.1 SHLD-3)
                self._emit(RST | ACK, self.snd_nxt, note="data after close")
                return self._terminate(ev.ABORTED, "data after close")
            self._receive_text(seg.seq, payload)
        if self._urgent_advanced:
            self._urgent_advanced = False
            self._events.append(ev.Urgent(self.urgent_pending))
        # Eighth: FIN, once everything before it has arrived.
        if f & FIN and st not in (S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK):
            fin_seq = seq_add(seg.seq, len(seg.payload))
            if seq_in(self.rcv_nxt, fin_seq, self._rcv_adv) or fin_seq == self._rcv_adv:
                rb = self._recvbuf
                rb.fin_offset = rb.next_offset + seq_diff(fin_seq, self.rcv_nxt)
                self._ack_now = True
        self._maybe_process_fin(fin_acked)
        if self.state is S.FIN_WAIT_1 and fin_acked:
            self._set_state(S.FIN_WAIT_2, "rcv ACK of FIN")

    def _acceptable(self, seg: Segment, wnd: int) -> bool:
        """The four cases of the RFC 9293 §3.10.7.4 acceptability test."""
        seq, n, nxt = seg.seq, seg.seg_len, self.rcv_nxt
        if n == 0:
            return seq == nxt if wnd == 0 else seq_in(nxt, seq, seq_add(nxt, wnd))
        if wnd == 0:
            return False
        end = seq_add(nxt, wnd)
        return seq_in(nxt, seq, end) or seq_in(nxt, seq_add(seq, n - 1), end)

    def _receive_text(self, seq: int, payload) -> None:
        rb = self._recvbuf
        off = rb.next_offset + seq_diff(seq, self.rcv_nxt)
        edge = rb.next_offset + max(0, seq_diff(self._rcv_adv, self.rcv_nxt))
        if off + len(payload) > edge:
            payload = memoryview(payload)[: max(0, edge - off)]
        if len(payload) > self._rcv_mss:  # (a GSO super-segment is not one "full-sized segment")
            self._rcv_mss = min(len(payload), self._our_mss)
        had_gap = rb.has_gaps
        in_order = off <= rb.next_offset
        if self.sack_ok and payload and rb.holds(off, off + len(payload)):
            self._dsack = (seq, seq_add(seq, len(payload)))  # a duplicate: D-SACK (RFC 2883)
        moved = rb.insert(off, payload)
        if not moved and off > rb.next_offset:
            self._last_ooo = seq  # out of order: SACK names this block first
        if moved:
            self.rcv_nxt = seq_add(self.rcv_nxt, moved)
            if rb.readable > self._readable_signalled:
                self._readable_signalled = rb.readable
                self._events.append(ev.DataReadable(rb.readable))
        # RFC 9293 §3.8.6.3 / RFC 5681 §4.2: out-of-order data and a filled gap are ACKed at once;
        # in-order data may wait for the delayed-ACK timer, but not past a second full segment.
        self._delack_bytes += moved
        if (not in_order or had_gap or not moved or not self.config.delayed_ack
                or self._delack_bytes >= 2 * self._rcv_mss):
            self._ack_now = True
        else:
            self._ack_delayed = True

    def _maybe_process_fin(self, fin_acked: bool) -> None:
        rb = self._recvbuf
        if rb.fin_offset is None or rb.fin_offset != rb.next_offset:
            return
        if self.state not in RECEIVING:
            return
        rb.fin_offset = None
        rb.next_offset += 1
        self.rcv_nxt = seq_add(self.rcv_nxt, 1)
        self._ack_now = True
        self._events.append(ev.EndOfStream())
        st = self.state
        if st is S.ESTABLISHED:
            self._set_state(S.CLOSE_WAIT, "rcv FIN")
        elif st is S.FIN_WAIT_1:
            if fin_acked:
                self._set_state(S.TIME_WAIT, "rcv FIN,ACK")
            else:
                self._set_state(S.CLOSING, "rcv FIN (simultaneous close)")
        elif st is S.FIN_WAIT_2:
            self._set_state(S.TIME_WAIT, "rcv FIN")

    # --------------------------------------------------------- ACK handling
    def _ack_advanced(self, ack: int, ts: tuple[int, int] | None) -> None:
        """SND.UNA moves forward to ack: free buffer, time RTT, grow cwnd, re-arm the timer."""
        acked = seq_diff(ack, self.snd_una)
        self._acked_total += acked
        freed = self._sendbuf.acknowledge(ack)
        self.snd_una = ack
        self._sb.advance(acked)
        self._progress_at = self._now
        if self.snd_up is not None and seq_ge(ack, self.snd_up):
            self.snd_up = None  # all urgent data acknowledged: URG goes off
        if self.ts_enabled and ts is not None and ts[1]:
            # RFC 7323 §4: TSecr names the transmission being answered, so even an ACK of a
            # retransmission is a valid sample (Karn's ambiguity does not arise) and RTO recovers.
            elapsed_ms = seq_diff(self._tsval(), ts[1])
            if elapsed_ms >= 0:
                self._rtt_sample(elapsed_ms / 1000)
            self._rtt_seq = None
        elif self._rtt_seq is not None and seq_ge(ack, self._rtt_seq):
            self._rtt_sample(self._now - self._rtt_time)
            self._rtt_seq = None
        self._retries = 0
        self._dupacks = 0
        if self._recover is not None:
            kind = self._recovery_kind
            if seq_ge(ack, self._recover):
                self._recover = None
                if kind == "fast":
                    self.cc.on_exit_recovery(seq_diff(self.snd_nxt, ack))
                else:
                    self.cc.on_ack(acked, self._now)
            elif kind == "rto":
                self.cc.on_ack(acked, self._now)  # slow start while the timed-out data is resent
            elif not self.sack_ok:
                self.cc.on_partial_ack(acked)
                self._retransmit_head()  # partial ACK: the next hole (RFC 6582)
            # SACK fast recovery: the sending loop picks the next lost range (RFC 6675 NextSeg)
        elif self.state in SYNCHRONIZED:
            self.cc.on_ack(acked, self._now)
        if self.snd_una == self.snd_nxt:
            self._cancel(timers.RETRANSMIT)
        else:
            self._arm(timers.RETRANSMIT, self._rtt.rto)
        if freed and self._send_blocked and self._sendbuf.space:
            self._send_blocked = False
            self._events.append(ev.SendSpace(self._sendbuf.space))

    def _duplicate_ack(self) -> None:
        self._dupacks += 1
        if self._recover is not None:
            if self._recovery_kind == "fast" and not self.sack_ok:
                self.cc.on_dupack_in_recovery()  # inflate while the hole is repaired
        elif self._dupacks >= self._dup_threshold():  # fast retransmit (RFC 5681 §3.2)
            self._enter_recovery()

    def _dup_threshold(self) -> int:
        """Three, or fewer when fewer than four segments are out and nothing new can be sent: RFC 5827
        Early Retransmit (otherwise a short flight can only be repaired by a timeout)."""
        mss = self.snd_mss
        outstanding = -(-seq_diff(self.snd_nxt, self.snd_una) // mss)
        can_send = self._sendbuf.bytes_from(self.snd_nxt) and seq_lt(
            self.snd_nxt, seq_add(self.snd_una, self.snd_wnd))
        if 2 <= outstanding < 4 and not can_send:
            return outstanding - 1  # one lone segment cannot be reported missing by a later one
        return 3

    def _enter_recovery(self) -> None:
        """Fast retransmit: halve (once per recovery), resend the first unacknowledged segment."""
        self.cc.on_enter_recovery(seq_diff(self.snd_nxt, self.snd_una), inflate=not self.sack_ok)
        self._recover = self.snd_nxt
        self._recovery_kind = "fast"
        self._high_rxt = self.snd_una
        self.stats.fast_retransmits += 1
        self._rtt_seq = None
        self._retransmit_head()

    def _established(self, why: str) -> None:
        self._set_state(S.ESTABLISHED, why)
        self._retries = 0
        if self.stats.timeouts and self._rtt.srtt is None:
            self._rtt.after_syn_timeout()  # RFC 6298 (5.7)
        self._last_recv = self._now
        self.cc.set_mss(self.snd_mss)
        self._events.append(ev.Connected())
        if self._fin_wanted:  # CLOSE was called in SYN_RCVD with data still queued
            self._set_state(S.FIN_WAIT_1, "CLOSE (deferred)")

    def _negotiate(self, seg: Segment, offered_by_us: bool | None) -> None:
        """Options from the peer's SYN (RFC 7323 §2.2, §3.2; RFC 2018; MSS, RFC 9293 §3.7.1)."""
        cfg, o = self.config, seg.options
        version = self.local[0].version if hasattr(self.local[0], "version") else 4
        peer_mss = o.mss if o.mss else _DEFAULT_MSS.get(version, 536)
        self._peer_offered_wscale = o.wscale is not None
        if cfg.window_scaling and o.wscale is not None:
            self.snd_wscale = o.wscale
            if offered_by_us is None:
                self.rcv_wscale = window_shift_for(cfg.recv_buffer)
        else:
            self.snd_wscale = self.rcv_wscale = 0
        self.ts_enabled = cfg.timestamps and o.ts is not None
        if self.ts_enabled:
            self.ts_recent = o.ts[0]
        self.sack_ok = cfg.sack and o.sack_permitted
        self.snd_mss = max(64, min(peer_mss, self._our_mss) - (12 if self.ts_enabled else 0))

