"""Diagrams from trace events: Mermaid sequence diagrams, the RFC 9293 state diagram in Graphviz
DOT with the transitions actually taken highlighted, and per-endpoint state timelines.

All take the same event dicts as the terminal ladder (tcpwave's trace, or one inferred from a
capture), and two endpoint names: `left` and `right`.
"""

from collections.abc import Callable

from ..core.state import TRANSITIONS, State
from .ladder import _relative, segment_label

_COLORS = ("#1f77b4", "#d62728")  # left, right


def _mermaid_text(text: str) -> str:
    for raw, code in ((";", "#59;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, code)
    return text


def mermaid(events: list[dict], left: str, right: str) -> str:
    """A Mermaid `sequenceDiagram`: one message per segment, a note per state change."""
    isn = _relative(events)
    alias = {left: "L", right: "R"}
    out = ["sequenceDiagram", f"    participant L as {_mermaid_text(left)}",
           f"    participant R as {_mermaid_text(right)}"]
    last: dict[tuple, int] = {}  # the latest line of each segment: a link drop marks that copy lost
    for e in events:
        host = e.get("host")
        if host not in alias:
            continue
        if e["type"] == "state":
            out.append(f"    Note over {alias[host]}: {e['from']} → {e['to']}")
        elif e["type"] == "send":
            other = "R" if host == left else "L"
            last[(host, e["flags"], e["seq"], e["ack"], e["len"])] = len(out)
            out.append(f"    {alias[host]}->>{other}: {_mermaid_text(segment_label(e, isn))}")
        elif e["type"] == "drop" and e.get("where") == "link":
            i = last.get((host, e.get("flags"), e.get("seq"), e.get("ack"), e.get("len")))
            if i is not None and "-x" not in out[i]:
                out[i] = out[i].replace("->>", "-x", 1) + " (lost)"
    return "\n".join(out) + "\n"


def taken_transitions(events: list[dict], hosts: list[str]) -> dict[tuple[str, str], set[str]]:
    """(from, to) -> the endpoints that took that transition."""
    taken: dict[tuple[str, str], set[str]] = {}
    for e in events:
        if e["type"] == "state" and e.get("host") in hosts:
            taken.setdefault((e["from"], e["to"]), set()).add(e["host"])
    return taken


def state_dot(events: list[dict], hosts: list[str], title: str = "") -> str:
    """The RFC 9293 state diagram (core/state.py's table); transitions taken are drawn bold in the
    colour of the endpoint that took them (both: purple), states visited are filled."""
    taken = taken_transitions(events, hosts)
    visited = {s for pair in taken for s in pair}
    color_of = {h: _COLORS[i % 2] for i, h in enumerate(hosts)}
    out = ["digraph tcp_states {", '    rankdir=TB;', '    node [shape=box, style="rounded", fontname="Helvetica"];',
           '    edge [fontname="Helvetica", fontsize=9, color="#999999", fontcolor="#777777"];']
    if title:
        out.append(f'    labelloc=t; label="{_dot(title)}";')
    for i, h in enumerate(hosts):
        out.append(f'    legend{i} [shape=plaintext, label="{_dot(h)}", fontcolor="{color_of[h]}"];')
    for state in State:
        fill = ', style="rounded,filled", fillcolor="#fff3c4"' if state.value in visited else ""
        out.append(f'    {state.value} [label="{state.value}"{fill}];')
    for src, targets in TRANSITIONS.items():
        for dst, cause in targets.items():
            who = taken.get((src.value, dst.value))
            if who:
                colors = {color_of[h] for h in who}
                color = colors.pop() if len(colors) == 1 else "#9467bd"
                out.append(f'    {src.value} -> {dst.value} [label="{_dot(cause)}", color="{color}", '
                           f'fontcolor="{color}", penwidth=2.5];')
            else:
                out.append(f'    {src.value} -> {dst.value} [label="{_dot(cause)}"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _dot(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def timeline(events: list[dict], hosts: list[str], end: float, msl: float = 30.0,
             clock: Callable[[float], str] | None = None) -> str:
    """Time spent in each state, per endpoint; TIME_WAIT shows when its 2 x MSL would end.
    clock: how to print a time (default: seconds, as the events carry them)."""
    def at(t: float) -> str:
        return f"{t:10.6f}" if clock is None else clock(t)

    out = []
    for host in hosts:
        changes = [e for e in events if e["type"] == "state" and e.get("host") == host]
        out.append(host)
        if not changes:
            out.append("  (no state changes seen)")
            continue
        for i, e in enumerate(changes):
            start = e["t"]
            if i + 1 < len(changes):
                stop = changes[i + 1]["t"]
                span = f"{at(start)} → {at(stop)}  {_duration(stop - start):>10}"
            elif e["to"] == "TIME_WAIT":
                span = (f"{at(start)} → {at(start + 2 * msl)}  2×MSL countdown, "
                        f"{max(0.0, start + 2 * msl - end):.3f} s left at the end")
            else:
                span = f"{at(start)} → (end)"
            out.append(f"  {e['to']:<12} {span}")
    return "\n".join(out) + "\n"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms" if seconds < 1 else f"{seconds:.3f} s"
