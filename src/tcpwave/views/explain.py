"""What `--explain` adds to a ladder: beside each step, the application call behind it, the RFC
reason, the timers (armed, fired, cancelled, with their times), and at the moments textbooks ask
about, a one-line note in plain words. Written from RFC 9293; shared by the terminal ladder and
the HTML report's step text."""

# the application calls behind the reasons the core records for a state change
_CALLS = {"active OPEN": "connect()", "passive OPEN": "listen()", "CLOSE": "close() or shutdown()",
          "ABORT": "abort()"}
# timers worth a line when armed or cancelled; the busy ones (delayed ACK, loss probe, pacing)
# only when they fire
_QUIET = {"delayed_ack", "tlp", "pacing", "rack_reorder", "sws_override"}
_TIMER_NAMES = {"retransmit": "retransmission timer (RTO)", "time_wait": "TIME_WAIT's 2×MSL timer",
                "fin_wait_2": "FIN_WAIT_2 timer (fin_timeout)", "persist": "persist timer",
                "keepalive": "keep-alive timer", "delayed_ack": "delayed-ACK timer", "tlp": "loss probe timer",
                "user_timeout": "user timeout", "rack_reorder": "RACK reordering timer", "pacing": "pacing timer"}


def state_text(e: dict) -> str:
    """The call or the reason behind a state change."""
    why = e.get("why", "")
    call = _CALLS.get(why)
    return f"{call}: {_why_words(why)}" if call else _why_words(why)


def _why_words(why: str) -> str:
    return {"active OPEN": "an active OPEN sends a SYN", "passive OPEN": "a passive OPEN waits for a SYN",
            "CLOSE": "our FIN goes out once the data before it has",
            "2MSL timeout": "2×MSL passed: the 4-tuple is free again"}.get(why, why)


def timer_text(e: dict) -> str | None:
    name, action = e.get("name", ""), e.get("action", "")
    if name in _QUIET and action != "fire":
        return None
    label = _TIMER_NAMES.get(name, name)
    if action == "arm":
        return f"{label} armed: fires in {e.get('delay', 0):.3f} s"
    if action == "fire":
        return f"{label} fired"
    if action == "cancel":
        return f"{label} cancelled"
    if action == "give_up":
        return f"{label}: gave up"
    return None


def notes(events: list[dict], msl: float = 30.0) -> dict[int, str]:
    """Plain-language notes at the textbook moments: event index -> note."""
    out: dict[int, str] = {}
    syn_seen = False
    quick_seen = False
    data_from: set[str] = set()
    rcvd_at: dict[str, float] = {}
    for i, e in enumerate(events):
        kind, host = e["type"], e.get("host", "")
        if kind == "send" and "SYN" in e["flags"].split(",") and not syn_seen:
            syn_seen = True
            out[i] = ("a SYN carries no data but takes one sequence number, so the ACK of it reads ISN+1; "
                      "a FIN does the same")
        elif kind == "send" and e.get("len"):
            data_from.add(host)
        elif (kind == "send" and e["flags"] == "ACK" and not quick_seen and data_from - {host}
              and e.get("note") != "window update"):
            quick_seen = True
            out[i] = ("the first data of a connection is ACKed at once (quick-ACK mode, as Linux); once the "
                      "exchange goes back and forth, ACKs wait up to 40 ms to ride on a reply (delayed ACK)")
        elif kind == "state":
            to, frm = e["to"], e["from"]
            if to == "SYN_RCVD":
                rcvd_at[host] = e["t"]
            elif frm == "SYN_RCVD" and to == "ESTABLISHED" and host in rcvd_at:
                out[i] = (f"SYN_RCVD lasted {(e['t'] - rcvd_at[host]) * 1000:.3f} ms: one trip of the "
                          "handshake's last ACK, which is why it is rarely seen")
            elif to == "CLOSE_WAIT":
                out[i] = ("the peer has finished sending, this side has not: its FIN comes when its application "
                          "closes, so the FIN just received is ACKed on its own (unless the application closes "
                          "within the delayed ACK): four segments to close, three to open")
            elif frm == "FIN_WAIT_1" and to == "TIME_WAIT":
                out[i] = "the peer's FIN came with the ACK of ours: three segments closed this connection"
            elif to == "TIME_WAIT":
                out[i] = (f"TIME_WAIT waits 2×MSL ({2 * msl:g} s): if the last ACK was lost, the peer's FIN comes "
                          "again and is answered; and segments of this connection still in the network die "
                          "out before the same 4-tuple can be used again")
    return out


def state_notes(events: list[dict], msl: float = 30.0) -> dict[tuple, str]:
    """The notes on state changes, by (t, host, from, to): for views that list steps their own way."""
    return {(e["t"], e.get("host"), e["from"], e["to"]): text for i, text in notes(events, msl).items()
            if (e := events[i])["type"] == "state"}
