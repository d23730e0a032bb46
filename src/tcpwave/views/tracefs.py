"""The kernel's own view of its TCP sockets, from tracepoints read through tracefs (root).

An instance of our own under tracefs's instances/ (so nobody else's tracing is touched), with the
events below enabled and its clock set to CLOCK_MONOTONIC; times are turned into wall-clock times
(as the capture's kernel timestamps are) with the offset between the two clocks. The instance is
removed by `close()`, which the commands call in a finally (so also on Ctrl-C and SIGTERM).

The tracepoints are global: they report every TCP socket of the machine, in every network
namespace. `kernel_view.py` keeps those whose addresses and ports match a connection captured.
"""

import collections
import os
import re
import select
import subprocess
import threading
import time

ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
EVENTS = ("sock/inet_sock_set_state", "tcp/tcp_retransmit_skb", "tcp/tcp_probe", "tcp/tcp_send_reset",
          "tcp/tcp_receive_reset", "tcp/tcp_cong_state_set")
BUFFER_KB = 4096  # per CPU
HOLD = 256 << 20  # bytes of event text held until read() (a 100 MB transfer at MTU 1500 gives ~25 MB)
PREFIX = "tcpwave-"  # instances/tcpwave-PID
_LINE = re.compile(r"\s(\d+\.\d+): (\w+): (.*)$")


def _tracefs() -> str:
    for root in ROOTS:
        if os.path.isdir(os.path.join(root, "instances")):
            return root
    os.makedirs(ROOTS[0], exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tracefs", "nodev", ROOTS[0]], capture_output=True).returncode == 0
    if mounted and os.path.isdir(ROOTS[0] + "/instances"):
        return ROOTS[0]
    raise OSError("tracefs is not mounted and could not be mounted")


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _clock_offset() -> float:
    """Wall clock minus CLOCK_MONOTONIC, from the closest of a few paired readings."""
    best = None
    for _ in range(5):
        a = time.time()
        m = time.monotonic()
        b = time.time()
        if best is None or b - a < best[0]:
            best = (b - a, (a + b) / 2 - m)
    assert best is not None
    return best[1]


class KernelTrace:
    """`read()` returns the events since the last call as dicts: t (wall clock), event, and the
    tracepoint's fields (key=value as the kernel prints them). `enabled` names the tracepoints on."""

    def __init__(self, name: str):
        root = _tracefs()
        self.dir = os.path.join(root, "instances", name)
        os.mkdir(self.dir)
        self.enabled: list[str] = []
        self.fd = -1
        self._chunks: collections.deque = collections.deque()  # text read, not parsed yet: at most HOLD bytes
        self._held = 0
        self._rest = b""
        self.lost = 0  # chunks let go because HOLD was reached
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._latest = 0.0  # the newest event's time read so far
        self._until = float("inf")  # drain(): the time to read up to
        self._thread = threading.Thread(target=self._follow, name="tracefs", daemon=True)
        try:
            _write(os.path.join(self.dir, "trace_clock"), "mono")
            _write(os.path.join(self.dir, "buffer_size_kb"), str(BUFFER_KB))
            for event in EVENTS:
                path = os.path.join(self.dir, "events", event)
                if os.path.isdir(path):  # tcp_cong_state_set is newer than the rest: skipped where absent
                    if event.endswith("inet_sock_set_state"):
                        _write(os.path.join(path, "filter"), "protocol == 6")
                    _write(os.path.join(path, "enable"), "1")
                    self.enabled.append(event.split("/")[1])
            self.offset = _clock_offset()
            self.fd = os.open(os.path.join(self.dir, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
            self._thread.start()
        except OSError:
            self.close()
            raise

    def _follow(self) -> None:
        """The reading thread. The kernel formats each event as text when it is read, which is slow
        for a busy machine's tcp_probe: a thread of its own, doing nothing else, keeps that from
        the packet capture. Text is kept as read (bounded: the oldest goes first), parsed by read()."""
        while not self._stop.is_set():
            if not select.select([self.fd], [], [], 0.1)[0]:
                self._idle.set()
                continue
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                continue
            self._chunks.append(chunk)
            self._held += len(chunk)
            end = chunk.rfind(b"\n")
            m = _LINE.search(chunk[chunk.rfind(b"\n", 0, end) + 1:end].decode("utf-8", "replace")) if end > 0 else None
            if m:
                self._latest = float(m.group(1))  # (CLOCK_MONOTONIC)
                if self._latest >= self._until:
                    self._idle.set()
            while self._held > HOLD:
                self._held -= len(self._chunks.popleft())
                self.lost += 1

    def drain(self, seconds: float) -> bool:
        """Wait (at most `seconds`) until the events of everything before now have been read (an event
        stamped later has been, or there is nothing left); False if not."""
        self._until = time.monotonic()
        self._idle.clear()
        if self._latest >= self._until:
            return True
        return self._idle.wait(seconds)

    def read(self) -> list[dict]:
        """The events read since the last call, parsed."""
        out = []
        while self._chunks:
            chunk = self._chunks.popleft()
            self._held -= len(chunk)
            *lines, self._rest = (self._rest + chunk).split(b"\n")
            for raw in lines:
                m = _LINE.search(raw.decode("utf-8", "replace"))
                if m:
                    fields = dict(kv.split("=", 1) for kv in m.group(3).split() if "=" in kv)
                    out.append({"t": float(m.group(1)) + self.offset, "event": m.group(2), **fields})
        return out

    def overruns(self) -> int:
        """Events the instance's buffer lost because they came faster than they were read."""
        total = 0
        per_cpu = os.path.join(self.dir, "per_cpu")
        for cpu in os.listdir(per_cpu) if os.path.isdir(per_cpu) else ():
            try:
                with open(os.path.join(per_cpu, cpu, "stats")) as f:
                    total += sum(int(line.split()[1]) for line in f if line.startswith("overrun:"))
            except OSError:
                continue
        return total

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for event in self.enabled:
            try:
                _write(os.path.join(self.dir, "events", *[e for e in EVENTS if e.endswith(event)][0].split("/"),
                                    "enable"), "0")
            except OSError:
                pass
        try:
            os.rmdir(self.dir)
        except OSError:
            pass


def _remove_stale(root: str) -> None:
    """Instances left by a tcpwave that was killed (SIGKILL leaves no time to clean up) go: their
    events would go on filling buffers."""
    instances = os.path.join(root, "instances")
    for name in os.listdir(instances):
        if name.startswith(PREFIX) and name[len(PREFIX):].isdigit():
            try:
                os.kill(int(name[len(PREFIX):]), 0)
            except ProcessLookupError:
                try:
                    os.rmdir(os.path.join(instances, name))
                except OSError:
                    pass
            except OSError:
                pass


def open_trace(command: str) -> tuple["KernelTrace | None", str]:
    """The trace, or None and why not (said once by the caller)."""
    if os.geteuid() != 0:
        return None, "not root"
    try:
        _remove_stale(_tracefs())
        return KernelTrace(f"{PREFIX}{os.getpid()}"), ""
    except OSError as e:
        return None, e.strerror or str(e)
