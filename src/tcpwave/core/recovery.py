"""Loss detection and recovery: RACK-TLP (RFC 8985) with SACK, NewReno (RFC 6582) without, PRR
(RFC 6937) for how much is sent while recovering, and the recovery state Linux reports as ca_state.

States (Linux's names, as `tcpi_ca_state` reports them):
- OPEN: nothing is wrong.
- DISORDER: SACKs or duplicate ACKs show reordering or loss, but no segment is deemed lost yet.
- CWR: the window is being cut without a retransmission (a loss repaired by a tail loss probe).
- RECOVERY: fast recovery, entered when a segment is deemed lost by RACK or three duplicate ACKs.
- LOSS: after a retransmission timeout, until everything sent before it is acknowledged.

This module decides which segments are lost (it marks records in the RetransmitQueue) and sets the
congestion window during recovery (PRR). The sender asks it what to send next; the congestion control
only sets ssthresh on a congestion event and grows cwnd outside recovery.
"""

import math
from typing import TYPE_CHECKING, Final

from ..cc.base import CongestionControl, RateSample
from .ca_state import CaState
from .rtxqueue import Record, RetransmitQueue

if TYPE_CHECKING:
    from .connection import Connection

DUP_THRESH: Final = 3
WC_DEL_ACK: Final = 0.2  # RFC 8985 WCDelAckT: the worst-case delayed-ACK time a lone probe must outwait
TLP_MIN: Final = 0.002  # Linux adds TCP_TIMEOUT_MIN (2 ms) to 2×SRTT when more than one segment is out
CLOCK_US: Final = 1e-6  # times are compared at Linux's microsecond resolution
RENEGING_DELAY: Final = 0.010  # the early timeout after a SACK reneging: max(SRTT/2, this), Linux's values
REO_WND_PERSIST: Final = 16  # recoveries a widened reordering window lasts (RFC 8985 §6.2 step 4)


class Recovery:
    """Owned by one Connection; `q` is its retransmission queue."""
    __slots__ = (
        "conn", "cc", "q", "ca_state", "recover", "dupacks", "reno_sacked", "rack_xmit", "rack_end",
        "rack_rtt", "rack_advanced", "min_rtt", "reordering_seen", "reo_wnd_mult", "reo_wnd_persist",
        "dsack_round", "reo_timeout", "tlp_end", "tlp_retrans", "tlp_dsack", "prr_delivered", "prr_out",
        "recover_fs", "reducing", "round_end", "delivered_total", "rs", "lost_total", "detected_by",
        "round_delivered", "round_at", "delivery_rate", "reneging"
    )


    def __init__(self, conn: "Connection", cc: CongestionControl) -> None:
        self.conn = conn
        self.cc = cc
        self.q = RetransmitQueue()
        self.ca_state = CaState.OPEN
        self.recover = 0  # unwrapped SND.NXT when recovery began: it ends once SND.UNA passes it
        self.dupacks = 0
        self.reno_sacked = 0  # without SACK: bytes the duplicate ACKs say have left (as Linux's sacked_out)
        # RACK (RFC 8985 §6.1)
        self.rack_xmit = -1.0
        self.rack_end = 0
        self.rack_rtt = 0.0
        self.rack_advanced = False
        self.min_rtt: float | None = None
        self.reordering_seen = False
        self.reo_wnd_mult = 1
        self.reo_wnd_persist = 0
        self.dsack_round: int | None = None  # SND.NXT (unwrapped) when the window was last widened
        self.reo_timeout: float = 0.0  # > 0: this ACK's loss detection waits this long (the reorder timer)
        self.reneging = False  # this ACK stopped at a SACKed segment: the receiver dropped it?
        # TLP (RFC 8985 §7)
        self.tlp_end: int | None = None
        self.tlp_retrans = False
        self.tlp_dsack = False
        # PRR (RFC 6937)
        self.prr_delivered = 0
        self.prr_out = 0
        self.recover_fs = 0
        self.reducing = False  # the congestion control asked for PRR's cut in this recovery
        self.round_end = 0  # unwrapped SND.NXT when the current round trip began
        # counters (tcp_info)
        self.delivered_total = 0  # bytes the peer has shown it holds (cumulatively ACKed or SACKed)
        self.round_delivered, self.round_at = 0, 0.0  # delivered_total and the time when the round began
        self.delivery_rate = 0.0  # bytes per second delivered over the last whole round trip
        self.rs: RateSample | None = None  # made at the first ACK, then refilled
        self.lost_total = 0
        self.detected_by: dict[str, int] | None = None  # losses per rule (dupack, rack, tlp, rto), once any

    # -------------------------------------------------------------- queries
    @property
    def in_flight(self) -> int:
        return self.q.in_flight - (self.reno_sacked if not self.conn.sack_ok else 0)

    @property
    def in_recovery(self) -> bool:
        return self.ca_state in (CaState.RECOVERY, CaState.LOSS)

    def reo_wnd(self) -> float:
        """RACK's reordering window (RFC 8985 §6.2 step 4)."""
        if not self.reordering_seen and (self.ca_state in (CaState.RECOVERY, CaState.LOSS)
                                         or self.q.sacked >= DUP_THRESH * self.conn.snd.mss):
            return 0.0
        srtt = self.conn.rtt.srtt or 0.0
        return min((self.min_rtt or 0.0) / 4 * self.reo_wnd_mult, srtt)

    # ---------------------------------------------------------- on each ACK
    def on_ack(self, ack: int, sack_blocks: tuple, dup: bool, now: float, rtt: float | None) -> None:
        """Process what an acceptable ACK says: `ack` is the new unwrapped SND.UNA (or the old one),
        `dup` whether it is a duplicate ACK in RFC 5681's sense, `rtt` the sample TSecr gives, if any.
        The steps run in RFC 8985's order: the cumulative ACK and its RTT sample, the SACK blocks
        (with §6.2 step 3, reordering), step 2 (RACK_update),
        step 4 (the reordering window), §7.4 (the TLP episode), step 5 (loss detection); then the
        recovery state, the rate sample for the congestion control, and PRR."""
        conn, q = self.conn, self.q
        sack_ok = conn.sack_ok
        reno = 0 if sack_ok else self.reno_sacked
        prior_in_flight = q.nxt - q.una - q.sacked - q.lost + q.retrans_out - reno
        was_reducing = self.ca_state is CaState.RECOVERY and self.reducing
        prior_una, prior_sacked, prior_lost = q.una, q.sacked, q.lost
        self.reo_timeout = 0.0  # set again only if this ACK runs loss detection (RFC 8985 §6.2 step 5)
        self.reneging = False
        delivered_recs = q.acknowledge(ack) if ack > q.una else []
        acked = q.una - prior_una
        if acked:
            rtt = self._ack_rtt(now, rtt)
        if acked and sack_ok:
            head = q.head()  # the ACK stopped at a SACKed segment: the receiver may have dropped it
            self.reneging = head is not None and head.sacked
        dsack = self._sack(ack, sack_blocks, delivered_recs) if sack_ok and sack_blocks else False
        if delivered_recs:
            self._rack_update(delivered_recs, now)  # step 2
        if dsack:
            self._update_reo_wnd()  # step 4
        if sack_ok:
            delivered = acked + (q.sacked - prior_sacked)
        else:
            delivered = self._reno_dupack(dup, acked)
        if self.tlp_end is not None:
            self._tlp_process_ack(dsack)  # §7.4
        if not self.reneging:  # (a reneging waits for the early timeout instead)
            self._detect_loss_on_ack(now)  # step 5 (or NewReno's duplicate ACKs)
        self._update_ca_state(acked)
        self._rate_sample(delivered, acked, prior_in_flight, prior_lost, was_reducing, now, rtt)

    def _ack_rtt(self, now: float, ts_rtt: float | None) -> float | None:
        """The RTT sample of a cumulative ACK: from when the segments it newly delivers were sent, to
        the microsecond, as Linux prefers it (tcp_ack_update_rtt); TSecr's, in milliseconds, only when
        one of them was resent (Karn)."""
        sent = self.q.acked_sent
        if sent is not None:
            self.conn.rtt_sample(now - sent[0], now - sent[1])
            return now - sent[0]
        if ts_rtt is not None:
            self.conn.rtt_sample(ts_rtt)
        return ts_rtt

    def _sack(self, ack: int, sack_blocks: tuple, delivered_recs: list[Record]) -> bool:
        """Mark what the SACK blocks report, lowest block first (the newest comes first on the
        wire, RFC 2018 §4: in that order a lower block would look reordered; sorted as Linux,
        tests/conformance/sack-blocks-lowest-first.pkt), and RFC 8985 §6.2 step 3: a segment newly
        SACKed below one SACKed before, never retransmitted, was reordered. Returns whether the
        first block is a D-SACK (RFC 2883 §4): below the cumulative ACK, or inside the second
        block. A block merely repeated (on a window update or a data segment) is not one."""
        q, snd_una = self.q, self.conn.snd.una
        blocks = [(q.unwrap(left, snd_una), q.unwrap(right, snd_una)) for left, right in sack_blocks]
        lo, hi = blocks[0]
        dsack = lo < ack or (len(blocks) > 1 and blocks[1][0] <= lo and hi <= blocks[1][1])
        if dsack:
            del blocks[0]
        if len(blocks) > 1:
            blocks.sort()
        for lo, hi in blocks:
            fack = q.highest_sacked
            for rec in q.sack(lo, hi):
                if not rec.ever_retrans and rec.end < fack:
                    self.reordering_seen = True
                delivered_recs.append(rec)
        return dsack

    def _detect_loss_on_ack(self, now: float) -> None:
        """RFC 8985 §6.2 step 5, when RACK advanced. With nothing SACKed, lost or resent in the
        open state, everything sent before the newest delivered segment was delivered, so RACK has
        nothing to find. Without SACK: RFC 6582's duplicate ACKs."""
        q = self.q
        if self.conn.sack_ok:
            if self.rack_advanced and (q.sacked or q.lost or q.retrans_out or self.ca_state is not CaState.OPEN):
                self.detect_loss(now)
            else:
                self.rack_advanced = False
        elif self.dupacks >= self._dup_threshold() and self.ca_state is not CaState.LOSS:
            head = q.head()
            if head is not None and not head.lost and not head.sacked and self.ca_state is not CaState.RECOVERY:
                q.mark_lost(head)
                self._lost(head, "dupack")

    def _update_ca_state(self, acked: int) -> None:
        q = self.q
        if self.in_recovery and q.una >= self.recover:
            self._exit_recovery()
        elif self.ca_state is CaState.RECOVERY and acked and not self.conn.sack_ok:
            head = q.head()  # RFC 6582 partial ACK: the next hole is lost too
            if head is not None and not head.lost:
                q.mark_lost(head)
                self._lost(head, "dupack")
        if q.lost and self.ca_state in (CaState.OPEN, CaState.DISORDER, CaState.CWR):
            self._enter_recovery()
        elif self.ca_state is CaState.OPEN and (q.sacked or self.dupacks):
            self._set_ca_state(CaState.DISORDER, "sack" if q.sacked else "dupack")
        elif self.ca_state is CaState.DISORDER and not q.sacked and not self.dupacks:
            self._set_ca_state(CaState.OPEN, "reordering resolved")

    def _rate_sample(self, delivered: int, acked: int, prior_in_flight: int, prior_lost: int,
                     was_reducing: bool, now: float, rtt: float | None) -> None:
        """The delivery counters, one rate sample for the congestion control, then PRR."""
        q = self.q
        self.delivered_total += delivered
        round_start = q.una >= self.round_end
        if round_start:
            self.round_end = q.nxt
            if now > self.round_at and self.round_at:
                self.delivery_rate = (self.delivered_total - self.round_delivered) / (now - self.round_at)
            self.round_delivered, self.round_at = self.delivered_total, now
        reducing = self.ca_state is CaState.RECOVERY and self.reducing
        rs = self.rs  # one sample object per connection, refilled: no allocation per ACK
        if rs is None:
            rs = self.rs = RateSample(0, 0, 0, None, 0, 0, 0, False, False, 0.0)
        rs.delivered, rs.acked, rs.delivered_total, rs.rtt = delivered, acked, self.delivered_total, rtt
        rs.prior_in_flight, rs.in_flight, rs.newly_lost = prior_in_flight, self.in_flight, q.lost - prior_lost
        rs.app_limited, rs.now, rs.round_start = not self.conn.snd.cwnd_limited, now, round_start
        # the ACK that ends a recovery acknowledges data sent under PRR: it does not grow the window
        rs.in_recovery = reducing or was_reducing
        self.cc.on_ack(rs)
        if reducing:
            self._prr(delivered)

    @property
    def mss(self) -> int:
        return self.conn.snd.mss

    def _reno_dupack(self, dup: bool, acked: int) -> int:
        """Without SACK each duplicate ACK stands for one segment that has left (RFC 6675's pipe
        with RFC 5681's duplicate ACKs). Returns the bytes delivered, each counted once (RFC 6937
        §3): a duplicate ACK delivers a segment; a cumulative ACK delivers what it covers beyond the
        segments its duplicate ACKs already counted, at least one segment."""
        prior = self.reno_sacked
        if dup:
            self.dupacks += 1
            self.reno_sacked = min(self.reno_sacked + self.mss, max(0, self.q.flight - self.mss))
            return self.reno_sacked - prior
        if not acked:
            return 0
        self.dupacks = 0
        # one ACKed segment filled the hole; the rest had already drawn duplicate ACKs
        self.reno_sacked = max(0, self.reno_sacked - max(0, acked - self.mss))
        if not self.in_recovery:
            self.reno_sacked = 0
        return max(acked - prior, min(acked, self.mss))

    def _dup_threshold(self) -> int:
        """Three, or fewer when fewer than four segments are out and nothing new can be sent: RFC 5827
        Early Retransmit (without SACK there is no RACK to repair a short flight without a timeout)."""
        snd = self.conn.snd
        outstanding = -(-self.q.flight // self.mss)
        can_send = snd.buf.bytes_from(snd.nxt) and snd.flight < snd.wnd
        if 2 <= outstanding < 4 and not can_send:
            return outstanding - 1  # one lone segment cannot be reported missing by a later one
        return DUP_THRESH

    def _rack_update(self, recs: list[Record], now: float) -> None:
        """RFC 8985 §6.2 step 2: the newest delivered segment sets RACK.xmit_ts and RACK.rtt."""
        min_rtt = self.min_rtt
        for rec in recs:
            rtt = now - rec.xmit
            if rec.ever_retrans and min_rtt is not None and rtt + CLOCK_US < min_rtt:
                continue  # faster than any RTT seen: it answers the original transmission, not this one
            self.rack_rtt = rtt
            self.rack_advanced = True
            if rec.xmit > self.rack_xmit or (rec.xmit == self.rack_xmit and rec.end > self.rack_end):
                self.rack_xmit, self.rack_end = rec.xmit, rec.end

    def _update_reo_wnd(self) -> None:
        """RFC 8985 §6.2 step 4: a D-SACK shows a spurious retransmission (reordering, not loss):
        widen the reordering window by min_RTT/4, at most once per round trip."""
        q = self.q
        if self.dsack_round is not None and q.una < self.dsack_round:
            return
        self.dsack_round = q.nxt
        self.reordering_seen = True
        self.reo_wnd_mult = min(self.reo_wnd_mult + 1, 64)
        self.reo_wnd_persist = REO_WND_PERSIST

    def detect_loss(self, now: float) -> None:
        """RFC 8985 §6.2 step 5: every segment sent before the newest delivered one, by more than the
        reordering window plus RACK.rtt ago, is lost; for the others, when to look again."""
        self.rack_advanced = False
        q = self.q
        reo_wnd = self.reo_wnd()
        timeout = 0.0
        rack_xmit, rack_end, rack_rtt = self.rack_xmit, self.rack_end, self.rack_rtt
        for rec in q:
            if rec.sacked or (rec.lost and not rec.retrans):
                continue
            if not (rack_xmit > rec.xmit or (rack_xmit == rec.xmit and rack_end > rec.end)):
                if not rec.ever_retrans:
                    break  # everything later in the queue was sent later still
                continue
            remaining = rec.xmit + rack_rtt + reo_wnd - now
            if remaining <= 0:
                q.mark_lost(rec)
                self._lost(rec, "rack")
            else:
                timeout = max(timeout, remaining)
        self.reo_timeout = timeout

    def _lost(self, rec: Record, rule: str) -> None:
        self.lost_total += 1
        counts = self.detected_by
        if counts is None:
            counts = self.detected_by = {}
        counts[rule] = counts.get(rule, 0) + 1
        conn = self.conn
        if conn.tracing:
            snd_una = conn.snd.una
            conn.trace("loss", rule=rule, seq=(snd_una + rec.start - self.q.una) & 0xFFFFFFFF, len=len(rec))

    # ------------------------------------------------------------ states
    def _set_ca_state(self, new: CaState, why: str) -> None:
        old = self.ca_state
        if old is new:
            return
        self.ca_state = new
        if self.conn.tracing:
            self.conn.trace("recovery", **{"from": old.value, "to": new.value}, why=why)

    def _enter_recovery(self) -> None:
        """Fast recovery (RFC 6675 §5 with PRR): cut ssthresh once, then let PRR pace the repairs."""
        q = self.q
        self.recover_fs = max(self.cc.cwnd, 1)  # as Linux's prior_cwnd
        self.reducing = self.cc.on_congestion_event(q.flight, self.conn.now)
        self.recover = q.nxt
        self.prr_delivered = self.prr_out = 0
        self.conn.stats.fast_retransmits += 1
        if self.reo_wnd_persist:
            self.reo_wnd_persist -= 1
            if not self.reo_wnd_persist:
                self.reo_wnd_mult = 1
        self._set_ca_state(CaState.RECOVERY, "segment lost")

    def _exit_recovery(self) -> None:
        if self.ca_state is CaState.RECOVERY and self.reducing:
            self.cc.cwnd = max(self.cc.ssthresh, 2 * self.mss)  # RFC 6937: the reduction ends at ssthresh
        self.reno_sacked = 0
        self.dupacks = 0
        q = self.q
        self._set_ca_state(CaState.DISORDER if q.sacked else CaState.OPEN, "recovery point acknowledged")

    def _prr(self, delivered: int, ack: bool = True) -> None:
        """RFC 6937: how much may be sent for this ACK (or, `ack` False, for the reorder timer);
        cwnd becomes pipe + that."""
        self.prr_delivered += delivered
        pipe, ssthresh, mss = self.in_flight, self.cc.ssthresh, self.mss
        if pipe > ssthresh:  # proportional rate reduction
            sndcnt = math.ceil(self.prr_delivered * ssthresh / self.recover_fs) - self.prr_out
        else:  # slow-start reduction bound: RFC 6937 allows one segment more per ACK
            limit = max(self.prr_delivered - self.prr_out, delivered) + (mss if ack else 0)
            sndcnt = min(ssthresh - pipe, limit)
        if not self.prr_out:
            sndcnt = max(sndcnt, mss)  # the fast retransmit goes out whatever the count says
        self.cc.cwnd = pipe + max(sndcnt, 0)

    def on_reorder_timeout(self, now: float) -> None:
        """RACK's reordering window has passed for segments it was waiting on (RFC 8985 §6.2 step 5).
        Recovery entered here goes through PRR as if one segment had been delivered: one segment
        now, the rest as ACKs come, not every lost segment in one burst (as Linux:
        tests/conformance/rack-reorder-timeout-prr.pkt)."""
        self.detect_loss(now)
        if self.q.lost and self.ca_state in (CaState.OPEN, CaState.DISORDER, CaState.CWR):
            self._enter_recovery()
            if self.reducing:
                self._prr(self.mss, ack=False)

    def sent(self, n: int) -> None:
        """The sender put n bytes on the wire (new data or a retransmission)."""
        if self.ca_state is CaState.RECOVERY:
            self.prr_out += n

    # ------------------------------------------------------------- timers
    def on_rto(self, now: float) -> None:
        """RFC 5681 §3.1 / RFC 6675 §5.1 / RFC 8985 §6.3: enter LOSS, cwnd to one segment, and deem
        lost the head and everything sent more than RACK.rtt ago (all of it without SACK).
        The head goes again even if SACKed (RFC 6298 5.4: the earliest segment not cumulatively
        acknowledged): a SACKed head means the receiver reneged (RFC 2018 §8), so every SACK mark
        is forgotten and the data resent (as Linux: tests/conformance/sack-reneging-early-timeout.pkt)."""
        q = self.q
        if self.ca_state is not CaState.LOSS or q.una >= self.recover:
            self.cc.on_rto(q.flight, now)
        else:
            self.cc.cwnd = self.mss  # a second timeout: ssthresh stays (RFC 5681 (4) uses FlightSize once)
        head = q.head()
        if head is not None and head.sacked:
            q.unsack_all()
        self.recover = q.nxt
        sack = self.conn.sack_ok
        for rec in q:
            if rec.sacked:
                continue
            if rec is head or not sack or rec.xmit + self.rack_rtt <= now:
                if rec.retrans or not rec.lost:
                    q.mark_lost(rec)
                    self._lost(rec, "rto")
        self.dupacks = 0
        self.reno_sacked = 0
        self.tlp_end = None
        self._set_ca_state(CaState.LOSS, "retransmission timeout")

    def pto(self, flight_segments: int) -> float | None:
        """RFC 8985 §7.2: the probe timeout, or None when no probe may be scheduled now."""
        conn = self.conn
        if (not conn.sack_ok or self.ca_state is not CaState.OPEN or self.tlp_end is not None
                or conn.rtt.backed_off or not self.q.flight):
            return None
        srtt = conn.rtt.srtt
        if srtt is None:
            return None
        pto = 2 * srtt + (WC_DEL_ACK if flight_segments <= 1 else TLP_MIN)
        return min(pto, conn.rtt.rto)

    def probe_sent(self, retrans: bool) -> None:
        self.tlp_end = self.q.nxt
        self.tlp_retrans = retrans
        self.tlp_dsack = False
        if self.detected_by is None:
            self.detected_by = {}
        self.detected_by["tlp"] = self.detected_by.get("tlp", 0) + 1
        if self.conn.tracing:
            self.conn.trace("loss", rule="tlp", seq=None, len=0)

    def _tlp_process_ack(self, dsack: bool) -> None:
        """RFC 8985 §7.4: a D-SACK during the probe's episode shows both copies arrived; once the
        probe is acknowledged, was there a loss it repaired?"""
        q = self.q
        if dsack:
            self.tlp_dsack = True
        end = self.tlp_end
        if end is None or q.una < end:
            return
        self.tlp_end = None
        if not self.tlp_retrans or self.tlp_dsack:
            return  # a new-data probe, or both copies arrived: nothing was lost
        if self.ca_state in (CaState.OPEN, CaState.DISORDER):
            # The probe repaired a tail loss: cut the window as a fast recovery would, at once.
            self._set_ca_state(CaState.CWR, "tail loss repaired by probe")
            if self.cc.on_congestion_event(q.flight, self.conn.now):
                self.cc.cwnd = max(self.cc.ssthresh, 2 * self.mss)
            self._set_ca_state(CaState.DISORDER if q.sacked else CaState.OPEN, "window cut")
