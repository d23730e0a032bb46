"""Ways to look at TCP: captures (pcap/pcapng), state inference from segments, ladders, timelines,
Mermaid and Graphviz diagrams. `load(path)` turns a capture or a tcpwave event log into views."""

import json

from .capture import CaptureError, read_capture
from .infer import ConnectionView, infer_connections


def load(path: str) -> tuple[list[ConnectionView], dict[str, int]]:
    """Connections in a pcap/pcapng capture (states inferred) or a tcpwave event log (states as
    tcpwave recorded them), plus counts of what was skipped."""
    with open(path, "rb") as f:
        head = f.read(1)
    if head == b"{":
        return _from_event_log(path), {}
    return infer_connections(read_capture(path))


def _from_event_log(path: str) -> list[ConnectionView]:
    events = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise CaptureError(f"{path}:{n}: not a JSON event line ({e.msg})") from None
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
    return [ConnectionView(hosts[0], hosts[1], events, start, end)]


__all__ = ["CaptureError", "ConnectionView", "infer_connections", "load", "read_capture"]
