"""Ladder (sequence) diagrams in the terminal, drawn from trace events.

One line per segment sent, with relative seq/ack, flags, length and window, an
arrow in its direction, segments lost on the wire marked as lost, and each side's
state printed beside its lifeline whenever it changes.
"""

from collections.abc import Callable

from ..wire.seq import seq_diff
from .explain import notes as explain_notes
from .explain import state_text, timer_text
from .lessons import gloss, ss_text

ARROW = 64
UNSEEN = "not seen at this capture point"
STATE_COL = 26
FULL_WIDTH = 10 + 2 + STATE_COL + ARROW + 4 + STATE_COL  # the full layout's columns; narrower: words under arrows
# what the stack did with a segment that was not new, in the state column's width
_HANDLED = {"retransmitted_fin": "FIN again: re-ACK, 2MSL", "duplicate_syn": "SYN again: SYN,ACK again",
            "reboot": "rebooted: state lost"}
_WHAT = {"retransmitted_fin": "retransmitted FIN", "duplicate_syn": "duplicate SYN"}


def handled_text(e: dict) -> str:
    """A `handled` event in full: what arrived and what was done ("retransmitted FIN: re-ACKed, ...")."""
    what = e.get("what", "")
    return f"{_WHAT.get(what, what.replace('_', ' '))}: {e.get('done') or 'handled'}"


class _Line:
    __slots__ = ("t", "left", "right", "arrow", "direction", "lost", "label")

    def __init__(self, t, left="", right="", arrow=False, direction=0, label=""):
        self.t, self.left, self.right = t, left, right
        self.arrow, self.direction, self.label = arrow, direction, label
        self.lost = ""


def _relative(events: list[dict]) -> dict:
    """ISN of each endpoint ('addr:port'), learned from the first SYN it sent; and of each direction
    ((src, dst)), so that a server port with several connections numbers each from its own ISN."""
    isn: dict = {}
    for e in events:
        if e["type"] == "send" and "SYN" in e["flags"].split(","):
            isn.setdefault(e["src"], e["seq"])
            isn.setdefault((e["src"], e["dst"]), e["seq"])
    return isn


def segment_label(e: dict, isn: dict) -> str:
    flags = e["flags"].split(",") if e["flags"] else []
    shown = ",".join(f for f in flags if f != "PSH") or "-"
    base = isn.get((e["src"], e["dst"]), isn.get(e["src"]))
    seq = seq_diff(e["seq"], base) if base is not None else e["seq"]
    parts = [shown, f"seq={seq}"]
    peer = isn.get((e["dst"], e["src"]), isn.get(e["dst"]))
    if "ACK" in flags:
        parts.append(f"ack={seq_diff(e['ack'], peer) if peer is not None else e['ack']}")
    if e["len"]:
        parts.append(f"len={e['len']}")
    if "RST" not in flags:
        parts.append(f"win={e['win']}")
    if "SYN" in flags and e.get("opts"):  # what each side offers is the story of a handshake
        parts.append(f"<{_short_options(e['opts'])}>")
    elif "sack " in e.get("opts", ""):  # the blocks a receiver holds beyond its ACK, in the sender's numbers
        blocks = e["opts"].split("sack ", 1)[1].split(",")[0].split()
        rel = [tuple(seq_diff(int(x), peer) if peer is not None else int(x) for x in b.split(":")) for b in blocks]
        parts.append("<SACK " + " ".join(f"{a}-{b}" for a, b in rel) + ">")
    note = e.get("note", "")
    if note.startswith("retransmission: answers a duplicate"):  # not the timer: the peer asked again
        parts.insert(0, "(rtx, dup SYN)")
    elif note.startswith("retransmission"):
        parts.insert(0, "(rtx)")
    elif note:
        parts.append(f"({note})")
    return " ".join(parts)


def _short_options(text: str) -> str:
    """'mss 1460,sackOK,TS val 123 ecr 0,wscale 3' -> 'mss 1460,sackOK,TS,ws 3'."""
    return ",".join("TS" if part.startswith("TS ") else part.replace("wscale", "ws") for part in text.split(","))


def render_ladder(events: list[dict], left: str = "client", right: str = "server", color: bool = False,
                  clock: Callable[[float], str] | None = None, explain: bool = False, msl: float = 30.0,
                  width: int | None = None, rows: bool = False) -> str:
    """clock: how to print a time (default: seconds, as the events carry them). explain: below each
    step, the call or reason behind it, the timers, and notes at the textbook moments. rows: number
    the segments ([1], [2], ...), the numbers `tcpwave demo --drop N` takes."""
    isn = _relative(events)
    lines: list[_Line] = []
    last_arrow: dict[tuple, _Line] = {}
    notes = explain_notes(events, msl) if explain else {}
    glossed: set = set()  # terms (and ss spellings) already explained once
    row = 0
    for i, e in enumerate(events):
        kind, host = e["type"], e["host"]
        if host not in (left, right):
            continue
        if explain and kind == "timer":
            text = timer_text(e)
            if text:
                lines.append(_Line(e["t"], label=f"{host}: {text}", direction=2))
            continue
        if kind == "state":
            text = f"{e['from']} → {e['to']}"
            lines.append(_Line(e["t"], left=text if host == left else "", right=text if host == right else ""))
            if explain:
                spelled = ss_text(e["to"]) if e["to"] not in glossed else None
                glossed.add(e["to"])
                lines.append(_Line(e["t"], label=f"{host}: {state_text(e)}" + (f" ({spelled})" if spelled else ""),
                                   direction=2))
        elif kind == "send":
            label = segment_label(e, isn)
            if rows:
                row += 1
                label = f"[{row}] {label}"
            line = _Line(e["t"], arrow=True, direction=1 if host == left else -1, label=label)
            lines.append(line)
            last_arrow[(host, e["flags"], e["seq"], e["ack"], e["len"])] = line
        elif kind == "link" and e.get("reason") != "corrupt":  # a fault delayed or duplicated it
            marked = last_arrow.get((host, e.get("flags"), e.get("seq"), e.get("ack"), e.get("len")))
            if marked is not None:
                marked.label += f" ({e['reason']})"
        elif kind == "drop" and e.get("where") == "link":
            lost = last_arrow.get((host, e.get("flags"), e.get("seq"), e.get("ack"), e.get("len")))
            if lost is not None:
                lost.lost = e["reason"]
        elif kind == "unseen":  # sequence space this capture lacks: drawn where its absence showed
            base = isn.get(host)
            seq = seq_diff(e["seq"], base) if base is not None else e["seq"]
            line = _Line(e["t"], arrow=True, direction=1 if host == left else -1, label=f"seq={seq} len={e['len']}")
            line.lost = f"{UNSEEN} ({e['fate']})" if e["fate"] != "unknown" else UNSEEN
            lines.append(line)
        elif kind == "drop" and e.get("reason") not in (None,):
            text = f"dropped: {e['reason']}"
            lines.append(_Line(e["t"], left=text if host == left else "", right=text if host == right else ""))
        elif kind == "handled":  # acted on, not new: e.g. a FIN again in TIME_WAIT, re-ACKed
            text = _HANDLED.get(e.get("what", ""), f"handled: {e.get('what')}")
            lines.append(_Line(e["t"], left=text if host == left else "", right=text if host == right else ""))
        elif kind == "timer" and e.get("action") == "give_up":
            text = "gave up: timed out"
            lines.append(_Line(e["t"], left=text if host == left else "", right=text if host == right else ""))
        elif kind in ("loss", "recovery"):
            text = _recovery_text(e, isn)
            lines.append(_Line(e["t"], left=text if host == left else "", right=text if host == right else ""))
            said = gloss(e, events, glossed) if explain else None
            if said:
                lines.append(_Line(e["t"], label=f"{host}: {said}", direction=2))
        if i in notes:
            lines.append(_Line(e["t"], label=f"note: {notes[i]}", direction=3))
    out = _draw(lines, left, right, color, clock, width)
    marks = {ln.lost.split(" (")[0] for ln in lines if ln.lost}
    if "not received" in {ln.lost for ln in lines}:
        out.append("X lost (not received): seen here, but the peer's ACKs and SACKs never covered it before it "
                   "was sent again, and no D-SACK showed the resend needless")
    if UNSEEN in marks:
        out.append(f"X {UNSEEN}: sequence space the sender must have sent that this capture lacks")
    return "\n".join(out)


def _recovery_text(e: dict, isn: dict) -> str:
    """A `loss` event (which rule found which segment) or a `recovery` state change, in a few words."""
    if e["type"] == "recovery":
        return f"recovery: {e['from']} → {e['to']}"
    if e.get("seq") is None:
        return "tail loss probe"
    base = isn.get(e.get("conn", "").split("-")[0])  # the connection's local end: "addr:port"
    seq = seq_diff(e["seq"], base) if base is not None else e["seq"]
    return f"lost ({e['rule']}): seq={seq}"


def _draw(lines: list[_Line], left: str, right: str, color: bool, clock: Callable[[float], str] | None,
          width: int | None = None) -> list[str]:
    """The ladder's text. With a width under the full layout's (FULL_WIDTH columns), the arrows shrink and
    each segment's words go on a line of their own below its arrow."""
    red = ("\033[31m", "\033[0m") if color else ("", "")
    bold = ("\033[1m", "\033[0m") if color else ("", "")
    narrow = width is not None and width < FULL_WIDTH
    state_col = STATE_COL
    arrow_w = max(8, (width or 0) - 10 - 2 - 2 * STATE_COL - 4) if narrow else ARROW
    words = (width or 0) - 10 - 2 - 4 if narrow else ARROW + STATE_COL + 10
    out = [f"{'t (s)' if clock is None else 'time':>10}  {left:>{state_col}} {'':{arrow_w + 2}} {right}"]
    for ln in lines:
        t = f"{ln.t:10.6f}" if clock is None else clock(ln.t)
        if ln.direction >= 2:  # --explain: a line of words under the step, across the ladder
            mark = "↳" if ln.direction == 2 else "※"
            indent = 2 if narrow else state_col - 2
            for k, part in enumerate(wrap_words(ln.label, words - indent if narrow else words)):
                out.append(f"{'':10}  {'':{indent}}{mark if k == 0 else ' '} {part}")
            continue
        if not ln.arrow:
            lt = f"{bold[0]}{ln.left:>{state_col}}{bold[1]}" if ln.left else " " * state_col
            rt = f"{bold[0]}{ln.right}{bold[1]}" if ln.right else ""
            out.append(f"{t}  {lt} |{' ' * arrow_w}| {rt}".rstrip())
            continue
        label = "" if narrow else f" {ln.label} "
        body = arrow_w - 2
        if len(label) > body - 4:
            label = label[: body - 5] + "… "
        if ln.lost:
            # the segment dies on the wire: the arrow stops short with an X
            cut = body * 2 // 3
            dashes = max(2, cut - len(label))
            if ln.direction > 0:
                arrow = "-" * 2 + label + "-" * (dashes - 2) + "X"
                arrow = arrow + " " * (arrow_w - len(arrow))
            else:
                arrow = "X" + "-" * (dashes - 2) + label + "-" * 2
                arrow = " " * (arrow_w - len(arrow)) + arrow
            arrow = f"{red[0]}{arrow}{red[1]}"
            note = (f" {ln.lost}" if ln.lost.startswith(UNSEEN) else
                    f" lost ({ln.lost})" if ln.lost != "lost" else " lost")
        else:
            fill = body - len(label)
            pre = fill // 2
            if ln.direction > 0:
                arrow = "-" * pre + label + "-" * (fill - pre) + "->"
            else:
                arrow = "<-" + "-" * pre + label + "-" * (fill - pre)
            note = ""
        out.append(f"{t}  {' ' * state_col} |{arrow}|{note}".rstrip())
        if narrow:  # the words under the arrow, from the sender's side
            for part in wrap_words(ln.label, words - 4):
                out.append(f"{'':10}  {'':4}{part}" if ln.direction > 0 else f"{'':10}  {part:>{words - 4}}")
    return out


def wrap_words(text: str, width: int) -> list[str]:
    """Words into lines of at most `width` characters (a longer word keeps a line of its own)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]
