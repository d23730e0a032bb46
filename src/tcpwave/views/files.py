"""Writing views to files, shared by `tcpwave demo` and `tcpwave trace`: --html, --svg, --png.

--svg out.svg writes the ladder to out.svg, the time-scaled ladder to out-timed.svg and the state
diagram to out-states.svg; --png out writes
out-seq.png (time-sequence graph) and out-cc.png (cwnd, RTT, RTO). With several connections each
name gets -1, -2, ... before its suffix.
"""

import os
import shutil
import sys

from .infer import ConnectionView
from .ladder import FULL_WIDTH

# below this many data segments in the busier direction, a time-sequence graph and cwnd/RTT plots
# show a few dots and no trend: not drawn, and the reason said
PLOT_MIN_SEGMENTS = 10


def add_arguments(p) -> None:
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML report with a step-through control")
    p.add_argument("--svg", metavar="FILE",
                   help="write the ladder as SVG to FILE, the time-scaled ladder to FILE-timed.svg and the "
                        "RFC 9293 state diagram to FILE-states.svg")
    p.add_argument("--png", metavar="PREFIX",
                   help="write PREFIX-seq.png (time-sequence graph) and PREFIX-cc.png (cwnd, RTT, RTO); "
                        "needs matplotlib")


def add_ladder_arguments(p) -> None:
    """The terminal ladder's options, shared by demo and trace."""
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="color the terminal ladder: auto (when stdout is a terminal, the default), always, never")
    p.add_argument("--width", type=int, metavar="COLUMNS",
                   help="fit the terminal ladder in COLUMNS (80 is enough: each segment's words go under its "
                        f"arrow); default: the terminal's width when it is narrower than the full {FULL_WIDTH}-column "
                        "layout (the full layout when the output is not a terminal)")
    p.add_argument("--explain", action="store_true",
                   help="under each step of the ladder: the call or reason behind it, the timers, and notes in "
                        "plain words at the moments textbooks ask about")


def ladder_width(requested: int | None, stream=None) -> int | None:
    """The width to draw the terminal ladder in: --width if given; else the terminal's, when the
    output is a terminal narrower than the full layout; else None (the full layout)."""
    if requested:
        return requested
    stream = stream or sys.stdout
    if not stream.isatty():
        return None
    columns = shutil.get_terminal_size().columns
    return columns if columns < FULL_WIDTH else None


def tagged(path: str, tag: str) -> str:
    """out.pcap + 'loss1-sack' -> out-loss1-sack.pcap (one file per run of a multi-run command)."""
    stem, ext = os.path.splitext(path)
    return f"{stem}-{tag}{ext}"


def _numbered(path: str, n: int, many: bool, extra: str = "", suffix: str | None = None) -> str:
    stem, ext = os.path.splitext(path)
    if suffix is not None:
        stem, ext = (stem if ext == suffix else path), suffix
    return f"{stem}{f'-{n}' if many else ''}{extra}{ext}"


def write_views(args, views: list[ConnectionView], title: str, msl: float = 30.0) -> list[str]:
    """Write what args asks for; returns the paths written."""
    written = []
    many = len(views) > 1
    if getattr(args, "html", None):
        from .html import report

        with open(args.html, "w", encoding="utf-8") as f:
            f.write(report(views, title, msl))
        written.append(args.html)
    if getattr(args, "svg", None):
        from .svg import ladder_svg, state_svg

        for n, v in enumerate(views, 1):
            ladder = _numbered(args.svg, n, many)
            timed = _numbered(args.svg, n, many, "-timed")
            states = _numbered(args.svg, n, many, "-states")
            with open(ladder, "w", encoding="utf-8") as f:
                f.write(ladder_svg(v.events, v.left, v.right, f"{title}: {v.title}"))
            with open(timed, "w", encoding="utf-8") as f:
                f.write(ladder_svg(v.events, v.left, v.right, f"{title}: {v.title} (time-scaled)", timed=True))
            with open(states, "w", encoding="utf-8") as f:
                f.write(state_svg(v.events, [v.left, v.right], f"{title}: {v.title}"))
            written += [ladder, timed, states]
    if getattr(args, "png", None):
        from . import plots

        for n, v in enumerate(views, 1):
            sender = plots.data_sender(v.events, v.left, v.right)
            seq = _numbered(args.png, n, many, "-seq", suffix=".png")
            cc = _numbered(args.png, n, many, "-cc", suffix=".png")
            data = [e for e in v.events if e["type"] == "send" and e["host"] == sender and e["len"]]
            if len(data) < PLOT_MIN_SEGMENTS:
                print(f"not writing {seq} and {cc}: {len(data)} data segment{'' if len(data) == 1 else 's'} "
                      f"({sum(e['len'] for e in data)} bytes) from {sender} are too few to plot "
                      f"(fewer than {PLOT_MIN_SEGMENTS})", file=sys.stderr)
                continue
            plots.time_sequence(v.events, v.left, v.right, seq, sender)
            plots.cc_plots(v.events, sender, cc)
            written += [seq, cc]
    return written
