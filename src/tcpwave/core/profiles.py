"""Stack profiles: named groups of Config knobs for where the RFCs leave room and stacks choose.

`linux` is tcpwave's default (every knob as Config has it). `freebsd` takes FreeBSD's choices, as its
own packetdrill suite (freebsd-net/tcp-testsuite) expects them; `rfc` takes RFC 9293's wording where
Linux departs from it. Each entry names where the choice comes from (a sysctl, a man page or the
code), so that docs/packetdrill.md can show it; tests/conformance/profile-*.pkt check each knob.
"""

from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Choice:
    value: Any
    source: str  # where the stack's choice is documented or made


# knob -> profile -> its choice there (a knob a profile leaves out keeps Config's default, Linux's)
CHOICES: Final[dict[str, dict[str, Choice]]] = {
    "fin_ack_delayed": {
        "linux": Choice(True, "tcp_input.c tcp_fin(): inet_csk_schedule_ack(), the delayed-ACK timer"),
        "freebsd": Choice(False, "tcp_input.c, FIN processing: TF_ACKNOW"),
        "rfc": Choice(False, "RFC 9293 §3.10.7.4, eighth: \"send an acknowledgment for the FIN\""),
    },
    "quickack": {
        "linux": Choice(16, "tcp_input.c tcp_enter_quickack_mode(), TCP_MAX_QUICKACKS"),
        "freebsd": Choice(0, "tcp_input.c DELAY_ACK(): no quick-ACK mode"),
        "rfc": Choice(0, "RFC 9293 §3.8.6.3 (SHLD-18/19): delay, ACK every second full segment"),
    },
    "delayed_ack": {
        "linux": Choice(0.040, "TCP_ATO_MIN, then adaptive"),
        "freebsd": Choice(0.040, "sysctl net.inet.tcp.delacktime (TCPTV_DELACK, hz/25: 40 ms)"),
    },
    "closing_resends_fin": {
        "linux": Choice(False, "tcp_input.c tcp_fin(): a bare ACK in CLOSING"),
        "freebsd": Choice(True, "tcp_fsm.h tcp_outflags[], used by tcp_output(): CLOSING sends TH_FIN and TH_ACK"),
        "rfc": Choice(False, "RFC 9293 §3.10.7.4, eighth: an acknowledgment for the FIN"),
    },
    "time_wait_needs_ack": {
        "linux": Choice(False, "tcp_minisocks.c tcp_timewait_state_process(): a FIN is ACKed"),
        "freebsd": Choice(True, "tcp_timewait.c tcp_twcheck(): \"Drop the segment if it does not contain an ACK\""),
        "rfc": Choice(True, "RFC 9293 §3.10.7.4, fifth: \"if the ACK bit is off, drop the segment\""),
    },
    "rfc1337": {
        "linux": Choice(False, "sysctl net.ipv4.tcp_rfc1337 (default 0)"),
        "freebsd": Choice(True, "tcp_timewait.c tcp_twcheck(): a RST is dropped (\"RFC 1337\")"),
    },
    "close_wait_reset_epipe": {
        "linux": Choice(True, "tcp_input.c tcp_reset(): EPIPE in CLOSE_WAIT"),
        "freebsd": Choice(False, "tcp_input.c: so_error = ECONNRESET in every synchronized state"),
        "rfc": Choice(False, "RFC 9293 §3.10.7.4, RST in CLOSE_WAIT: \"reset\" responses"),
    },
    "drop_synfin": {
        "linux": Choice(True, "tcp_input.c tcp_rcv_state_process(): LISTEN drops SYN with FIN"),
        "freebsd": Choice(False, "sysctl net.inet.tcp.drop_synfin (default 0), tcp(4)"),
        "rfc": Choice(False, "RFC 9293 §3.10.7.2: the SYN is processed"),
    },
    "rfc5961": {
        "linux": Choice(True, "RFC 5961 challenge ACKs, always on"),
        "freebsd": Choice(True, "sysctl net.inet.tcp.insecure_rst, insecure_syn (default 0), tcp(4)"),
    },
    "rcv_buffer_mss_round": {
        "linux": Choice(False, "tcpwave keeps recv_buffer (Linux sizes rcvbuf from tcp_rmem)"),
        "freebsd": Choice(True, "tcp_input.c tcp_mss(): roundup(so_rcv.sb_hiwat, mss): 65536 -> 65700"),
    },
    "rcv_wnd_from_buffer": {
        "linux": Choice(False, "tcp_sequence(): against the window offered (rcv_wup + rcv_wnd)"),
        "freebsd": Choice(True, "tcp_input.c: rcv_wnd = imax(sbspace(), rcv_adv - rcv_nxt)"),
        "rfc": Choice(False, "RFC 9293 §3.10.7.4: RCV.WND, the window offered"),
    },
    "rcv_sws_free": {
        "linux": Choice(False, "tcpwave: the edge moves by at least min(buffer/2, MSS) (RFC 9293 §3.8.6.2.2)"),
        "freebsd": Choice(True, "tcp_output.c: recwin is all of sbspace() unless < min(sb_hiwat/4, maxseg)"),
    },
    "maxsockbuf": {
        "linux": Choice(0, "tcpwave scales for recv_buffer (Linux scales for tcp_rmem[2])"),
        "freebsd": Choice(2 << 20, "sysctl kern.ipc.maxsockbuf (2 MiB: window scale 6)"),
    },
    "recv_buffer": {
        "linux": Choice(256 * 1024, "tcpwave's default (Linux autotunes from tcp_rmem)"),
        "freebsd": Choice(65536, "sysctl net.inet.tcp.recvspace"),
    },
    "send_buffer": {
        "linux": Choice(256 * 1024, "tcpwave's default (Linux autotunes from tcp_wmem)"),
        "freebsd": Choice(32768, "sysctl net.inet.tcp.sendspace"),
    },
    "option_layout": {
        "linux": Choice("linux", "tcp_output.c tcp_options_write(): mss, sackOK, TS, nop, wscale"),
        "freebsd": Choice("freebsd", "tcp_output.c tcp_addoptions(): mss, nop, wscale, sackOK, TS; EOL padding"),
    },
}

NAMES: Final = ("linux", "freebsd", "rfc")


def settings(name: str) -> dict[str, Any]:
    """The Config fields the profile sets (ValueError for an unknown name)."""
    if name not in NAMES:
        raise ValueError(f"unknown profile {name!r}; known: {', '.join(NAMES)}")
    return {knob: by[name].value for knob, by in CHOICES.items() if name in by}
