"""The kernel's own view of its TCP sockets, from tracepoints read through tracefs (root).

An instance of our own under tracefs's instances/ (so nobody else's tracing is touched), with the
events below enabled and its clock set to CLOCK_MONOTONIC; times are turned into wall-clock times
(as the capture's kernel timestamps are) with the offset between the two clocks. The instance is
removed by `close()`, which the commands call in a finally (so also on Ctrl-C and SIGTERM).

The tracepoints are global: they report every TCP socket of the machine, in every network
namespace. `kernel_view.py` keeps those whose addresses and ports match a connection captured.
"""

import os
import re
import subprocess
import time

ROOTS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
EVENTS = ("sock/inet_sock_set_state", "tcp/tcp_retransmit_skb", "tcp/tcp_probe", "tcp/tcp_send_reset",
          "tcp/tcp_receive_reset", "tcp/tcp_cong_state_set")
BUFFER_KB = 4096  # per CPU
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
        self.rest = b""
        try:
            _write(os.path.join(self.dir, "trace_clock"), "mono")
            _write(os.path.join(self.dir, "buffer_size_kb"), str(BUFFER_KB))
            for event in EVENTS:
                path = os.path.join(self.dir, "events", event)
                if os.path.isdir(path):  # tcp_cong_state_set is newer than the rest (Linux 5.19)
                    if event.endswith("inet_sock_set_state"):
                        _write(os.path.join(path, "filter"), "protocol == 6")
                    _write(os.path.join(path, "enable"), "1")
                    self.enabled.append(event.split("/")[1])
            self.offset = _clock_offset()
            self.fd = os.open(os.path.join(self.dir, "trace_pipe"), os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            self.close()
            raise

    def fileno(self) -> int:
        return self.fd

    def read(self) -> list[dict]:
        out = []
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.rest += chunk
        *lines, self.rest = self.rest.split(b"\n")
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


def open_trace(command: str) -> tuple["KernelTrace | None", str]:
    """The trace, or None and why not (said once by the caller)."""
    if os.geteuid() != 0:
        return None, "not root"
    try:
        return KernelTrace(f"tcpwave-{os.getpid()}"), ""
    except OSError as e:
        return None, e.strerror or str(e)
