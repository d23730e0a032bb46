"""Trace events: what every layer reports, as plain dicts, stamped with the injected clock.

A Tracer fans events out to sinks (a list, a JSON-lines file, the ladder renderer).
Each event has at least `t` (seconds, from the caller's clock), `host` and `type`.
"""

import json
from collections.abc import Callable
from typing import IO

Sink = Callable[[dict], None]


class Tracer:
    def __init__(self, *sinks: Sink):
        self._sinks: list[Sink] = list(sinks)
        self.enabled = bool(self._sinks)  # an attribute, not a property: read on every hot-path step

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)
        self.enabled = True

    def emit(self, t: float, host: str, type: str, **fields) -> None:
        if not self._sinks:
            return
        event = {"t": round(t, 9), "host": host, "type": type, **fields}
        for sink in self._sinks:
            sink(event)


class ListSink(list):
    """Keeps every event; handy in tests (`[e for e in sink if e['type'] == 'state']`)."""

    def __call__(self, event: dict) -> None:
        self.append(event)

    def of_type(self, type: str, host: str | None = None) -> list[dict]:
        return [e for e in self if e["type"] == type and (host is None or e["host"] == host)]


class JsonLinesSink:
    def __init__(self, stream: IO[str]):
        self._stream = stream

    def __call__(self, event: dict) -> None:
        self._stream.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")


NULL_TRACER = Tracer()
