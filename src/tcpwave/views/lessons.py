"""The explanations textbooks skip, for `--explain`, each computed from the run it explains: why
every segment after the SYN carries ACK, why three segments open a connection, what a RST means,
why TIME_WAIT lasts 2×MSL and for how long here; `ss`'s spellings of the state names; a one-line
gloss of the ladder's jargon (tail loss probe, recovery states) where it first appears."""

from ..core.config import Config
from ..wire.seq import seq_diff

# how `ss` (iproute2) prints the RFC 9293 state names, where it differs
SS_NAMES = {"ESTABLISHED": "ESTAB", "SYN_SENT": "SYN-SENT", "SYN_RCVD": "SYN-RECV", "FIN_WAIT_1": "FIN-WAIT-1",
            "FIN_WAIT_2": "FIN-WAIT-2", "TIME_WAIT": "TIME-WAIT", "CLOSE_WAIT": "CLOSE-WAIT", "LAST_ACK": "LAST-ACK"}
RFC_MSL = 120.0  # RFC 9293 §3.4.2: "the MSL is taken to be 2 minutes"
LINUX_TIME_WAIT = 60.0  # fixed, with no MSL setting (tests/conformance/time-wait-short-msl.pkt)

# what each recovery state (named after Linux's ca_state) means
_RECOVERY = {"open": "no loss suspected", "disorder": "duplicate ACKs or SACKs came, not yet enough to call a loss",
             "cwr": "the congestion window is cut once, without retransmitting everything",
             "recovery": "fast recovery: the segments found lost are sent again while new data keeps flowing",
             "loss": "the retransmission timer fired: everything in flight is taken as lost, cwnd starts again small"}
_RULES = {"dupack": "three duplicate ACKs (RFC 5681) showed a hole", "rto": "the retransmission timer fired",
          "rack": "a segment sent after it was ACKed first, by more than the reordering window (RACK, RFC 8985)",
          "tlp": "a tail loss probe found it"}


def segment_key(e: dict) -> tuple:
    """What identifies a segment on the wire: a send and the recv of the same segment share it."""
    return (e.get("src"), e.get("dst"), e.get("flags"), e.get("seq"), e.get("ack"), e.get("len"))


def ss_text(state: str) -> str | None:
    """'; ss shows it as SYN-RECV' when ss spells the state otherwise, else None."""
    name = SS_NAMES.get(state)
    return f"ss shows {state} as {name}" if name else None


def _flags(e: dict) -> list[str]:
    return e["flags"].split(",") if e.get("flags") else []


def _sends(events: list[dict]) -> list[tuple[int, dict]]:
    return [(i, e) for i, e in enumerate(events) if e["type"] == "send"]


def lesson_notes(events: list[dict]) -> dict[int, str]:
    """event index -> note, at the moments these explanations belong to."""
    out: dict[int, str] = {}
    for found in (_ack_always(events), _three_to_open(events), _reset(events), _two_msl(events)):
        if found is not None:
            at, text = found
            out[at] = f"{out[at]}. {text}" if at in out else text
    return out


def _syn_arrivals(events: list[dict]) -> dict[str, float]:
    """host -> when the peer's first SYN reached it (or, in a capture, was sent)."""
    got: dict[str, float] = {}
    recvs = any(e["type"] == "recv" for e in events)
    for e in events:
        if "SYN" in _flags(e) and e["type"] == ("recv" if recvs else "send"):
            host = e["host"] if recvs else next((x["host"] for x in events if x["type"] == "send"
                                                  and x["host"] != e["host"]), None)
            if host is not None:
                got.setdefault(host, e["t"])
    return got


def _ack_always(events: list[dict]) -> tuple[int, str] | None:
    """At the first segment that carries ACK: how many segments sent after each side had the
    peer's SYN carried it, and what the others were."""
    syn_in = _syn_arrivals(events)
    if len(syn_in) != 2:  # refused, or never synchronized: nothing to say
        return None
    after = [e for _, e in _sends(events) if e["host"] in syn_in and e["t"] >= syn_in[e["host"]]]
    fresh = next((k for k, e in enumerate(after) if _flags(e) == ["SYN"]), None)
    after = after[:fresh]  # (a SYN without ACK now opens another connection on these ports)
    first = next((i for i, e in _sends(events) if "ACK" in _flags(e)), None)
    if first is None or not after:
        return None
    without = [e for e in after if "ACK" not in _flags(e)]
    text = (f"this is the first segment with ACK; of the {len(after)} segments sent after each side had the "
            f"other's SYN, {len(after) - len(without)} carry it: once a side knows the peer's ISN it always "
            "says what it expects next, even with nothing new to acknowledge (RFC 9293 §3.1: once a connection "
            "is established the acknowledgment number is always sent); only the opening SYN has nothing to "
            "acknowledge yet")
    if without:
        rsts = sum(1 for e in without if "RST" in _flags(e))
        one = len(without) == 1
        text += (f"; the {len(without)} without it " + (("is a RST" if one else "are RSTs") + " that answer"
                 + ("s" if one else "") + " a segment carrying an ACK and take" + ("s" if one else "")
                 + " the sequence number from that ACK" if rsts == len(without)
                 else ("is " if one else "are ") + ", ".join(sorted({e['flags'] for e in without}))))
    return first, text


def _three_to_open(events: list[dict]) -> tuple[int, str] | None:
    """At the segment whose arrival acknowledged the second ISN: which segments confirmed which ISN,
    and how many went before (lost ones and ones sent again included)."""
    isn: dict[str, dict] = {}
    for _, e in _sends(events):
        if "SYN" in _flags(e):
            isn.setdefault(e["host"], e)
    if len(isn) != 2:
        return None
    recvs = any(e["type"] == "recv" for e in events)
    acked: dict[str, tuple[int, dict]] = {}
    for host, syn in isn.items():
        got = next((e for e in events if e["type"] == ("recv" if recvs else "send")
                    and (e["host"] == host) == recvs and "ACK" in _flags(e)
                    and seq_diff(e["ack"], (syn["seq"] + 1) % 2**32) >= 0), None)
        if got is None:
            return None
        sent = [(i, e) for i, e in _sends(events) if segment_key(e) == segment_key(got) and e["t"] <= got["t"]]
        acked[host] = sent[-1] if sent else (events.index(got), got)
    last_i, last = max(acked.values(), key=lambda p: p[0])
    before = [e for i, e in _sends(events) if i <= last_i]
    lost = sum(1 for e in events if e["type"] == "drop" and e.get("where") == "link" and e["t"] <= last["t"])
    again = sum(1 for e in before if e.get("note", "").startswith("retransmission"))
    words = {2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six"}.get(len(before), str(len(before)))
    extra = [f"{lost} lost"] * bool(lost) + [f"{again} sent again"] * bool(again)
    parts = [f"{syn['host']}'s ISN by {acked[h][1]['host']}'s {acked[h][1]['flags']} sent at {acked[h][1]['t']:.6f} s"
             for h, syn in isn.items()]
    text = (f"{words} segments opened this connection{' (' + ', '.join(extra) + ')' if extra else ''}: each "
            f"side's ISN has to be acknowledged by the other ({'; '.join(parts)}), so the segment that "
            "acknowledges the second ISN cannot be left out. It also lets a side tell a current SYN from an old "
            "duplicate of an earlier connection's: a SYN,ACK that answers a SYN its peer never sent is answered "
            "with a RST (RFC 9293 §3.5, Figure 8), not completed. `tcpwave demo old-duplicate` shows what one old "
            "segment does to a connection when nothing stops it")
    return last_i, text


def _reset(events: list[dict]) -> tuple[int, str] | None:
    """At the first RST: who left which state for CLOSED on it (straight, no TIME_WAIT), that it is
    not ACKed or sent again, and what its sender had sent that was never acknowledged."""
    found = next(((i, e) for i, e in _sends(events) if "RST" in _flags(e)), None)
    if found is None:
        return None
    i, rst = found
    sender = rst["host"]
    # it ends the sender's connection as it goes, the receiver's as it arrives
    arrival = next((e["t"] for e in events if e["type"] == "recv" and e["host"] != sender
                    and segment_key(e) == segment_key(rst) and e["t"] >= rst["t"]),
                   None if any(e["type"] == "recv" for e in events) else rst["t"])
    ended: dict[str, dict] = {}
    for e in events:
        if e["type"] == "state" and e["to"] == "CLOSED" and e["from"] != "TIME_WAIT" \
                and e["t"] == (rst["t"] if e["host"] == sender else arrival):
            ended.setdefault(e["host"], e)
    answer = rst.get("note", "").startswith("reset:")  # the stack's answer to a segment, not a call
    text = (f"this RST answers a segment that met no connection at {sender}. " if answer
            else "") + "a RST is never ACKed and never sent again"
    if ended:
        def fin_from(h: str, t: float) -> bool:
            return any(x["type"] == "send" and x["host"] == h and "FIN" in _flags(x) and x["t"] <= t for x in events)

        text += ": " + "; ".join(f"{h} went {e['from']} → CLOSED at {e['t']:.6f} s, with no TIME_WAIT"
                                 + ("" if fin_from(h, e["t"]) else " and without sending a FIN")
                                 for h, e in ended.items())
        text += " (RFC 9293 §3.5.2 suggests the side that resets enter TIME_WAIT; tcpwave does not)"
    recvs = [e for e in events if e["type"] == "recv" and e["host"] == sender]
    arrived = recvs or [e for e in events if e["type"] == "send" and e["host"] != sender]
    acks = [e["ack"] for e in arrived if e["t"] <= rst["t"] and "ACK" in _flags(e) and e.get("dst") == rst["src"]]
    if acks and not answer:
        peer = next(e["host"] for e in events if e["type"] == "send" and e["host"] != sender)
        unacked = min(seq_diff(rst["seq"], a) for a in acks)
        text += (f". {sender} had sent {unacked} bytes {peer} had not acknowledged" if unacked > 0
                 else f". {peer} had acknowledged all that {sender} had sent")
        text += (f"; the RST's seq is the next byte {sender} would have sent: whatever its application had written "
                 "beyond it is discarded, never sent")
    return i, text


def _two_msl(events: list[dict]) -> tuple[int, str] | None:
    """At the end of TIME_WAIT: how long it lasted, the MSL that makes, and RFC 9293's and Linux's."""
    entered: dict[str, float] = {}
    for i, e in enumerate(events):
        if e["type"] != "state":
            continue
        if e["to"] == "TIME_WAIT":
            entered[e["host"]] = e["t"]
        elif e["from"] == "TIME_WAIT" and e["host"] in entered:
            arm = [x for x in events if x["type"] == "timer" and x["host"] == e["host"] and x.get("name") == "time_wait"
                   and x.get("action") == "arm" and entered[e["host"]] <= x["t"] <= e["t"]]
            wait = arm[-1]["delay"] if arm else e["t"] - entered[e["host"]]
            msl = wait / 2
            text = (f"TIME_WAIT lasted {e['t'] - entered[e['host']]:.3f} s"
                    + (f" (its timer restarted {len(arm) - 1} time{'s' if len(arm) > 2 else ''})" if len(arm) > 1
                       else "")
                    + f": 2×MSL with an MSL of {msl:g} s. Two MSLs: the last ACK may take up to one MSL to arrive or "
                    "be lost, and a FIN sent again in answer to its loss up to one more; with an MSL that holds, no "
                    "segment of this connection is left in the network after that. "
                    f"RFC 9293 takes the MSL as {RFC_MSL / 60:g} minutes, a "
                    f"TIME_WAIT of {2 * RFC_MSL / 60:g} minutes; Linux's TIME_WAIT is a fixed {LINUX_TIME_WAIT:g} s "
                    "with no MSL setting" + (", the wait this run used" if wait == LINUX_TIME_WAIT else "")
                    + f"; tcpwave's MSL is {Config().msl:g} s unless set (--msl)")
            return i, text
    return None


def gloss(e: dict, events: list[dict], seen: set) -> str | None:
    """A one-line gloss of a `loss` or `recovery` line the first time its term appears."""
    if e["type"] == "recovery":
        term = f"recovery:{e['to']}"
        if term in seen:
            return None
        seen.add(term)
        why = f", here because: {e['why']}" if e.get("why") else ""
        return (f"recovery is the sender's loss-recovery state (named after Linux's ca_state); "
                f"{e['to']}: {_RECOVERY.get(e['to'], e['to'])}{why}")
    rule = e.get("rule", "")
    if rule in seen:
        return None
    seen.add(rule)
    if rule == "tlp":
        host = e["host"]
        last = [x for x in events if x["type"] == "send" and x["host"] == host and x["t"] < e["t"]]
        probe = next((x for x in events if x["type"] == "send" and x["host"] == host and x["t"] >= e["t"]), None)
        text = "tail loss probe: "
        if last:
            text += f"{_ms(e['t'] - last[-1]['t'])} after {host}'s last segment, with no ACK since, "
        text += (f"{host} sent " + (f"a {probe['flags']} again" if probe is not None else "a segment again")
                 + " to draw an ACK (and SACK) that shows what is missing, sooner than its retransmission timer "
                 "(RFC 8985)")
        return text
    return f"lost ({rule}): {_RULES.get(rule, rule)}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"
