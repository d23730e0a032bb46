"""SEGMENT ARRIVES (RFC 9293 §3.10.7), hardened per RFC 5961 and RFC 7323.

CLOSED, LISTEN and SYN_SENT have their own handlers. In SYN_RCVD and the synchronized states the
segment goes through the RFC's steps in order, each of which may stop it:

    validate (sequence number, PAWS) → RST → SYN → ACK → URG → text → FIN

Peer input never raises; a segment that is not used is dropped with a DropReason in the trace.
"""

from dataclasses import replace
from typing import TYPE_CHECKING, Final

from ..wire.seq import seq_add, seq_gt, seq_le, seq_lt
from ..wire.tcp import ACK, FIN, RST, SYN, URG, Segment
from . import events as ev
from .reasons import CloseReason, DropReason, Handled
from .recovery import RENEGING_DELAY
from .reset import reset_for
from .state import RECEIVING, State
from .timers import KEEPALIVE, RETRANSMIT, TIME_WAIT_TIMER
from .window import our_shift

if TYPE_CHECKING:
    from .connection import Connection

_DEFAULT_MSS: Final = {4: 536, 6: 1220}  # RFC 9293 §3.7.1 when no MSS option arrives
TS_RECENT_VALID: Final = 24 * 86400.0  # RFC 7323 §5.5: after 24 days idle TS.Recent is no longer trusted


def segment_arrives(conn: "Connection", seg: Segment) -> None:
    st = conn.state
    if st is State.CLOSED:
        rst = reset_for(seg)
        if rst is not None:
            conn._out.append((rst, "reset: no connection"))
    elif st is State.LISTEN:
        _listen(conn, seg)
    elif st is State.SYN_SENT:
        _syn_sent(conn, seg)
    else:
        _synchronized(conn, Incoming(seg))


# ------------------------------------------------------------------ LISTEN
def _listen(conn: "Connection", seg: Segment) -> None:
    f = seg.flags
    if f & RST:
        return conn.drop(seg, DropReason.RST_IN_LISTEN)
    if f & ACK:
        conn.send_reset(seg.ack, "reset: ACK in LISTEN")
        return conn.drop(seg, DropReason.ACK_IN_LISTEN)
    if not f & SYN:
        return conn.drop(seg, DropReason.NO_SYN_IN_LISTEN)
    rcv, snd = conn.rcv, conn.snd
    rcv.start(seg.seq)
    rcv.adv = rcv.nxt
    negotiate(conn, seg, active=False)
    conn.choose_iss()
    snd.wnd = snd.max_wnd = seg.window  # never scaled in a SYN
    snd.wl1, snd.wl2 = seg.seq, snd.iss
    conn.set_state(State.SYN_RCVD, "rcv SYN")
    conn.send_syn()
    # Data on a SYN is not acknowledged here; the peer sends it again (as Linux without TFO:
    # open-syn-data-not-acknowledged.pkt).


# ---------------------------------------------------------------- SYN_SENT
def _syn_sent(conn: "Connection", seg: Segment) -> None:
    f = seg.flags
    snd, rcv = conn.snd, conn.rcv
    if f & ACK and (seq_le(seg.ack, snd.iss) or seq_gt(seg.ack, snd.nxt)):
        if not f & RST:
            conn.send_reset(seg.ack, "reset: unacceptable ACK in SYN_SENT")
        return conn.drop(seg, DropReason.UNACCEPTABLE_ACK)
    if f & RST:
        if f & ACK:  # the ACK acknowledges our SYN: the peer refused
            return conn.terminate(CloseReason.REFUSED, "rcv RST,ACK")
        return conn.drop(seg, DropReason.RST_WITHOUT_ACK)
    if not f & SYN:
        return conn.drop(seg, DropReason.NO_SYN_OR_RST)
    rcv.start(seg.seq)
    # The window our SYN offered (never scaled) now starts at RCV.NXT: data on the SYN,ACK fits in it.
    rcv.adv = seq_add(rcv.nxt, min(rcv.buf.capacity, 0xFFFF))
    negotiate(conn, seg, active=True)
    snd.wnd = snd.max_wnd = seg.window  # a SYN's window is never scaled (RFC 7323 §2.2)
    snd.wl1 = seg.seq
    if f & ACK:
        snd.wl2 = seg.ack
        _syn_acked(conn, seg)
        conn.established("rcv SYN,ACK")
        rcv.ack_now = True
        if seg.payload or f & FIN:  # the rest of the segment, as in ESTABLISHED
            _synchronized(conn, Incoming(replace(seg, seq=seq_add(seg.seq, 1), flags=f & ~SYN), syn=True))
    else:
        snd.wl2 = snd.una
        conn.retries = 0
        conn.retrans_stamp = None
        conn.set_state(State.SYN_RCVD, "rcv SYN (simultaneous open)")
        conn.send_syn()


def _syn_acked(conn: "Connection", seg: Segment) -> None:
    """Our SYN is acknowledged: SND.UNA passes it."""
    sample = conn.snd.acknowledged(seg.ack, seg.options.ts, conn._now)
    if sample is not None:
        conn.rtt_sample(sample)
    conn.recovery.q.acknowledge(1)
    conn.arm_loss_timer(acked=True)


# ------------------------------------------- SYN_RCVD and synchronized states
class Incoming:
    """One segment on its way through the steps; a step may trim it (payload, flags)."""

    __slots__ = ("seg", "flags", "payload", "syn", "fin_acked")

    def __init__(self, seg: Segment, syn: bool = False) -> None:
        self.seg = seg
        self.flags = seg.flags
        self.payload = seg.payload
        self.syn = syn  # it carried a SYN (stripped): its window field is not scaled (RFC 7323 §2.2)
        self.fin_acked = False


def _synchronized(conn: "Connection", inc: Incoming) -> None:
    """The steps in order; each returns False to stop the segment. (Written out rather than looped
    over _STEPS, and the RST, SYN and URG steps entered only when their flag is set: per segment.)"""
    if not _validate(conn, inc):
        return
    f = inc.flags
    if f & RST and not _rst(conn, inc):
        return
    if f & SYN and not _syn(conn, inc):
        return
    if not _ack(conn, inc):
        return
    if f & URG:
        _urg(conn, inc)
    if _text(conn, inc):
        _fin(conn, inc)


def _validate(conn: "Connection", inc: Incoming) -> bool:
    """First: the sequence number (RFC 9293 §3.10.7.4) and PAWS (RFC 7323 §5.3)."""
    seg, f, st, rcv = inc.seg, inc.flags, conn.state, conn.rcv
    if st is State.SYN_RCVD and f & SYN and seg.seq == rcv.irs:
        if not f & ACK:  # the peer's SYN again: our SYN,ACK was lost
            conn.send_syn(note="retransmission: answers a duplicate SYN")
            conn.handled(seg, Handled.DUPLICATE_SYN)
            return False
        # Simultaneous open: the peer's SYN,ACK; its SYN is old news, its ACK is not. Linux ACKs it
        # (RFC 9293 Figure 8 leaves that ACK out; either way the peer is ESTABLISHED already).
        inc.seg = seg = replace(seg, seq=seq_add(seg.seq, 1), flags=f & ~SYN)
        inc.flags = f = seg.flags
        inc.syn = True
        rcv.ack_now = True
    if st is State.TIME_WAIT and not (f & SYN and not f & ACK):  # (a new SYN: the reopening rules)
        return _time_wait(conn, inc)
    ts = seg.options.ts
    if (conn.ts_enabled and ts is not None and not f & RST and seq_lt(ts[0], rcv.ts_recent)
            and conn._now - rcv.ts_recent_at <= TS_RECENT_VALID):  # RFC 7323 §5.5: 24 idle days
        _answer_invalid(conn, seg)  # PAWS (RFC 7323 §5.3), checked once, here
        conn.drop(seg, DropReason.PAWS)
        return False
    if not rcv.acceptable(seg.seq, seg.seg_len):
        if rcv.window == 0 and rcv.zero_window_ack(seg.seq) and not f & (RST | SYN):
            inc.payload = b""  # zero window: take the ACK (and URG) but not the data
            inc.flags &= ~FIN
            if seg.seg_len:  # (data or a FIN left out: say where we are; a pure ACK is not answered)
                rcv.ack_now = True
            return True
        if not f & RST:
            _answer_invalid(conn, seg)
            rcv.note_duplicate(seg.seq, len(seg.payload))
        conn.drop(seg, DropReason.RST_OUT_OF_WINDOW if f & RST else DropReason.OUT_OF_WINDOW)
        return False
    return True


def _time_wait(conn: "Connection", inc: Incoming) -> bool:
    """TIME_WAIT takes segments as Linux's tcp_timewait_state_process() does, where RFC 9293 leaves
    room ("the only thing that can arrive in this state is a retransmission of the remote FIN"; as
    Linux: rst-rfc5961-time-wait, time-wait-unacceptable-data, time-wait-reack-restarts-timer,
    time-wait-bare-ack-updates-ts-recent):
    - a RST at RCV.NXT goes on to the RST check (it ends TIME_WAIT unless rfc1337); any other RST is
      ignored, with no challenge ACK;
    - a bare ACK at RCV.NXT restarts the 2 x MSL timer, updates TS.Recent and draws nothing;
    - anything else (a retransmitted FIN, data, an old duplicate, a segment PAWS rejects) is ACKed
      (at most once per invalid_ratelimit, a retransmitted FIN always) and, if it carries an ACK,
      restarts the timer.
    With time_wait_needs_ack (FreeBSD), a segment without ACK, a FIN included, is dropped unanswered."""
    seg, f, rcv, now = inc.seg, inc.flags, conn.rcv, conn._now
    ts = seg.options.ts
    paws = (conn.ts_enabled and ts is not None and not f & RST and seq_lt(ts[0], rcv.ts_recent)
            and now - rcv.ts_recent_at <= TS_RECENT_VALID)
    restart = 2 * conn.config.msl
    if f & RST:
        if seg.seq == rcv.nxt:
            return True
        conn.drop(seg, DropReason.RST_NOT_EXACT_IN_TIME_WAIT)
        return False
    if not f & ACK and conn.config.time_wait_needs_ack:  # FreeBSD's tcp_twcheck(); RFC 9293's fifth check
        conn.drop(seg, DropReason.NO_ACK)
        return False
    if not paws and seg.seq == rcv.nxt and not seg.seg_len:
        if ts is not None and conn.ts_enabled:  # in the window: its TSval is TS.Recent (RFC 7323 §4.3)
            rcv.ts_recent, rcv.ts_recent_at = ts[0], now
        conn.timers.arm(TIME_WAIT_TIMER, now, restart)
        conn.handled(seg, Handled.ACK_IN_TIME_WAIT)
        return False
    if f & FIN and not paws and seq_add(seg.seq, seg.seg_len) == rcv.nxt:
        rcv.ack_now = True  # a retransmitted FIN: our last ACK was lost
        conn.timers.arm(TIME_WAIT_TIMER, now, restart)
        conn.handled(seg, Handled.RETRANSMITTED_FIN)
        return False
    if not conn._oow_limited():
        rcv.ack_now = True
    if f & ACK or paws:
        conn.timers.arm(TIME_WAIT_TIMER, now, restart)
    conn.handled(seg, Handled.SEGMENT_IN_TIME_WAIT)
    return False


def _answer_invalid(conn: "Connection", seg: Segment) -> None:
    """A segment that failed the sequence or PAWS test draws an ACK; a SYN draws a challenge ACK,
    which also counts against the stack's budget (RFC 5961 §4: for any SYN)."""
    if seg.flags & SYN and conn.config.rfc5961:
        conn.challenge_ack(seg)
    else:
        conn.oow_ack(seg)


def _rst(conn: "Connection", inc: Incoming) -> bool:
    """Second: RST (RFC 5961 §3: only an exact match resets)."""
    if not inc.flags & RST:
        return True
    seg, st = inc.seg, conn.state
    if conn.config.rfc5961 and seg.seq != conn.rcv.nxt:
        conn.challenge_ack(seg)
        conn.drop(seg, DropReason.RST_NOT_EXACT)
        return False
    if st is State.SYN_RCVD:
        if conn.passive:
            conn.set_state(State.LISTEN, "rcv RST")
        else:
            conn.terminate(CloseReason.REFUSED, "rcv RST")
        return False
    if st is State.TIME_WAIT:
        if conn.config.rfc1337:
            conn.drop(seg, DropReason.RST_IN_TIME_WAIT)
            return False
        # Both directions were already finished and acknowledged: for the application the
        # connection ended normally; only the 2xMSL wait is cut short (RFC 1337).
        conn.terminate(CloseReason.NORMAL, "rcv RST in TIME_WAIT")
        return False
    conn.terminate(CloseReason.RESET, "rcv RST")
    return False


def _syn(conn: "Connection", inc: Incoming) -> bool:
    """Fourth: SYN (RFC 5961 §4: a challenge ACK, whatever the sequence number). With rfc5961 off
    (FreeBSD's insecure_syn), RFC 9293's older rule (RFC 793's): a SYN that passed the sequence test is
    an error: a RST goes out and the connection is reset."""
    if not inc.flags & SYN:
        return True
    seg = inc.seg
    if conn.state is State.SYN_RCVD and conn.passive:
        conn.set_state(State.LISTEN, "rcv SYN in SYN_RCVD")
        return False
    if not conn.config.rfc5961:  # the RST carries our own SND.NXT and RCV.NXT, as FreeBSD's tcp_drop() sends it
        conn.send_reset(conn.snd.nxt, "reset: SYN in the window", ack=conn.rcv.nxt)
        conn.terminate(CloseReason.RESET, "rcv SYN in the window")
        return False
    conn.challenge_ack(seg)
    conn.drop(seg, DropReason.SYN_CHALLENGE)
    return False


def _ack(conn: "Connection", inc: Incoming) -> bool:
    """Fifth: ACK. Moves SND.UNA, feeds loss recovery and the congestion control, takes the
    window; in SYN_RCVD completes the handshake; acknowledges our FIN."""
    seg, f, st = inc.seg, inc.flags, conn.state
    snd, rcv = conn.snd, conn.rcv
    if not f & ACK:
        conn.drop(seg, DropReason.NO_ACK)
        return False
    ack = seg.ack
    window = seg.window if inc.syn else seg.window << snd.wscale
    if st is State.SYN_RCVD:
        if not (seq_lt(snd.una, ack) and seq_le(ack, snd.nxt)):
            conn.send_reset(ack, "reset: unacceptable ACK in SYN_RCVD")
            conn.drop(seg, DropReason.UNACCEPTABLE_ACK)
            return False
        snd.wnd = window
        snd.max_wnd = max(snd.max_wnd, window)
        snd.wl1, snd.wl2 = seg.seq, ack
        _syn_acked(conn, seg)
        conn.established("rcv ACK of SYN")
        st = conn.state
    elif seq_gt(ack, snd.nxt):
        conn.challenge_ack(seg)
        conn.drop(seg, DropReason.ACK_ABOVE_SND_NXT)
        return False
    elif conn.config.rfc5961 and seq_lt(ack, seq_add(snd.una, -snd.max_wnd)):
        conn.challenge_ack(seg)
        conn.drop(seg, DropReason.ACK_BELOW_WINDOW)
        return False
    else:
        _data_acked(conn, inc, ack, window)
    # an acceptable segment: the peer is alive; keep-alive idleness starts again (RFC 9293 MUST-26)
    conn.last_recv = conn._now
    conn.keepalive_probes = 0
    if KEEPALIVE in conn.timers.at:
        conn.timers.cancel(KEEPALIVE, conn._now)  # output() re-arms it
    ts = seg.options.ts
    if ts is not None and conn.ts_enabled and seq_le(seg.seq, rcv.last_ack_sent):
        rcv.ts_recent, rcv.ts_recent_at = ts[0], conn._now  # RFC 7323 §4.3, after the checks above
    fin_seq = snd.fin_seq
    inc.fin_acked = fin_acked = fin_seq is not None and seq_gt(snd.una, fin_seq)
    if fin_acked:
        if st is State.CLOSING:
            conn.set_state(State.TIME_WAIT, "rcv ACK of FIN")
            return False
        if st is State.LAST_ACK:
            conn.terminate(CloseReason.NORMAL, "rcv ACK of FIN")
            return False
    return st is not State.TIME_WAIT


def _data_acked(conn: "Connection", inc: Incoming, ack: int, window: int) -> None:
    """An acceptable ACK in a synchronized state: SND.UNA, recovery, the window."""
    snd, seg, now = conn.snd, inc.seg, conn._now
    snd.probes_out = 0  # the peer is alive: zero-window probes are answered
    if snd.una == snd.nxt and ack == snd.una:  # nothing of ours outstanding: nothing to learn but the window
        snd.update_window(seg.seq, ack, window, now)
        return
    # RFC 5681 §2: a duplicate ACK carries no data; the segment's own payload counts even when a
    # zero window kept us from taking it (a zero-window probe is not a duplicate ACK).
    dup = snd.is_duplicate_ack(ack, len(seg.payload), inc.flags, window)
    rec = conn.recovery
    ack_pos = rec.q.unwrap(ack, snd.una)
    sample = None
    advanced = seq_lt(snd.una, ack)
    if advanced:
        conn.soft_error = None  # something got through: an earlier ICMP error no longer stands
        sample = snd.acknowledged(ack, seg.options.ts, now)  # (TSecr's; on_ack prefers the send times)
        conn.retries = 0
        conn.retrans_stamp = None
    sacked_before = rec.q.sacked
    rec.on_ack(ack_pos, seg.options.sack if conn.sack_ok else (), dup, now, sample)
    snd.update_window(seg.seq, ack, window, now, advanced)
    if rec.reneging:  # time out early, then resend as after an RTO (as Linux: sack-reneging-early-timeout.pkt)
        srtt = conn.rtt.srtt or 0.0
        conn.timers.arm(RETRANSMIT, now, max(srtt / 2, RENEGING_DELAY))
    # the loss timer restarts only on news: the reorder timer only when this ACK ran loss detection
    # (RFC 8985 §6.2 step 5), or a peer that keeps sending would keep pushing it back
    elif advanced or rec.q.sacked != sacked_before or rec.reo_timeout > 0:
        conn.arm_loss_timer(acked=True)


def _urg(conn: "Connection", inc: Incoming) -> bool:
    """Sixth: URG."""
    if inc.flags & URG and conn.state in RECEIVING:
        conn.rcv.urgent(inc.seg.seq, inc.seg.urgent)
    return True


def _text(conn: "Connection", inc: Incoming) -> bool:
    """Seventh: segment text."""
    rcv = conn.rcv
    if inc.payload and conn.state in RECEIVING:
        seg = inc.seg
        if rcv.closed and seq_gt(seq_add(seg.seq, len(inc.payload)), rcv.nxt):
            # nobody will read it: tell the peer its data is lost (RFC 9293 §3.6.1 SHLD-3), with the
            # RST Linux sends (tcp_v4_send_reset): <SEQ=SEG.ACK><CTL=RST>, or an ACK of the segment
            if inc.flags & ACK:
                conn.send_reset(seg.ack, "data after close")
            else:
                conn.send_reset(0, "data after close", ack=seq_add(seg.seq, seg.seg_len))
            conn.terminate(CloseReason.ABORTED, "data after close")
            return False
        rcv.text(seg.seq, inc.payload)
    if rcv.urgent_advanced:
        rcv.urgent_advanced = False
        conn.events_out.append(ev.Urgent(rcv.urgent_pending))
    return True


def _fin(conn: "Connection", inc: Incoming) -> bool:
    """Eighth: FIN, once everything before it has arrived."""
    st, rcv = conn.state, conn.rcv
    if inc.flags & FIN and st not in (State.CLOSE_WAIT, State.CLOSING, State.LAST_ACK):
        rcv.fin_arrived(seq_add(inc.seg.seq, len(inc.seg.payload)))
    if st in RECEIVING and rcv.take_fin():
        conn.events_out.append(ev.EndOfStream())
        if st is State.ESTABLISHED and conn.config.delayed_ack and conn.config.fin_ack_delayed and not rcv.ack_now:
            # As Linux (ping-pong on a FIN; close-passive-four-way.pkt): the ACK waits for the delayed-ACK timer, so an
            # application that closes at once sends its FIN on it: a three-segment close. (On a
            # connection that never carried data the wait is one clock tick: Linux's ATO is still 0.)
            # With fin_ack_delayed off, FreeBSD's rule (TF_ACKNOW on a FIN): the ACK goes at once.
            rcv.ack_delayed = True
        else:
            rcv.ack_now = True
        if st is State.ESTABLISHED:
            rcv.pingpong = True
        if st is State.ESTABLISHED:
            conn.set_state(State.CLOSE_WAIT, "rcv FIN")
        elif st is State.FIN_WAIT_1:
            if inc.fin_acked:
                conn.set_state(State.TIME_WAIT, "rcv FIN,ACK")
            else:
                conn.set_state(State.CLOSING, "rcv FIN (simultaneous close)")
        elif st is State.FIN_WAIT_2:
            conn.set_state(State.TIME_WAIT, "rcv FIN")
    if conn.state is State.FIN_WAIT_1 and inc.fin_acked:
        conn.set_state(State.FIN_WAIT_2, "rcv ACK of FIN")
    return True


_STEPS: Final = (_validate, _rst, _syn, _ack, _urg, _text, _fin)


# ------------------------------------------------------------ SYN cookies
def accept_cookie(conn: "Connection", seg: Segment, iss: int, peer_mss: int, ts_offset: int) -> None:
    """Rebuild SYN_RCVD from a validated SYN cookie (RFC 4987 §3.6), then take the ACK as usual.
    Window scale and SACK come back in the TSecr when timestamps are on (syncookies.py)."""
    from . import syncookies

    cfg, rcv, snd = conn.config, conn.rcv, conn.snd
    rcv.start(seq_add(seg.seq, -1))
    rcv.adv = seq_add(rcv.nxt, min(rcv.buf.capacity, 0xFFFF))  # the SYN,ACK offered this, unscaled
    ts = seg.options.ts
    conn.ts_enabled = cfg.timestamps and ts is not None
    wscale, sack = syncookies.options_from_tsecr(ts[1]) if ts is not None else (None, False)
    if conn.ts_enabled and ts is not None:
        rcv.ts_recent, rcv.ts_recent_at = ts[0], conn._now
    conn.peer_offered_wscale = wscale is not None
    if cfg.window_scaling and wscale is not None and conn.ts_enabled:
        snd.wscale, rcv.wscale = wscale, our_shift(cfg)
    else:
        snd.wscale = rcv.wscale = 0
    conn.sack_ok = cfg.sack and sack and conn.ts_enabled
    snd.mss = max(64, min(peer_mss, conn.our_mss) - (12 if conn.ts_enabled else 0))
    snd.start(iss)
    conn.recovery.q.reset(0)
    conn.recovery.q.nxt = 1  # the SYN (it went out as the cookie SYN,ACK)
    conn._ts_offset = ts_offset
    snd.wl1, snd.wl2 = rcv.irs, iss
    conn.set_state(State.SYN_RCVD, "SYN cookie validated")


# --------------------------------------------------------- the peer's SYN
def negotiate(conn: "Connection", seg: Segment, active: bool) -> None:
    """Options from the peer's SYN (RFC 7323 §2.2, §3.2; RFC 2018; MSS, RFC 9293 §3.7.1)."""
    cfg, o = conn.config, seg.options
    local_addr = conn.local[0] if conn.local else None
    version = getattr(local_addr, "version", 4)
    peer_mss = o.mss if o.mss else _DEFAULT_MSS.get(version, 536)
    conn.peer_offered_wscale = o.wscale is not None
    snd, rcv = conn.snd, conn.rcv
    if cfg.window_scaling and o.wscale is not None:
        snd.wscale = o.wscale
        if not active:
            rcv.wscale = our_shift(cfg)
    else:
        snd.wscale = rcv.wscale = 0
    conn.ts_enabled = cfg.timestamps and o.ts is not None
    if conn.ts_enabled and o.ts is not None:
        rcv.ts_recent, rcv.ts_recent_at = o.ts[0], conn._now
    conn.sack_ok = cfg.sack and o.sack_permitted
    snd.mss = max(64, min(peer_mss, conn.our_mss) - (12 if conn.ts_enabled else 0))
