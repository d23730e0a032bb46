"""What `--explain` adds to a ladder: beside each step, the application call behind it, the RFC
reason, the timers (armed, fired, cancelled, with their times), and at the moments textbooks ask
about, a one-line note in plain words. Written from RFC 9293; shared by the terminal ladder and
the HTML report's step text."""

from ..wire.seq import seq_diff
from .lessons import lesson_notes
from .lessons import segment_key as _key

# the application calls behind the reasons the core records for a state change
_CALLS = {"active OPEN": "connect()", "passive OPEN": "listen()", "ABORT": "abort()"}
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
    call = e.get("call") or _CALLS.get(why)  # the log names close() or shutdown() since it matters
    return f"{call}: {_why_words(why, call)}" if call else _why_words(why, call)


def _why_words(why: str, call: str | None) -> str:
    if why == "CLOSE":
        return {"close()": "a CLOSE: no more sending, and no more reading",
                "shutdown()": "a CLOSE of the sending direction only: reading goes on (half-close)"}.get(call or "",
                                                                                                     "a CLOSE")
    return {"active OPEN": "an active OPEN sends a SYN", "passive OPEN": "a passive OPEN waits for a SYN",
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
    """Plain-language notes at the textbook moments, each computed from the events it explains
    (durations, who ACKed what, segment counts): event index -> note. `msl` is used only when the
    events do not show the TIME_WAIT timer (a capture)."""
    out: dict[int, str] = {}
    syn_seen = False
    quick_seen = False
    data_from: set[str] = set()
    rcvd_at: dict[str, float] = {}
    for i, e in enumerate(events):
        kind, host = e["type"], e.get("host", "")
        if kind == "send" and "SYN" in e["flags"].split(",") and not syn_seen:
            syn_seen = True
            out[i] = _syn_note(events, e)
        elif kind == "send" and e.get("len"):
            data_from.add(host)
        elif (kind == "send" and e["flags"] == "ACK" and not quick_seen and data_from - {host}
              and e.get("note") != "window update"):
            quick_seen = True
            text = _first_ack_note(events, i)
            if text:
                out[i] = text
        elif kind == "state":
            to, frm = e["to"], e["from"]
            if to == "SYN_RCVD":
                rcvd_at[host] = e["t"]
            elif frm == "SYN_RCVD" and to == "ESTABLISHED" and host in rcvd_at:
                out[i] = _syn_rcvd_note(events, i, rcvd_at[host])
            elif to == "CLOSE_WAIT":
                out[i] = _close_wait_note(events, i)
            elif to == "TIME_WAIT":
                out[i] = _time_wait_note(events, i, msl)
    closing = _close_note(events)
    if closing is not None:
        at, text = closing
        out[at] = f"{out[at]}. {text}" if at in out else text
    for at, text in lesson_notes(events).items():
        out[at] = f"{out[at]}. {text}" if at in out else text
    return out


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def _arrivals(events: list[dict], host: str) -> list[dict]:
    """What reached `host`: its recv events, or in a capture (no recv events) the peer's sends."""
    recvs = [e for e in events if e["type"] == "recv" and e["host"] == host]
    return recvs or [e for e in events if e["type"] == "send" and e["host"] != host]


def _sent_before(events: list[dict], arrival: dict) -> dict:
    """The send of the segment that made this arrival (the latest one with the same header)."""
    if arrival["type"] == "send":
        return arrival
    found = [e for e in events if e["type"] == "send" and _key(e) == _key(arrival) and e["t"] <= arrival["t"]]
    return found[-1] if found else arrival


def _covers(ack: int, end: int) -> bool:
    return seq_diff(ack, end) >= 0


def _syn_note(events: list[dict], syn: dict) -> str:
    text = "a SYN carries no data but takes one sequence number"
    ack = next((e for e in events if e["type"] == "send" and e["host"] != syn["host"] and e["t"] >= syn["t"]
                and "ACK" in e["flags"].split(",") and e["ack"] == (syn["seq"] + 1) % 2**32), None)
    if ack is not None:
        text += f": {ack['host']}'s ACK of it, at {ack['t']:.6f} s, reads ack=ISN+1 (1 in the ladder)"
    fin = next((e for e in events if e["type"] == "send" and "FIN" in e["flags"].split(",")), None)
    if fin is not None:
        end = (fin["seq"] + fin["len"] + 1) % 2**32
        fin_ack = next((e for e in events if e["type"] == "send" and e["host"] != fin["host"] and e["t"] >= fin["t"]
                        and "ACK" in e["flags"].split(",") and e["ack"] == end), None)
        if fin_ack is not None:
            text += (f"; so does the FIN {fin['host']} sent at {fin['t']:.6f} s: the ACK of it reads its "
                     "sequence number + 1")
    return text


def _first_ack_note(events: list[dict], i: int) -> str | None:
    ack = events[i]
    host = ack["host"]
    data = [e for e in _arrivals(events, host) if e.get("len") and e["t"] <= ack["t"]
            and _covers(ack["ack"], (e["seq"] + e["len"]) % 2**32)]
    if not data:
        return None
    got = data[-1]
    waited = ack["t"] - got["t"]
    reached = f"reached {host}" if got["type"] == "recv" else "the capture saw"
    text = (f"this ACK answers the {got['len']} bytes that {reached} at {got['t']:.6f} s: "
            + ("at once" if waited < 1e-6 else f"{_ms(waited)} later"))
    fired = sum(1 for e in events if e["type"] == "timer" and e["host"] == host and e.get("name") == "delayed_ack"
                and e.get("action") == "fire")
    if fired:
        text += (f"; later in this run {host} held ACKs to ride on a reply, and its delayed-ACK timer fired "
                 + ("once" if fired == 1 else f"{fired} times"))
    return text


def _syn_rcvd_note(events: list[dict], i: int, entered: float) -> str:
    done = events[i]
    host, left = done["host"], done["t"]
    text = f"SYN_RCVD lasted {_ms(left - entered)}, from the peer's SYN arriving to the ACK of {host}'s own SYN"
    syn_acks = [e for e in events if e["type"] == "send" and e["host"] == host and e["flags"] == "SYN,ACK"
                and entered <= e["t"] <= left]
    back = [e for e in _arrivals(events, host) if e["t"] <= left]
    if not syn_acks or not back:
        return text
    ack_sent = _sent_before(events, back[-1])  # the segment that completed the handshake
    peer = ack_sent["host"]
    got = [e for e in events if e["type"] == "recv" and e["host"] == peer and e["flags"] == "SYN,ACK"
           and entered <= e["t"] <= ack_sent["t"]]
    answered = _sent_before(events, got[-1]) if got else syn_acks[-1]
    carried = f" (on {peer}'s first {back[-1]['len']} bytes of data)" if back[-1].get("len") else ""
    if answered is syn_acks[0]:
        if got:
            text += (f": one round trip, the SYN,ACK took {_ms(got[-1]['t'] - answered['t'])} to arrive and the "
                     f"ACK{carried} {_ms(left - ack_sent['t'])} to come back")
        return text
    first = syn_acks[0]
    lost_here = [e for e in events if e["type"] == "drop" and e.get("where") == "link" and first["t"] <= e["t"]
                 < answered["t"]]
    if any(e["host"] == host and e.get("flags") == "SYN,ACK" and e["t"] == first["t"] for e in lost_here):
        fate = "was lost"
    else:
        lost_ack = next((e for e in lost_here if e["host"] == peer and e.get("flags") == "ACK"), None)
        fate = (f"was answered by an ACK that was lost (sent at {lost_ack['t']:.6f} s)" if lost_ack is not None
                else "was not answered")
    text += (f": the SYN,ACK sent at {first['t']:.6f} s {fate}, so it lasted until the SYN,ACK sent again at "
             f"{answered['t']:.6f} s was answered, by the ACK{carried} sent at {ack_sent['t']:.6f} s")
    return text


def _close_wait_note(events: list[dict], i: int) -> str:
    e = events[i]
    host, t = e["host"], e["t"]
    fins = [a for a in _arrivals(events, host) if "FIN" in a["flags"].split(",") and a["t"] <= t]
    text = f"the peer has finished sending; {host} may still send until its application closes"
    if not fins:
        return text
    end = (fins[-1]["seq"] + fins[-1]["len"] + 1) % 2**32
    ack = next((s for s in events if s["type"] == "send" and s["host"] == host and s["t"] >= t
                and "ACK" in s["flags"].split(",") and _covers(s["ack"], end)), None)
    own_fin = next((s for s in events if s["type"] == "send" and s["host"] == host and s["t"] >= t
                    and "FIN" in s["flags"].split(",")), None)
    if ack is None:
        return text + "; it never ACKed the peer's FIN in this run"
    if "FIN" in ack["flags"].split(","):
        return text + f"; its application closed in time for its own FIN at {ack['t']:.6f} s to carry the ACK"
    timer = any(x["type"] == "timer" and x["host"] == host and x.get("name") == "delayed_ack"
                and x.get("action") == "fire" and x["t"] == ack["t"] for x in events)
    seen = "it arrived" if fins[-1]["type"] == "recv" else "the capture saw it"
    text += (f"; the FIN was ACKed on its own at {ack['t']:.6f} s, {_ms(ack['t'] - fins[-1]['t'])} after {seen}"
             + (" (when the delayed-ACK timer fired)" if timer else ""))
    if own_fin is not None:
        text += f", and {host}'s own FIN followed at {own_fin['t']:.6f} s"
    return text


def _time_wait_note(events: list[dict], i: int, msl: float) -> str:
    e = events[i]
    host, t = e["host"], e["t"]
    arm = next((x for x in events if x["type"] == "timer" and x["host"] == host and x.get("name") == "time_wait"
                and x.get("action") == "arm" and x["t"] >= t), None)
    wait = f"{arm['delay']:g} s in this run" if arm is not None else f"{2 * msl:g} s with an MSL of {msl:g} s"
    text = (f"TIME_WAIT waits 2×MSL, {wait}, so that a FIN sent again (if the last ACK is lost) is "
            "answered and segments still in the network die out before the 4-tuple is used again")
    if e["from"] == "FIN_WAIT_1":
        text = f"the peer's FIN came with the ACK of {host}'s FIN, so FIN_WAIT_2 was skipped. " + text
    ended = next((x["t"] for x in events if x["type"] == "state" and x["host"] == host and x["from"] == "TIME_WAIT"
                  and x["t"] >= t), None)
    again = [x for x in events if x["type"] == "handled" and x["host"] == host and x.get("what") == "retransmitted_fin"
             and x["t"] >= t]
    if again:
        text += f"; here the peer's FIN came again at {again[0]['t']:.6f} s and was ACKed again"
    elif ended is not None:
        late = next((x for x in events if x["type"] == "drop" and x["host"] == host and x.get("reason") == "no_socket"
                     and "FIN" in x.get("flags", "").split(",") and x["t"] >= ended), None)
        if late is not None:
            text += (f"; here it ended at {ended:.6f} s, before the peer's FIN came again at {late['t']:.6f} s "
                     "and met no connection")
    return text


def _close_note(events: list[dict]) -> tuple[int, str] | None:
    """How many segments closed the connection: each side's FIN that arrived, and the first arrival of
    an ACK of it, a segment counted once when it is both. None unless both FINs were ACKed."""
    fins = {}
    for e in events:
        if e["type"] == "send" and "FIN" in e["flags"].split(",") and e["host"] not in fins:
            fins[e["host"]] = e
    if len(fins) != 2:
        return None
    hosts = list(fins)
    arrived = {h: {id(e) for e in _arrivals(events, h)} for h in hosts}
    fin_of: dict[int, str] = {}  # index of an arrival -> whose FIN it carried
    ack_of: dict[int, str] = {}  # index of an arrival -> whose FIN it ACKed
    ends = {}
    for sender in hosts:
        receiver = next(h for h in hosts if h != sender)
        fin = fins[sender]
        ends[sender] = end = (fin["seq"] + fin["len"] + 1) % 2**32
        fin_in = next((n for n, e in enumerate(events) if id(e) in arrived[receiver]
                       and "FIN" in e["flags"].split(",") and e.get("src") == fin["src"]), None)
        ack_in = next((n for n, e in enumerate(events) if id(e) in arrived[sender] and e["t"] >= fin["t"]
                       and "ACK" in e["flags"].split(",") and e.get("dst") == fin["src"] and _covers(e["ack"], end)),
                      None)
        if fin_in is None or ack_in is None:
            return None
        fin_of[fin_in], ack_of[ack_in] = sender, sender
    order = sorted(set(fin_of) | set(ack_of))
    parts = []
    for n in order:
        sender = _sent_before(events, events[n])["host"]
        what = (["its FIN"] if n in fin_of else []) + ([f"the ACK of {ack_of[n]}'s FIN"] if n in ack_of else [])
        parts.append(f"{sender} sent {' with '.join(what)}")
    last_sent = _sent_before(events, events[order[-1]])["t"]
    first_fin = min(f["t"] for f in fins.values())
    others = sum(1 for e in events if e["type"] == "send" and first_fin <= e["t"] <= last_sent and not e["len"]
                 and ("FIN" in e["flags"].split(",") or any(
                     e["host"] != h and "ACK" in e["flags"].split(",") and _covers(e["ack"], ends[h]) for h in hosts)))
    others -= len(order)
    count = {3: "Three", 4: "Four"}.get(len(order), str(len(order)))
    text = f"{count} segments closed this connection: " + "; ".join(parts)
    if others > 0:
        text += f" (and {others} more were lost or sent again)"
    at = next((k for k in range(order[-1], len(events)) if events[k]["type"] == "state"), None)
    if at is None:
        at = max(k for k in range(len(events)) if events[k]["type"] == "state")
    return at, text


def state_notes(events: list[dict], msl: float = 30.0) -> dict[tuple, str]:
    """The notes on state changes, by (t, host, from, to): for views that list steps their own way."""
    return {(e["t"], e.get("host"), e["from"], e["to"]): text for i, text in notes(events, msl).items()
            if (e := events[i])["type"] == "state"}
