"""What `watch` and `trace --live` share: their options, the capture ring and the kernel's
tracepoints opened (and closed, also on Ctrl-C), the loop, and what is printed and written at the end."""

import argparse
import os
import select
import signal
import sys
import time

from ..views import relative
from ..views.capture import PcapngWriter
from ..views.files import write_views
from ..views.live import Live, catch_signals, follow
from ..views.live_census import CensusLive
from ..views.ring import Ring
from ..views.tracefs import HOLD, open_trace


def add_arguments(p, json_help: str | None = None) -> None:
    """The live views' options (trace adds --color and --width with its other ladder options)."""
    p.add_argument("--pcapng", metavar="FILE", help="write every packet captured (kernel timestamps)")
    p.add_argument("--msl", type=float, default=30.0,
                   help="MSL for the TIME_WAIT countdown (default 30: Linux's TIME_WAIT lasts 60 s)")
    p.add_argument("--buffer-mb", type=_megabytes, default=64.0, metavar="MB",
                   help="the capture ring's size (default 64, at least two 256 KB blocks); when it is full the "
                        "kernel drops packets, counts them, and the ladder marks the gap")
    p.add_argument("--no-kernel", action="store_true",
                   help="do not read the kernel's tracepoints (states, cwnd, srtt) beside the wire")
    if json_help:
        p.add_argument("--json", action="store_true", help=json_help)


def _megabytes(text: str) -> float:
    try:
        mb = float(text)
    except ValueError:
        mb = -1.0
    if not 0 < mb <= 4096:
        raise argparse.ArgumentTypeError(f"{text!r}: give megabytes, more than 0 and at most 4096")
    return mb


def add_ladder_look(p) -> None:
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="color the terminal ladder: auto (when stdout is a terminal, the default), always, never")
    p.add_argument("--width", type=int, metavar="COLUMNS",
                   help="fit the terminal ladder in COLUMNS; default: the full ~125-column layout")


class Session:
    """A ring on IFACE and, unless refused, the kernel's tracepoints; `run(running)` draws until
    running() is false; `finish()` prints and writes what the options ask for."""

    def __init__(self, iface: str, args, name: str):
        self.args, self.name = args, name
        self.ring = Ring(iface, args.buffer_mb)
        self.trace, why = (None, "--no-kernel") if args.no_kernel else open_trace(name)
        if self.trace is None:  # said once
            print(f"{name}: the kernel's own states are not shown ({why}); states are inferred from the wire",
                  file=sys.stderr)
        self.note = ""
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        if getattr(args, "census", False):  # (watch --census: a line a second instead of the ladder)
            self.live: Live = CensusLive(args.msl)
        else:
            self.live = Live(color=color, width=args.width, ladder=not getattr(args, "json", False))
        self.stop, self._old = catch_signals()

    def run(self, running) -> None:
        follow(self.ring, self.live, lambda: running() and not self.stop["signal"])

    def finish(self, end: float) -> list:
        """The last packets and events, the ladder's last lines, the timelines counted to `end` (the
        command's end), the JSON lines, the files."""
        for _ in range(3):  # the ring hands a part-filled block over after 20 ms: the command's last packets
            select.select([self.ring], [], [], 0.05)
            self.live.poll(self.ring)
        if self.trace is not None:
            if not self.trace.drain(10):
                self.note = f"{self.name}: the kernel's trace events were not all read within 10 s"
            self.live.keep(self.trace.read())
            if self.trace.overruns() or self.trace.lost:
                self.note = (f"{self.name}: the kernel's trace lost events ({self.trace.overruns()} overrun in its "
                             f"buffer, {self.trace.lost} chunks over the {HOLD >> 20} MB held): they came too fast")
        self.live.redraw(final=True)
        views = self.live.summary(self.args.msl, end, self.ring, self.note)
        if getattr(self.args, "json", False):
            self.live.json_lines(views, end)
        self._write_files(views, end)
        return views

    def _write_files(self, views: list, end: float) -> None:
        args = self.args
        if args.pcapng:
            with open(args.pcapng, "wb") as f:
                w = PcapngWriter(f, application=self.name)
                for t, p in self.live.packets:
                    w.write(t, p)
            print(f"wrote {args.pcapng}", file=sys.stderr)
        if getattr(args, "html", None) and views:
            for v in views:  # the kernel's cwnd and srtt go into the plots; the end is the command's
                v.events = sorted(v.events + [e for e in self.live.kernel_of(v) if e["type"] == "kprobe"],
                                  key=lambda e: e["t"])
                v.end = end
            for path in write_views(args, relative(views), self.name, args.msl):
                print(f"wrote {path}", file=sys.stderr)

    def close(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self.ring.close()
        if self.trace is not None:
            self.trace.close()


def run_live(args) -> int:
    """`tcpwave trace --live IFACE`: the live ladder of an existing interface, until Ctrl-C."""
    try:
        session = Session(args.live, args, "tcpwave trace")
    except OSError as e:
        print(f"tcpwave trace: capturing on {args.live}: {e.strerror or e}"
              + (" (needs root)" if os.geteuid() else ""), file=sys.stderr)
        return 1
    try:
        print(f"capturing on {args.live}; Ctrl-C ends", file=sys.stderr)
        session.run(lambda: True)
        session.finish(time.time())
        print("tcpwave trace: stopped", file=sys.stderr)
        return 0
    finally:
        session.close()
