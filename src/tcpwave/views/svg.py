"""SVG drawings, standalone files or inline in the HTML report: the ladder diagram and the RFC 9293
state diagram with the transitions taken highlighted.

Elements carry `data-step` (ladder) and `id`s (state nodes) so the HTML report can step through a
connection and light up each endpoint's current state.
"""

import math
from xml.sax.saxutils import escape

from ..core.state import TRANSITIONS
from .diagrams import taken_transitions
from .ladder import _relative, handled_text, segment_label, wrap_words

COLORS = ("#1f77b4", "#d62728")  # left endpoint, right endpoint
BOTH = "#9467bd"
GREY = "#9a9a9a"
FONT = "font-family='Helvetica, Arial, sans-serif'"


def _t(text) -> str:
    return escape(str(text), {"'": "&apos;", '"': "&quot;"})


# ------------------------------------------------------------------ ladder
ROW = 26  # vertical space per ladder line
SLOPE = 18  # how far an arrow drops while it crosses


def ladder_steps(events: list[dict], left: str, right: str) -> list[dict]:
    """The ladder's rows in order: segments (kind 'seg') and state changes (kind 'state') and drops;
    each row's `event` is the index of the event it draws."""
    isn = _relative(events)
    last: dict[tuple, dict] = {}  # the latest row of each segment: a link drop marks that copy lost
    in_flight: dict[tuple, list[dict]] = {}  # segments not yet seen arriving, by what the receiver sees
    rows = []
    for i, e in enumerate(events):
        host = e.get("host")
        if host not in (left, right):
            continue
        if e["type"] == "send":
            row = {"kind": "seg", "t": e["t"], "host": host, "label": segment_label(e, isn),
                   "lost": False, "rtx": e.get("note", "").startswith("retransmission"), "arrive": None, "event": i}
            rows.append(row)
            key = (e["flags"], e["seq"], e["ack"], e["len"])
            last[(host, *key)] = row
            in_flight.setdefault((right if host == left else left, *key), []).append(row)
        elif e["type"] == "recv":  # when a traced receiver got it: the arrow's far end (time-scaled)
            waiting = in_flight.get((host, e["flags"], e["seq"], e["ack"], e["len"]))
            if waiting:
                waiting.pop(0)["arrive"] = e["t"]
        elif e["type"] == "drop" and e.get("where") == "link":
            key = (e.get("flags"), e.get("seq"), e.get("ack"), e.get("len"))
            hit = last.get((host, *key))
            if hit is not None:
                hit["lost"] = True
                waiting = in_flight.get((right if host == left else left, *key), [])
                if hit in waiting:  # it never arrives: a later copy's arrival is not its own
                    waiting.remove(hit)
        elif e["type"] == "state":
            rows.append({"kind": "state", "t": e["t"], "host": host, "from": e["from"], "to": e["to"],
                         "why": e.get("why", ""), "event": i})
        elif e["type"] == "drop" and e.get("where") != "link":
            rows.append({"kind": "note", "t": e["t"], "host": host, "label": f"dropped: {e.get('reason')}",
                         "event": i})
        elif e["type"] == "handled":
            rows.append({"kind": "note", "t": e["t"], "host": host, "label": handled_text(e), "handled": True,
                         "event": i})
    _lost_ends(rows)
    return rows


def _lost_ends(rows: list[dict]) -> None:
    """A lost segment would have arrived after the one-way delay its sender's other segments took
    (their median, from the receiver's recv events): the time-scaled ladder ends its X there. Not
    known when nothing was seen arriving (a capture)."""
    for host in {r["host"] for r in rows if r["kind"] == "seg" and r["lost"]}:
        trips = sorted(r["arrive"] - r["t"] for r in rows if r["kind"] == "seg" and r["host"] == host
                       and r["arrive"] is not None)
        if trips:
            for r in rows:
                if r["kind"] == "seg" and r["host"] == host and r["lost"]:
                    r["would_arrive"] = r["t"] + trips[len(trips) // 2]


PX_PER_S = 2000.0  # time-scaled ladders: 10 ms is 20 px...
GAP_CAP = 90.0  # ...but no gap is drawn longer than this
BREAK_S = 1.0  # a wait longer than this (an RTO, 2 x MSL) is a marked break, not to scale
MIN_ROW = 16.0  # rows never closer than this, so their words stay readable


def _timed_ys(rows: list[dict], top: float) -> tuple[list[float], list[float | None], list[tuple[float, float]]]:
    """Where each row (its send time) and each segment's arrival go on a time-scaled ladder; and the
    breaks (y, seconds skipped) drawn where long waits were cut short."""
    ends = [(r["arrive"] if r.get("arrive") is not None else r.get("would_arrive"), 0, i) for i, r in enumerate(rows)]
    points = sorted([(r["t"], 1, i) for i, r in enumerate(rows)] + [p for p in ends if p[0] is not None])
    ys: list[float] = [0.0] * len(rows)
    arrive: list[float | None] = [None] * len(rows)
    breaks: list[tuple[float, float]] = []
    y, last_t, last_row = top, None, None
    for t, is_row, i in points:
        if last_t is not None and t > last_t:
            gap = t - last_t
            if gap > BREAK_S:
                breaks.append((y + 18, gap))
                y += 36
            else:
                y += min(gap * PX_PER_S, GAP_CAP)
        last_t = t
        if is_row:
            if last_row is not None:
                y = max(y, last_row + MIN_ROW)
            ys[i] = last_row = y
        else:
            arrive[i] = max(y, ys[i] + 4)
    return ys, arrive, breaks


def ladder_svg(events: list[dict], left: str, right: str, title: str = "", timed: bool = False) -> str:
    """The ladder: one row per step; timed: arrows slope from send to arrival time (crossing segments
    cross) and long waits are marked breaks."""
    rows = ladder_steps(events, left, right)
    width, xl, xr, top = 980, 330, 690, 70
    if timed:
        ys, arrive, breaks = _timed_ys(rows, top)
        height = int(max([*ys, *(a for a in arrive if a is not None), top]) + ROW + 20)
    else:
        ys, arrive, breaks = [top + ROW * i for i in range(len(rows))], [None] * len(rows), []
        height = top + ROW * (len(rows) + 1) + 20
    klass = "ladder timed" if timed else "ladder"
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' class='{klass}' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' data-top='{top}' data-row='{ROW}' {FONT} font-size='12'>",
           "<defs>" + "".join(_marker(f"lad{i}", c) for i, c in enumerate(COLORS + ("#c00000",))) + "</defs>",
           f"<rect width='{width}' height='{height}' fill='white'/>"]
    if title:
        out.append(f"<text x='{width / 2}' y='20' text-anchor='middle' font-size='14' font-weight='bold'>{_t(title)}</text>")
    for x, name, color in ((xl, left, COLORS[0]), (xr, right, COLORS[1])):
        out.append(f"<text x='{x}' y='{top - 22}' text-anchor='middle' font-weight='bold' fill='{color}'>{_t(name)}</text>")
        out.append(f"<line x1='{x}' y1='{top - 12}' x2='{x}' y2='{height - 10}' stroke='{color}' stroke-width='2'/>")
    out.append(f"<text x='8' y='{top - 22}' fill='#555'>t (s)</text>")
    for y, skipped in breaks:  # a long wait, cut short: a zigzag across both lifelines
        zig = " ".join(f"L{x + d},{y + (4 if k % 2 else -4)}" for x in (xl, xr) for k, d in enumerate((-8, 0, 8)))
        out.append(f"<path class='break' d='M{xl - 12},{y} {zig}' fill='none' stroke='#999'/>"
                   f"<text x='{(xl + xr) / 2}' y='{y + 4}' text-anchor='middle' fill='#777' font-size='11'>"
                   f"… {skipped:.3f} s later …</text>")
    for i, r in enumerate(rows):
        y = ys[i]
        out.append(f"<g class='step' data-step='{i}'>")
        out.append(f"<text x='8' y='{y + 4}' fill='#777' font-size='10'>{r['t']:.6f}</text>")
        if r["kind"] == "seg":
            out.append(_arrow(r, y, xl, xr, left, arrive[i], timed))
        elif r["kind"] == "state":
            on_left = r["host"] == left
            x, anchor = (xl - 8, "end") if on_left else (xr + 8, "start")
            color = COLORS[0] if on_left else COLORS[1]
            out.append(f"<text x='{x}' y='{y + 4}' text-anchor='{anchor}' font-weight='bold' fill='{color}'>"
                       f"<title>{_t(r['why'])}</title>{_t(r['from'])} → {_t(r['to'])}</text>")
        else:
            on_left = r["host"] == left
            x, anchor = (xl - 8, "end") if on_left else (xr + 8, "start")
            fill = "#2e7d32" if r.get("handled") else "#c00000"  # acted on (green), or discarded (red)
            room = xl - 8 - SIDE_MARGIN if on_left else width - xr - 16
            out.append(f"<text x='{x}' y='{y + 4}' text-anchor='{anchor}' fill='{fill}'{_fit(r['label'], 12, room)}>"
                       f"{_t(r['label'])}</text>")
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


LABEL_FONT = 11
CHAR_W = 0.6  # of the font size: a generous width per character of a label (Helvetica averages ~0.55)


SIDE_MARGIN = 70  # the time column's width, left of the left endpoint's notes


def _fit(text: str, size: float, room: float) -> str:
    """Attributes that squeeze a text into `room` pixels if it might not fit (else none)."""
    return f" textLength='{room}' lengthAdjust='spacingAndGlyphs'" if len(text) * CHAR_W * size > room else ""


def _arrow(r: dict, y: float, xl: float, xr: float, left: str, arrive: float | None = None,
           timed: bool = False) -> str:
    rightward = r["host"] == left
    x1, x2 = (xl, xr) if rightward else (xr, xl)
    y1, y2 = (y - SLOPE / 2, y + SLOPE / 2) if arrive is None else (y, arrive)
    color = "#c00000" if r["rtx"] or r["lost"] else (COLORS[0] if rightward else COLORS[1])
    marker = "lad2" if r["rtx"] or r["lost"] else ("lad0" if rightward else "lad1")
    label = ("(lost) " if r["lost"] else "") + r["label"]
    lx, ly = (x1 + x2) / 2, (y1 + y2) / 2 - 4
    angle = math.degrees(math.atan2(y2 - y1, x2 - x1))
    if angle > 90:
        angle -= 180
    parts = []
    if r["lost"]:  # the segment dies on the wire: a short arrow ending in an X
        xe = x1 + (x2 - x1) * 0.7
        ye = y1 + (y2 - y1) * 0.7
        parts.append(f"<line x1='{x1}' y1='{y1}' x2='{xe}' y2='{ye}' stroke='{color}' stroke-width='1.5' stroke-dasharray='5 3'/>")
        parts.append(f"<path d='M{xe - 5},{ye - 5} L{xe + 5},{ye + 5} M{xe - 5},{ye + 5} L{xe + 5},{ye - 5}' "
                     f"stroke='{color}' stroke-width='2'/>")
    else:
        parts.append(f"<line class='arrow' x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='{color}' "
                     f"stroke-width='1.5' marker-end='url(#{marker})'/>")
    if timed:  # level, above the arrow's start, inside the lifelines: rows never share a height, so
        # labels never overlap, even where arrows cross or converge
        fit = _fit(label, LABEL_FONT, xr - xl - 16)
        x, anchor = (x1 + 8, "start") if rightward else (x1 - 8, "end")
        parts.append(f"<text class='label' x='{x}' y='{y1 - 4}' text-anchor='{anchor}' fill='{color}' "
                     f"font-size='{LABEL_FONT}' stroke='white' stroke-width='3' paint-order='stroke'{fit}>"
                     f"{_t(label)}</text>")
    else:
        parts.append(f"<text x='{lx}' y='{ly}' text-anchor='middle' fill='{color}' font-size='{LABEL_FONT}' "
                     f"transform='rotate({angle:.2f} {lx} {ly})'>{_t(label)}</text>")
    return "".join(parts)


def _marker(name: str, color: str) -> str:
    return (f"<marker id='{name}' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='9' markerHeight='9' markerUnits='userSpaceOnUse' "
            f"orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' fill='{color}'/></marker>")


# ------------------------------------------------------------------ state diagram
# Laid out like RFC 9293's Figure 5: opening at the top, closing below; CLOSED drawn twice (where
# connections start, and where they end).
NODES = {
    "CLOSED": (410, 40), "LISTEN": (410, 130), "SYN_RCVD": (170, 230), "SYN_SENT": (650, 230),
    "ESTABLISHED": (410, 320), "FIN_WAIT_1": (170, 420), "CLOSE_WAIT": (650, 420),
    "FIN_WAIT_2": (170, 530), "CLOSING": (410, 470), "LAST_ACK": (650, 530), "TIME_WAIT": (410, 600),
    "CLOSED_END": (410, 690),
}
_OPENING = ("CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD")
_BENDS = {("LISTEN", "CLOSED"): -40, ("CLOSED", "LISTEN"): -40, ("SYN_RCVD", "LISTEN"): 45,
          ("SYN_SENT", "CLOSED"): 90, ("SYN_RCVD", "CLOSED"): -90, ("ESTABLISHED", "CLOSED_END"): -150,
          ("CLOSING", "CLOSED_END"): 90, ("FIN_WAIT_1", "CLOSED_END"): -60, ("FIN_WAIT_2", "CLOSED_END"): -30,
          ("CLOSE_WAIT", "CLOSED_END"): -40, ("LAST_ACK", "CLOSED_END"): -50}
_ABORT = "RST, ABORT or timeout"
BOX_W, BOX_H = 124, 30


def node_for(state: str, came_from: str | None) -> str:
    """Which drawn node shows `state`: CLOSED after a synchronized state is the lower one."""
    if state == "CLOSED" and came_from is not None and came_from not in _OPENING:
        return "CLOSED_END"
    return state


def state_svg(events: list[dict], hosts: list[str], title: str = "") -> str:
    taken = taken_transitions(events, hosts)
    color_of = {h: COLORS[i % 2] for i, h in enumerate(hosts)}
    visited = set()
    for (src, dst) in taken:
        visited |= {node_for(src, None), node_for(dst, src)}
    width, height = 820, 730
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' class='states' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' {FONT} font-size='10'>",
           "<defs>" + "".join(_marker(f"st{i}", c) for i, c in enumerate((GREY, *COLORS, BOTH))) + "</defs>",
           f"<rect width='{width}' height='{height}' fill='white'/>"]
    if title:
        out.append(f"<text x='10' y='18' font-size='13' font-weight='bold'>{_t(title)}</text>")
    for i, h in enumerate(hosts):
        out.append(f"<text x='10' y='{40 + 16 * i}' font-size='12' fill='{color_of[h]}'>━ {_t(h)}</text>")
    if len(hosts) > 1:
        out.append(f"<text x='10' y='{40 + 16 * len(hosts)}' font-size='12' fill='{BOTH}' class='legend-both'>"
                   "━ both endpoints</text>")
    out.append(f"<text x='10' y='{height - 10}' fill='#777'>dashed: {_ABORT} → CLOSED</text>")
    for old, targets in TRANSITIONS.items():
        for new, cause in targets.items():
            a, b = old.value, node_for(new.value, old.value)
            who = taken.get((old.value, new.value))
            out.append(_edge(a, b, cause, who, color_of))
    for name, (x, y) in NODES.items():
        label = "CLOSED" if name == "CLOSED_END" else name
        fill = "#fff3c4" if name in visited else "#ffffff"
        seen = " seen" if name in visited else ""
        out.append(f"<g class='state{seen}' id='state-{name}'><rect x='{x - BOX_W / 2}' y='{y - BOX_H / 2}' width='{BOX_W}' "
                   f"height='{BOX_H}' rx='9' fill='{fill}' stroke='#333' stroke-width='1.2'/>"
                   f"<text x='{x}' y='{y + 4}' text-anchor='middle' font-size='12'>{label}</text></g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _edge(a: str, b: str, cause: str, who, color_of) -> str:
    (x1, y1), (x2, y2) = NODES[a], NODES[b]
    bend = _BENDS.get((a, b), 0)
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    length = math.hypot(x2 - x1, y2 - y1) or 1
    cx, cy = mx - (y2 - y1) / length * bend, my + (x2 - x1) / length * bend  # control point
    sx, sy = _box_exit(x1, y1, cx, cy)
    ex, ey = _box_exit(x2, y2, cx, cy)
    abort = cause == _ABORT
    if who:
        colors = {color_of[h] for h in who}
        color = colors.pop() if len(colors) == 1 else BOTH
        marker = f"st{(GREY, *COLORS, BOTH).index(color)}"
        style = f"stroke='{color}' stroke-width='3'"
    else:
        color, marker = GREY, "st0"
        style = f"stroke='{GREY}' stroke-width='1'" + (" stroke-dasharray='4 3'" if abort else "")
    edge_id = f"edge-{a}-{b}"
    out = [f"<g class='edge{' taken' if who else ''}' id='{edge_id}'><path d='M{sx:.1f},{sy:.1f} Q{cx:.1f},{cy:.1f} {ex:.1f},{ey:.1f}' fill='none' "
           f"{style} marker-end='url(#{marker})'><title>{_t(a)} → {_t(b)}: {_t(cause)}</title></path>"]
    if who or not abort:
        lx, ly = 0.25 * sx + 0.5 * cx + 0.25 * ex, 0.25 * sy + 0.5 * cy + 0.25 * ey
        weight = " font-weight='bold'" if who else ""
        lines = wrap_words(cause, 28)
        spans = "".join(f"<tspan x='{lx:.1f}' dy='{0 if i == 0 else 11}'>{_t(part)}</tspan>" for i, part in enumerate(lines))
        out.append(f"<text x='{lx:.1f}' y='{ly + 3 - 5.5 * (len(lines) - 1):.1f}' text-anchor='middle' "
                   f"fill='{color if who else '#666'}'{weight} stroke='white' stroke-width='3' paint-order='stroke'>{spans}</text>")
    out.append("</g>")
    return "".join(out)


def _box_exit(x: float, y: float, tx: float, ty: float) -> tuple[float, float]:
    """Where the line from a box's centre (x, y) towards (tx, ty) leaves the box."""
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return x, y
    scale = min(BOX_W / 2 / abs(dx) if dx else math.inf, BOX_H / 2 / abs(dy) if dy else math.inf)
    return x + dx * scale, y + dy * scale
