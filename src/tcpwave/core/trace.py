"""Trace events: what every layer reports, as plain dicts, stamped with the injected clock.

A Tracer fans events out to sinks (a list, a JSON-lines file, the ladder renderer).
Each event has at least `t` (seconds, from the caller's clock), `host` and `type`.
"""

import json
from collections.abc import Callable
from typing import IO

Sink = Callable[[dict], None]


class Tracer:
    """The boundary between the core and whatever records it: emit() never raises. A sink that
    raises (a full disk under an event log, say) is disabled, and `on_error(sink, exception)` is
    called once for it; the step of the core that emitted goes on as if nothing had been listening."""

    def __init__(self, *sinks: Sink, on_error: Callable[[Sink, Exception], None] | None = None):
        self._sinks: list[Sink] = list(sinks)
        self.enabled = bool(self._sinks)  # an attribute, not a property: read on every hot-path step
        self.on_error = on_error
        self.failed: list[tuple[Sink, Exception]] = []  # the sinks disabled, with what they raised

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)
        self.enabled = True

    def emit(self, t: float, host: str, type: str, **fields) -> None:
        if not self._sinks:
            return
        event = {"t": round(t, 9), "host": host, "type": type, **fields}
        for sink in self._sinks:
            try:
                sink(event)
            except Exception as e:  # noqa: BLE001 (a sink's failure, whatever it is, never reaches the core)
                self._disable(sink, e)

    def remove_sink(self, sink: Sink) -> None:
        self._sinks = [s for s in self._sinks if s != sink]  # (an emit under way goes on over the old list)
        self.enabled = bool(self._sinks)

    def _disable(self, sink: Sink, error: Exception) -> None:
        self.remove_sink(sink)
        self.failed.append((sink, error))
        report_failure(self.on_error, sink, error)


def report_failure(on_error, sink, error: Exception) -> None:
    """Tell `on_error` (if any) that `sink` failed; a failing reporter is ignored, not raised."""
    if on_error is not None:
        try:
            on_error(sink, error)
        except Exception:  # noqa: BLE001, S110 (nothing left to tell it to)
            pass


class ListSink(list):
    """Keeps every event; handy in tests (`[e for e in sink if e['type'] == 'state']`)."""

    def __call__(self, event: dict) -> None:
        self.append(event)

    def of_type(self, type: str, host: str | None = None) -> list[dict]:
        return [e for e in self if e["type"] == type and (host is None or e["host"] == host)]


class JsonLinesSink:
    def __init__(self, stream: IO[str]):
        self._stream = stream
        self.name = getattr(stream, "name", "events")

    def __call__(self, event: dict) -> None:
        self._stream.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")


NULL_TRACER = Tracer()
