"""Live capture: packets from a TPACKET_V3 ring (ring.py: kernel timestamps, kernel drop counts),
drawn as a ladder with both endpoints' inferred states as they arrive, then each connection's state
timeline and how many packets the kernel captured and dropped. Where the kernel dropped packets, a
line in the ladder says how many and between which times. With the kernel's tracepoints
(tracefs.py), its own state changes are shown beside the inferred ones. `tcpwave watch` (a command
in a namespace of its own) and `tcpwave trace --live IFACE` (an existing interface) both use it."""

import collections
import json
import select
import signal
import struct
import sys
import time

from ..wire.errors import MalformedPacket
from ..wire.ip import parse_ip
from ..wire.tcp import PROTO_TCP
from .capture import _restore
from .diagrams import timeline
from .infer import infer_connections
from .kernel_view import KernelIndex, endpoints, kernel_events
from .kernel_view import render as render_kernel
from .ladder import render_ladder
from .ring import Ring

REDRAW = 0.2  # seconds between live redraws at least (each re-infers the states from every packet so far)
SETTLE = 0.5  # a line is printed once it is this old: a receiver's state change waits for its ACK


class Live:
    """Packets as they come, the capture gaps the kernel reported, the kernel's tracepoint events,
    and the ladder lines printed so far (the states are re-inferred from every packet at each
    redraw, so a line placed earlier in time is printed when it is known)."""

    def __init__(self, out=sys.stdout, color: bool = False, width: int | None = None, ladder: bool = True) -> None:
        self.packets: list[tuple[float, bytes]] = []
        self.printed: list[collections.Counter] = []
        self.out, self.color, self.width, self.ladder = out, color, width, ladder
        self.t0: float | None = None
        self.gaps: list[dict] = []      # {"after": t, "before": t or None, "dropped": n, "printed": bool}
        self.kernel: list[dict] = []    # tracepoint events (tracefs.KernelTrace.read) of the endpoints captured
        self._index: KernelIndex | None = None
        self.dropped = 0
        self._mark: float | None = None  # the newest packet's time at the last drop-count reading
        self._next_redraw = 0.0
        self.endpoints: set[str] = set()  # "addr:port" of every packet captured
        self._names: dict[bytes, tuple[str, ...]] = {}

    def add(self, t: float, packet: bytes) -> None:
        if self.t0 is None:
            self.t0 = t
        self.packets.append((t, packet))

    def poll(self, ring: Ring) -> int:
        """Take what the ring holds; note a gap where the kernel dropped packets. Returns
        how many packets came."""
        got = ring.read()
        for t, data, wirelen in got:
            self.add(t, _restore(data, wirelen - len(data)))
        if got:
            for gap in self.gaps:
                if gap["before"] is None:
                    gap["before"] = got[0][0]
        _, dropped = ring.stats()
        if dropped:
            self.dropped += dropped
            self.gaps.append({"after": self._mark, "before": None, "dropped": dropped, "printed": False})
        if self.packets:
            self._mark = self.packets[-1][0]
        for _, data, _ in got:
            self.endpoints.update(self._endpoints(data))
        return len(got)

    def keep(self, events: list[dict]) -> None:
        """The tracepoints report every TCP socket of the machine: keep the events of the endpoints
        captured (call when the capture is over)."""
        addrs = {_addr(x) for x in self.endpoints}
        for e in events:
            local, remote = endpoints(e)
            if local in self.endpoints or remote in self.endpoints or (
                    (e.get("sport") == "0" or e.get("dport") == "0") and _addr(local) in addrs):
                self.kernel.append(e)
        self._index = KernelIndex(self.kernel)

    def kernel_of(self, view) -> list[dict]:
        """The kernel's events for one connection (none before keep())."""
        return kernel_events(view, self._index) if self._index is not None else []

    def _endpoints(self, packet: bytes) -> tuple[str, ...]:
        """A packet's endpoints (cached by the bytes that name them: a transfer repeats them)."""
        key = packet[8:44] if packet[0] >> 4 == 6 else packet[12:20] + packet[(packet[0] & 15) * 4:][:4]
        known = self._names.get(key)
        if known is None:
            if len(self._names) > 10_000:
                self._names.clear()
            known = self._names[key] = _endpoints(packet)
        return known

    def views(self) -> list:
        views, _ = infer_connections(self.packets)
        return views

    def due(self) -> bool:
        return self.ladder and time.monotonic() >= self._next_redraw

    def redraw(self, final: bool = False) -> bool:
        """Print the lines not printed yet that are older than SETTLE (all of them if final).
        Returns whether some are still waiting. Redraws take at most ~1/5 of the time."""
        if not self.ladder:
            return False
        began = time.monotonic()
        t0 = self.t0 or 0.0
        cutoff = None if final else time.time() - t0 - SETTLE
        waiting = False
        views = self.views()
        many = len(views) > 1
        for n, v in enumerate(views, 1):
            events = [dict(e, t=e["t"] - t0) for e in v.events]
            lines = render_ladder(events, v.left, v.right, color=self.color, width=self.width).splitlines()
            if n > len(self.printed):
                self.printed.append(collections.Counter())
                print(f"\n# connection {n}: {v.title}\n{lines[0]}", file=self.out)
            seen = collections.Counter(self.printed[n - 1])
            for line in lines[1:]:
                if seen[line]:
                    seen[line] -= 1
                    continue
                t = _time(line)
                if cutoff is not None and t is not None and t > cutoff:
                    waiting = True
                    break
                if t is not None:
                    self._print_gaps(t)
                self.printed[n - 1][line] += 1
                print(f"[{n}] {line}" if many else line, file=self.out)
        if final:
            self._print_gaps(None)
        self.out.flush()
        self._next_redraw = time.monotonic() + max(REDRAW, 4 * (time.monotonic() - began))
        return waiting

    def _print_gaps(self, upto: float | None) -> None:
        """The gap lines for drops before time `upto` (relative; None: all)."""
        t0 = self.t0 or 0.0
        for gap in self.gaps:
            after = (gap["after"] if gap["after"] is not None else t0) - t0
            if gap["printed"] or (upto is not None and (gap["before"] is None or after > upto)):
                continue
            gap["printed"] = True
            until = f"{gap['before'] - t0:.6f} s" if gap["before"] is not None else "the end"
            print(f"{after:>10.6f}  ~~~~ capture gap: the kernel dropped {gap['dropped']} packets between "
                  f"{after:.6f} s and {until}; the ladder misses them here ~~~~", file=self.out)

    def summary(self, msl: float, end: float, ring: Ring | None = None, trace_note: str = "") -> list:
        """Each connection's state timeline (the kernel's states where the tracepoints gave them, else
        those inferred from the wire, said which) up to `end` (the command's end, wall clock), the
        kernel's states beside the inferred ones, and the capture's count line. Returns the views."""
        t0 = self.t0 or 0.0
        views = self.views()
        for n, v in enumerate(views, 1):
            kernel = self.kernel_of(v)
            text = []
            for host in (v.left, v.right):
                ks = [dict(e, type="state", t=e["t"] - t0) for e in kernel
                      if e["type"] == "kstate" and e["host"] == host]
                source = "kernel: sock:inet_sock_set_state" if ks else "inferred from the wire"
                events = ks or [dict(e, t=e["t"] - t0) for e in v.events if e["host"] == host]
                lines = timeline(events, [host], end - t0, msl).splitlines()
                if not ks:  # what the wire cannot show
                    lines = [line + "  (placed at the SYN: listen() is not on the wire)"
                             if line.split()[:1] == ["LISTEN"] else line for line in lines]
                text += [f"{lines[0]}  ({source})", *lines[1:]]
            if self.ladder:
                print(f"\n# connection {n}: {v.title}: states\n" + "\n".join(text), file=self.out)
                if kernel:
                    print(f"\n# connection {n}: the kernel's state changes (tracepoint) beside those inferred "
                          f"from the wire (seconds; ≠ where they differ)\n" + render_kernel(v, kernel, t0),
                          file=self.out, end="")
        self.out.flush()
        if not views:
            print(f"no TCP connections seen ({len(self.packets)} IP packets captured)", file=sys.stderr)
        if trace_note:
            print(trace_note, file=sys.stderr)
        print(f"captured {len(self.packets)} packets, kernel dropped {self.dropped}", file=sys.stderr)
        return views

    def json_lines(self, views: list, end: float, out=sys.stdout) -> None:
        """`--json`: every event as a JSON line: the wire's (inferred), then the kernel's, then the
        capture's counts. t: seconds since the first packet; t0 in the first line is its wall clock."""
        t0 = self.t0 or 0.0
        print(json.dumps({"type": "capture_start", "t0": t0}), file=out)
        for n, v in enumerate(views, 1):
            for e in v.events:
                print(json.dumps(dict(e, t=round(e["t"] - t0, 9), conn=n, source="wire")), file=out)
            for e in self.kernel_of(v):
                print(json.dumps(dict(e, t=round(e["t"] - t0, 9), conn=n, source="kernel")), file=out)
        gaps = [{"after": g["after"] - t0 if g["after"] is not None else None,
                 "before": g["before"] - t0 if g["before"] is not None else None, "dropped": g["dropped"]}
                for g in self.gaps]
        print(json.dumps({"type": "capture_end", "t": round(end - t0, 9), "captured": len(self.packets),
                          "dropped": self.dropped, "gaps": gaps}), file=out)


def _endpoints(packet: bytes) -> tuple[str, ...]:
    """A packet's two endpoints, spelled as infer.py spells them (nothing if not TCP)."""
    try:
        ip = parse_ip(packet)
        if ip.proto != PROTO_TCP or len(ip.payload) < 4:
            return ()
    except MalformedPacket:
        return ()
    sport, dport = struct.unpack_from("!HH", ip.payload)
    if ip.src.version == 6:
        return f"[{ip.src}]:{sport}", f"[{ip.dst}]:{dport}"
    return f"{ip.src}:{sport}", f"{ip.dst}:{dport}"


def _addr(endpoint: str) -> str:
    return endpoint.rsplit(":", 1)[0]


def _time(line: str) -> float | None:
    try:
        return float(line.split()[0])
    except (ValueError, IndexError):
        return None


def catch_signals() -> tuple[dict, dict]:
    """SIGINT and SIGTERM only set a flag (the loops check it and end cleanly); returns the flag and
    the handlers to put back."""
    stop = {"signal": 0}

    def interrupted(signum, _frame):
        stop["signal"] = signum

    return stop, {s: signal.signal(s, interrupted) for s in (signal.SIGINT, signal.SIGTERM)}


def follow(ring: Ring, live: Live, running) -> None:
    """Read and draw while running() says so."""
    pending = False
    while running():
        select.select([ring], [], [], REDRAW)
        pending = bool(live.poll(ring)) or pending
        if pending and live.due():
            pending = live.redraw()
