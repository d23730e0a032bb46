"""A state census: how many endpoints are in each state over time, across every connection of a
capture or a watched command, so that a CLOSE_WAIT or TIME_WAIT pile-up is seen at a glance. A
line per second in the terminal (`trace --format census`, `watch --census`) and a small chart in
the HTML report.

The states are the ones the views carry (a tcpwave log's, or those inferred from a capture). An
endpoint counts from its first state change; once in TIME_WAIT it stays there until its 2×MSL is
over (a capture does not see that end); CLOSED and LISTEN are not counted."""

import math
from xml.sax.saxutils import escape

# the states counted, in the order they are printed (opening, open, the active closer's, the passive's)
ORDER = ("SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSING", "TIME_WAIT",
         "CLOSE_WAIT", "LAST_ACK")
_COLORS = {"SYN_SENT": "#9edae5", "SYN_RCVD": "#17becf", "ESTABLISHED": "#2ca02c", "FIN_WAIT_1": "#bcbd22",
           "FIN_WAIT_2": "#dbdb8d", "CLOSING": "#8c564b", "TIME_WAIT": "#1f77b4", "CLOSE_WAIT": "#d62728",
           "LAST_ACK": "#ff9896"}


def _changes(views) -> list[list[tuple[float, str]]]:
    """Per endpoint: its (time, new state) changes, in order."""
    out = []
    for v in views:
        for host in (v.left, v.right):
            steps = [(e["t"], e["to"]) for e in v.events if e["type"] == "state" and e.get("host") == host]
            if steps:
                out.append(steps)
    return out


def _state_at(steps: list[tuple[float, str]], t: float, msl: float) -> str | None:
    state, since = None, 0.0
    for when, to in steps:
        if when > t:
            break
        state, since = to, when
    if state == "TIME_WAIT" and t >= since + 2 * msl:
        return None
    return state if state in ORDER else None


def census(views, msl: float = 30.0, step: float = 1.0, end: float | None = None) -> list[tuple[float, dict]]:
    """(time, {state: endpoints}) at the end of each `step` from the first event, and at `end` (default:
    the last event's time)."""
    changes = _changes(views)
    times = [e["t"] for v in views for e in v.events]
    if not times:
        return []
    first, last = min(times), max(times) if end is None else end
    n = max(0, math.ceil((last - first) / step - 1e-9))
    samples = [first + step * k for k in range(1, n)] + [last]
    return [(t, _counts(changes, t, msl)) for t in samples]


def counts_at(views, t: float, msl: float = 30.0) -> dict[str, int]:
    """{state: endpoints} at time t."""
    return _counts(_changes(views), t, msl)


def _counts(changes: list[list[tuple[float, str]]], t: float, msl: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for steps in changes:
        state = _state_at(steps, t, msl)
        if state is not None:
            counts[state] = counts.get(state, 0) + 1
    return counts


def census_line(t: float, counts: dict[str, int]) -> str:
    if not counts:
        return f"{t:10.3f} s  (none open)"
    parts = "  ".join(f"{state} {counts[state]}" for state in ORDER if counts.get(state))
    return f"{t:10.3f} s  {parts}  (total {sum(counts.values())})"


def census_lines(samples: list[tuple[float, dict]]) -> list[str]:
    """A line per sample; a run of identical counts is said once, then 'the same until ...'."""
    out: list[str] = []
    k = 0
    while k < len(samples):
        t, counts = samples[k]
        j = k
        while j + 1 < len(samples) and samples[j + 1][1] == counts:
            j += 1
        out.append(census_line(t, counts))
        if j > k:
            out.append(f"{'':10}    … the same until {samples[j][0]:.3f} s")
        k = j + 1
    return out


def census_svg(samples: list[tuple[float, dict]], width: int = 640, height: int = 180) -> str:
    """A small stacked chart: endpoints in each state over time, a legend of the states seen."""
    seen = [s for s in ORDER if any(c.get(s) for _, c in samples)]
    left, top, right, bottom = 40, 10, 130, 24
    w, h = width - left - right, height - top - bottom
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' class='census' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' font-family='Helvetica, Arial, sans-serif' font-size='11'>",
           f"<rect width='{width}' height='{height}' fill='white'/>"]
    if not samples or not seen:
        out.append(f"<text x='{left}' y='{top + 20}' fill='#777'>no endpoint in a counted state</text></svg>")
        return "\n".join(out) + "\n"
    t0, t1 = samples[0][0], samples[-1][0]
    peak = max(sum(c.values()) for _, c in samples) or 1

    def x(t: float) -> float:
        return left + (w * (t - t0) / (t1 - t0) if t1 > t0 else w / 2)

    def y(n: float) -> float:
        return top + h - h * n / peak

    below = [0] * len(samples)
    for state in seen:
        above = [below[k] + samples[k][1].get(state, 0) for k in range(len(samples))]
        # steps: each sample's counts hold until the next sample
        spans = [(t, samples[k + 1][0] if k + 1 < len(samples) else t) for k, (t, _) in enumerate(samples)]
        edge = [f"{x(a):.1f},{y(above[k]):.1f} {x(b):.1f},{y(above[k]):.1f}" for k, (a, b) in enumerate(spans)]
        base = [f"{x(b):.1f},{y(below[k]):.1f} {x(a):.1f},{y(below[k]):.1f}"
                for k, (a, b) in reversed(list(enumerate(spans)))]
        if len(samples) == 1:  # one sample: a bar
            edge = [f"{x(t0) - 6:.1f},{y(above[0]):.1f}", f"{x(t0) + 6:.1f},{y(above[0]):.1f}"]
            base = [f"{x(t0) + 6:.1f},{y(below[0]):.1f}", f"{x(t0) - 6:.1f},{y(below[0]):.1f}"]
        out.append(f"<polygon class='band' data-state='{state}' points='{' '.join(edge + base)}' "
                   f"fill='{_COLORS[state]}'><title>{state}</title></polygon>")
        below = above
    out.append(f"<line x1='{left}' y1='{top + h}' x2='{left + w}' y2='{top + h}' stroke='#333'/>"
               f"<line x1='{left}' y1='{top}' x2='{left}' y2='{top + h}' stroke='#333'/>"
               f"<text x='{left - 4}' y='{top + 8}' text-anchor='end'>{peak}</text>"
               f"<text x='{left - 4}' y='{top + h}' text-anchor='end'>0</text>"
               f"<text x='{left}' y='{height - 6}'>{t0:.3f} s</text>"
               f"<text x='{left + w}' y='{height - 6}' text-anchor='end'>{t1:.3f} s</text>")
    for k, state in enumerate(reversed(seen)):
        ly = top + 12 + 14 * k
        out.append(f"<rect x='{left + w + 10}' y='{ly - 9}' width='10' height='10' fill='{_COLORS[state]}'/>"
                   f"<text x='{left + w + 24}' y='{ly}'>{escape(state)}</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
