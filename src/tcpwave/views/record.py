"""Recording a run to files, the same way for every command (demo, bench, serve, connect, fetch):
--pcap (RAW pcap), --pcapng (each packet commented with the state changes it caused) and --events
(JSON lines). `open_captures` returns the taps a driver feeds with (t, packet)."""

import contextlib

from ..core.trace import JsonLinesSink, Tracer
from .annotate import Annotator
from .capture import PcapngWriter
from .pcap import PcapWriter


class CommentedCapture:
    """pcapng written as the run goes, each packet commented with the state changes it caused: a
    packet is held until the events of its processing are in (the next flush; the last one when
    the capture closes)."""

    def __init__(self, writer: PcapngWriter, tracer: Tracer):
        self.writer, self.annotator = writer, Annotator()
        self.packets: list[tuple[float, bytes]] = []
        self.events: list[dict] = []
        self.epoch = 0.0  # packet times minus this are on the events' clock (a live run's wall-clock start)
        tracer.add_sink(self.events.append)

    def __call__(self, t: float, packet) -> None:
        self.packets.append((t, bytes(packet)))

    def flush(self) -> None:
        if not self.packets:
            return
        packets = [(t - self.epoch, p) for t, p in self.packets] if self.epoch else self.packets
        comments = self.annotator.feed(packets, self.events)
        for (t, packet), comment in zip(self.packets, comments, strict=True):
            self.writer.write(t, packet, comment)
        self.packets.clear()
        self.events.clear()


def open_captures(stack: contextlib.ExitStack, tracer: Tracer, *, pcap: str | None = None,
                  pcapng: str | None = None, events: str | None = None, live: bool = False) -> list:
    """Open the files asked for (closed, the pcapng flushed, with `stack`); the event log becomes a
    sink of `tracer` (line-buffered when `live`, so it can be followed while a server runs).
    Returns the taps to feed every packet to."""
    if events:
        tracer.add_sink(JsonLinesSink(stack.enter_context(open(events, "w", buffering=1 if live else -1))))
    taps: list = []
    if pcap:
        taps.append(PcapWriter(stack.enter_context(open(pcap, "wb"))))
    if pcapng:
        capture = CommentedCapture(PcapngWriter(stack.enter_context(open(pcapng, "wb"))), tracer)
        stack.callback(capture.flush)
        taps.append(capture)
    return taps
