"""Recording a run to files, the same way for every command (demo, bench, serve, connect, fetch):
--pcap (RAW pcap), --pcapng (each packet commented with the state changes it caused) and --events
(JSON lines). `open_captures` returns the taps a driver feeds with (t, packet)."""

import contextlib
import os
import stat

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
        self.name = writer.name
        self.packets: list[tuple[float, bytes]] = []
        self.events: list[dict] = []
        self.epoch = 0.0  # packet times minus this are on the events' clock (a live run's wall-clock start)
        self.tracer = tracer
        tracer.add_sink(self.events.append)

    def disable(self) -> None:
        """No more writing (its file failed): stop collecting events for it too."""
        self.tracer.remove_sink(self.events.append)
        self.packets.clear()
        self.events.clear()

    def __call__(self, t: float, packet) -> None:
        self.packets.append((t, bytes(packet)))

    def flush(self) -> None:
        if not self.packets:
            return
        packets = [(t - self.epoch, p) for t, p in self.packets] if self.epoch else self.packets
        try:
            comments = self.annotator.feed(packets, self.events)
            for (t, packet), comment in zip(self.packets, comments, strict=True):
                self.writer.write(t, packet, comment)
        finally:  # (a write that fails leaves nothing to pile up)
            self.packets.clear()
            self.events.clear()

    def sync(self) -> None:
        self.flush()
        self.writer.sync()


def open_captures(stack: contextlib.ExitStack, tracer: Tracer, *, pcap: str | None = None,
                  pcapng: str | None = None, events: str | None = None, live: bool = False,
                  on_error=None) -> list:
    """Open the files asked for (closed, the pcapng flushed, with `stack`); the event log becomes a
    sink of `tracer` (line-buffered when `live`, so it can be followed while a server runs).
    Returns the taps to feed every packet to. on_error(sink, error) is told of a sink that failed
    (and is disabled), unless the tracer already has a reporter."""
    if tracer.on_error is None:
        tracer.on_error = on_error
    if events:
        tracer.add_sink(JsonLinesSink(_open(stack, events, "w", 1 if live else -1)))
    taps: list = []
    if pcap:
        taps.append(PcapWriter(_open(stack, pcap, "wb")))
    if pcapng:
        capture = CommentedCapture(PcapngWriter(_open(stack, pcapng, "wb")), tracer)
        stack.callback(_quietly, capture.flush)
        taps.append(capture)
    return taps


def open_private(path: str, mode: str = "wb", buffering: int = -1):
    """Open a capture or event file for writing, readable by its owner only (0600): it holds whole
    payloads. An existing regular file is truncated and made 0600 too; a device (/dev/null) is left
    as it is."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)
        return open(fd, mode, buffering=buffering, encoding=None if "b" in mode else "utf-8")
    except BaseException:
        os.close(fd)
        raise


def _open(stack: contextlib.ExitStack, path: str, mode: str, buffering: int = -1):
    f = open_private(path, mode, buffering)
    stack.callback(_quietly, f.close)
    return f


def _quietly(flush) -> None:
    try:
        flush()
    except OSError:  # the last flush of a capture whose disk is full: already reported, or too late to
        pass
