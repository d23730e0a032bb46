"""Ways to look at TCP: captures (pcap/pcapng), state inference from segments, ladders, timelines,
Mermaid and Graphviz diagrams. `load(path)` turns a capture or a tcpwave event log into views."""

import dataclasses
import json

from .capture import CaptureError, read_capture
from .infer import ConnectionView, infer_connections


def load(path: str, report: dict | None = None) -> tuple[list[ConnectionView], dict[str, int]]:
    """Connections in a pcap/pcapng capture (states inferred) or a tcpwave event log (states as
    tcpwave recorded them), plus counts of what was skipped. `report`: see read_capture."""
    with open(path, "rb") as f:
        head = f.read(1)
    if head == b"{":
        return _from_event_log(path), {}
    return infer_connections(read_capture(path, report))


def relative(views: list) -> list:
    """The views with times counted from the first packet of the capture (or the log's first event)."""
    t0 = min(v.start for v in views)
    if not t0:
        return views
    return [dataclasses.replace(v, events=[dict(e, t=e["t"] - t0) for e in v.events], start=v.start - t0,
                                end=v.end - t0) for v in views]


def _from_event_log(path: str) -> list[ConnectionView]:
    events = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise CaptureError(f"{path}:{n}: not a JSON event line ({e.msg})") from None
    return [_view(group) for group in _by_connection(events)]


def _by_connection(events: list[dict]) -> list[list[dict]]:
    """Split a log into connections (4-tuples), in order of first appearance. A listener's own
    events go with every connection on its port; a segment lost on the link with the connection
    that sent it."""
    groups: dict[frozenset, list[dict]] = {}
    listening: dict[str, list[dict]] = {}  # local endpoint -> its listener's events so far
    last_send: dict[tuple, frozenset] = {}
    for e in events:
        key = None
        if "src" in e and "dst" in e:
            key = frozenset((e["src"], e["dst"]))
            if e["type"] == "send":
                last_send[(e["host"], e["flags"], e["seq"], e["ack"], e["len"])] = key
        elif e.get("where") == "link":
            key = last_send.get((e["host"], e.get("flags"), e.get("seq"), e.get("ack"), e.get("len")))
        elif isinstance(e.get("conn"), str):
            conn = e["conn"]
            if conn.endswith(" (listening)"):  # what the listener did before a connection came belongs to it;
                local = conn[: -len(" (listening)")]  # its later life (LISTEN -> CLOSED at shutdown) does not
                listening.setdefault(local, []).append(e)
                continue
            if "-" in conn:
                key = frozenset(conn.split("-", 1))
        if key is None:
            continue
        if key not in groups:
            groups[key] = [le for local, les in listening.items() if local in key for le in les]
        groups[key].append(e)
    return [sorted(g, key=lambda e: e["t"]) for g in groups.values()]


def _view(events: list[dict]) -> ConnectionView:
    """One connection's events. When only one side was traced (tcpwave serve, connect, fetch), the
    peer's segments are drawn from what that side received."""
    senders = {e["host"] for e in events if e["type"] == "send"}
    if len(senders) == 1:
        (ours,) = senders
        # the peer's segments, drawn as sent just before we received them: in the log's own order (a
        # segment that arrived came before what we did about it at the same instant)
        with_peer = []
        for e in events:
            if e["type"] == "recv" and e["host"] == ours:
                with_peer.append(dict(e, type="send", host=e["src"]))
            with_peer.append(e)
        events = with_peer
    hosts: list[str] = []
    for e in events:  # the SYN sender goes left; then whoever speaks first
        if e.get("type") == "send" and e["flags"] == "SYN" and e["host"] not in hosts:
            hosts.append(e["host"])
    for e in events:
        if e.get("type") in ("send", "state") and e["host"] not in hosts:
            hosts.append(e["host"])
    if len(hosts) < 2:
        hosts += ["?"] * (2 - len(hosts))
    start = events[0]["t"] if events else 0.0
    end = events[-1]["t"] if events else 0.0
    return ConnectionView(hosts[0], hosts[1], events, start, end)


__all__ = ["CaptureError", "ConnectionView", "infer_connections", "load", "read_capture"]
