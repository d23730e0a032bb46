"""Per-connection (and per-stack) settings. Everything an RFC leaves open is here."""

from dataclasses import dataclass

from ..cc import REGISTRY


@dataclass(frozen=True, slots=True)
class Config:
    msl: float = 30.0  # seconds; TIME_WAIT lasts 2 x MSL (RFC 9293 MUST-13)
    rto_initial: float = 1.0  # RFC 6298 (2.1)
    rto_min: float = 0.2  # as Linux (TCP_RTO_MIN; data-rto-min-linux.pkt); RFC 6298 (2.4) says 1 s: rto_min=1.0
    rto_max: float = 120.0  # RFC 6298 (2.5): at least 60 s; Linux uses 120 s
    clock_granularity: float = 0.001  # G in RFC 6298
    syn_retries: int = 6  # SYN retransmissions before ETIMEDOUT (Linux: 6)
    syn_linear_timeouts: int = 4  # the first SYN retransmissions come 1 RTO apart, not doubling (Linux 6.7+)
    synack_retries: int = 5  # SYN,ACK retransmissions before giving up (Linux: 5)
    data_retries: int = 15  # R2 of RFC 9293 §3.8.3 as a count (Linux tcp_retries2: 15)
    mss: int | None = None  # our MSS; default from the MTU the stack knows
    send_buffer: int = 256 * 1024
    recv_buffer: int = 256 * 1024
    window_scaling: bool = True  # RFC 7323
    timestamps: bool = True  # RFC 7323
    sack: bool = True  # SACK-permitted offered / accepted (RFC 2018)
    rfc5961: bool = True  # challenge ACKs for in-window RST and for SYN (RFC 5961)
    drop_synfin: bool = True  # drop a SYN+FIN to a listener, as Linux does (FreeBSD: net.inet.tcp.drop_synfin)
    rfc1337: bool = False  # True: ignore RST in TIME_WAIT (Linux default: False)
    time_wait_reopen: bool = True  # accept a new SYN in TIME_WAIT (RFC 9293 §3.6.1, RFC 6191)
    nodelay: bool = False  # True turns Nagle's algorithm off (TCP_NODELAY)
    sws_override: float = 0.2  # sender SWS: send a small window-limited segment after this long
    delayed_ack: float = 0.040  # seconds; 0 acknowledges every segment at once (RFC 9293: < 0.5 s)
    quickack: int = 16  # as Linux (ack-delayed-timer.pkt): the first data (and data after an idle RTO) is
    #                     ACKed at once, up to this many ACKs, before ACKs are delayed (TCP_MAX_QUICKACKS);
    #                     0: delay from the start
    initial_cwnd_segments: int = 10  # RFC 6928
    congestion_control: str = "cubic"  # a name in tcpwave.cc.REGISTRY: cubic, reno, bbr-lite
    backlog: int = 128  # default listen backlog: the accept queue (established, not yet accepted)
    max_syn_backlog: int = 256  # the SYN queue: half-open connections per listener (Linux tcp_max_syn_backlog)
    syncookies: int = 1  # 0 never, 1 when the SYN queue is full, 2 always (Linux tcp_syncookies)
    abort_on_overflow: bool = False  # accept queue full: True resets the final ACK's sender; False drops it
    keepalive: bool = False  # RFC 9293 §3.8.4: MUST default to off
    keepalive_idle: float = 7200.0  # seconds without a segment before the first probe (>= 2 h)
    keepalive_interval: float = 75.0  # between unanswered probes
    keepalive_count: int = 9  # unanswered probes before the connection is dropped
    user_timeout: float | None = None  # abort when no sent data is acknowledged for this long
    # challenge ACKs per second, per stack (RFC 5961 §7's throttle). Linux's tcp_challenge_ack_limit was
    # 1000 until 2022 and is INT_MAX since (off: only the per-connection invalid_ratelimit); tcpwave keeps 1000
    challenge_ack_limit: int = 1000
    invalid_ratelimit: float = 0.5  # seconds between ACKs to out-of-window segments (Linux tcp_invalid_ratelimit)
    rst_limit: int = 1000  # RSTs per second, per stack, to segments that match no connection
    fin_timeout: float = 60.0  # an orphan (close()d) FIN_WAIT_2 is reset after this long (Linux tcp_fin_timeout)
    # Per stack: the memory budget of every connection's buffers, in bytes (as Linux's tcp_mem, which
    # is in pages and sized from RAM: ~4.7%, 6.25%, 9.4% of it). core/memory.py says what each mark does.
    mem_low: int = 96 << 20  # pressure ends below this
    mem_pressure: int = 128 << 20  # above it: windows stop growing, out-of-order data is pruned
    mem_high: int = 192 << 20  # at it: data needing memory is dropped, SYNs too; the largest consumers are reset
    max_connections: int = 0  # per stack: a SYN finding this many connections (not TIME_WAIT) is dropped; 0: no limit
    # Choices where stacks differ; core/profiles.py groups them (--profile freebsd|linux|rfc) and
    # docs/configuration.md says what each does. The defaults are Linux's.
    fin_ack_delayed: bool = True  # the ACK of a FIN in ESTABLISHED waits for the delayed-ACK timer; off: at once
    closing_resends_fin: bool = False  # in CLOSING, the ACK of the peer's FIN carries our FIN again
    time_wait_needs_ack: bool = False  # TIME_WAIT drops a segment without ACK, a FIN too
    close_wait_reset_epipe: bool = True  # a RST in CLOSE_WAIT is reported as EPIPE; off: ECONNRESET
    rcv_buffer_mss_round: bool = False  # at ESTABLISHED, round recv_buffer up to a multiple of the MSS
    rcv_wnd_from_buffer: bool = False  # accept segments up to the buffer's free space, past the window offered
    rcv_sws_free: bool = False  # offer all free space once it is >= min(buffer/4, MSS); off: edge moves by MSS
    maxsockbuf: int = 0  # the window scale offered is chosen for this many bytes; 0: for recv_buffer
    noopt: bool = False  # no options at all on our SYN or SYN,ACK (FreeBSD's TCP_NOOPT; Linux has none)
    option_layout: str = "linux"  # how a SYN's options are laid out: "linux" or "freebsd" (wire/options.py)

    def __post_init__(self) -> None:
        if not 0 <= self.delayed_ack < 0.5:
            raise ValueError(f"delayed_ack must be in [0, 0.5) seconds (RFC 9293 §3.8.6.3), got {self.delayed_ack}")
        if self.msl <= 0 or self.rto_min <= 0 or self.rto_max < self.rto_min:
            raise ValueError("msl and rto_min must be positive and rto_max >= rto_min")
        if self.congestion_control not in REGISTRY:  # told now, not at the first connect
            raise ValueError(f"unknown congestion control {self.congestion_control!r}; "
                             f"known: {', '.join(sorted(REGISTRY))}")
        if not 0 <= self.maxsockbuf <= 1 << 30:
            raise ValueError(f"maxsockbuf must be in 0..{1 << 30} bytes, got {self.maxsockbuf}")
        if self.option_layout not in ("linux", "freebsd"):
            raise ValueError(f"option_layout must be linux or freebsd, got {self.option_layout!r}")
        if not 0 <= self.mem_low <= self.mem_pressure <= self.mem_high:
            raise ValueError("the memory marks must satisfy 0 <= mem_low <= mem_pressure <= mem_high")
