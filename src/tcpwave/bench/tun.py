"""`tcpwave bench`: tcpwave against the Linux kernel over TUN, next to two Linux kernels over veth.

Everything runs in network namespaces made here and removed at the end (also on failure); only
TEST-NET addresses inside them are used. Every transfer is verified by SHA-256, not just counted.
Three figures per side: bulk Linux client -> server, bulk client -> Linux server, and Linux
connect+close cycles per second against the server (one at a time, and 8 in parallel).
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

PY = sys.executable
SERVER, KERNEL = "192.0.2.2", "192.0.2.1"

# Linux-side programs, run with `python -c` inside a namespace. Each prints one JSON line.
PUSH = """
import hashlib, json, socket, sys, time
n, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
cc = sys.argv[4] if len(sys.argv) > 4 else ""  # a congestion control for this socket; "": the kernel's default
block = bytes(range(256)) * 4096
h = hashlib.sha256(); sent = 0
while sent < n:  # the digest the server must answer, worked out before the clock starts
    chunk = block[: min(len(block), n - sent)]
    h.update(chunk); sent += len(chunk)
s = socket.socket(socket.AF_INET)
if cc:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())
s.settimeout(60); s.connect((host, port))
used = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\\0")[0].decode()
t = time.perf_counter(); sent = 0
while sent < n:
    chunk = block[: min(len(block), n - sent)]
    s.sendall(chunk); sent += len(chunk)
s.shutdown(socket.SHUT_WR)
answer = b"".join(iter(lambda: s.recv(4096), b""))
dt = time.perf_counter() - t
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
def u32(at):
    return int.from_bytes(info[at:at + 4], sys.byteorder) if len(info) >= at + 4 else None
def u64(at):
    return int.from_bytes(info[at:at + 8], sys.byteorder) if len(info) >= at + 8 else None
# struct tcp_info (linux/tcp.h): what the sender's kernel says limited it
print(json.dumps({"bytes": sent, "seconds": dt, "verified": answer.decode() == h.hexdigest(), "cc": used,
                  "retransmitted_segments": u32(100), "srtt_us": u32(68), "min_rtt_us": u32(148),
                  "busy_us": u64(168), "rwnd_limited_us": u64(176), "sndbuf_limited_us": u64(184)}))
"""

HASH_SERVER = """
import hashlib, json, socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
open(sys.argv[2], "w").close()
c, _ = s.accept(); t = time.perf_counter(); h = hashlib.sha256(); n = 0
for b in iter(lambda: c.recv(1 << 20), b""):
    h.update(b); n += len(b)
dt = time.perf_counter() - t
c.sendall(h.hexdigest().encode()); c.close()
print(json.dumps({"bytes": n, "seconds": dt, "sha256": h.hexdigest()}))
"""

CYCLES = """
import json, os, socket, subprocess, sys, time
seconds, limit, host = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
port, parallel = int(sys.argv[4]), int(sys.argv[5])
# `parallel` client processes, each connecting and closing one connection at a time for `seconds`
# (and at most limit // parallel times); a process, not a thread, so the clients do not share a GIL
r, w = os.pipe()
for i in range(parallel):
    if os.fork() == 0:
        done = errors = 0; t = time.perf_counter(); end = t + seconds
        while done + errors < limit // parallel and time.perf_counter() < end:
            try:
                socket.create_connection((host, port), timeout=10).close(); done += 1
            except OSError:
                errors += 1
        os.write(w, json.dumps([done, errors, time.perf_counter() - t]).encode() + b"\\n"); os._exit(0)
os.close(w)
results = [json.loads(line) for line in os.fdopen(r).read().splitlines()]
for _ in range(parallel): os.wait()
# every cycle completes: each connection the clients closed must reach TIME_WAIT (the server's FIN
# and our last ACK), or be gone, within a bounded wait
def unfinished():
    out = subprocess.run(["ss", "-Htan", "dst", host, "dport", "=", str(port)], capture_output=True, text=True).stdout
    return sum(1 for line in out.splitlines() if not line.startswith("TIME-WAIT"))
deadline = time.monotonic() + 10
while (left := unfinished()) and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({"cycles": sum(x[0] for x in results), "errors": sum(x[1] for x in results),
                  "seconds": max(x[2] for x in results), "unfinished": left}))
"""

TCPWAVE_PUSH = """
import asyncio, contextlib, json, sys
from tcpwave.aio import Runtime, TunLink, open_connection
from tcpwave.drivers.taps import Tapped
from tcpwave.drivers.tun import SEGMENT_MAX, TunDevice
from tcpwave.stack import Stack
from tcpwave.core.trace import Tracer
from tcpwave.views.record import open_captures
n, host, port, offload = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
captures = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
async def main():
    with TunDevice("tcpw0", host + "/24", "192.0.2.2", offload=offload) as dev, contextlib.ExitStack() as files:
        tracer = Tracer()
        taps = open_captures(files, tracer, pcap=captures.get("--pcap"), pcapng=captures.get("--pcapng"),
                             events=captures.get("--events"))
        link = Tapped(TunLink(dev), taps) if taps else TunLink(dev)
        stack = Stack(["192.0.2.2"], checksum_offload=dev.offload, segment_max=SEGMENT_MAX if dev.offload else 0,
                      tracer=tracer, host="tcpwave")
        runtime = Runtime(stack, link)
        if taps:
            link.clock = runtime.now
        open(sys.argv[5], "w").close()  # the device (and the kernel's address) exists
        await asyncio.sleep(0)
        for _ in range(200):  # the Linux server binds once the address exists
            try:
                reader, writer = await open_connection(host, port, runtime=runtime); break
            except ConnectionRefusedError:
                await asyncio.sleep(0.02)
        block = bytes(range(256)) * 4096; sent = 0
        while sent < n:
            chunk = block[: min(len(block), n - sent)]
            writer.write(chunk); sent += len(chunk)
            await writer.drain()
        writer.write_eof()
        await reader.read()
        writer.close()
        runtime.close()
asyncio.run(main())
"""

def pattern_sha256(n: int) -> str:
    import hashlib

    h, block, sent = hashlib.sha256(), bytes(range(256)) * 4096, 0
    while sent < n:
        chunk = block[: min(len(block), n - sent)]
        h.update(chunk)
        sent += len(chunk)
    return h.hexdigest()


def sh(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw)


@contextlib.contextmanager
def namespaces(*names):
    made = []
    try:
        for name in names:
            sh("ip", "netns", "add", name)
            made.append(name)
            sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
            # A client that closes first keeps each connection in TIME_WAIT for 60 s, and Linux picks
            # connect()'s ports from half its ephemeral range first: after ~14,000 connections every
            # connect() searches the range (a few hundred per second; that is why a 5 s run of a plain
            # socket client measured 1,759/s). Reusing TIME_WAIT ports, with timestamps, avoids it.
            sh("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1")
        yield
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def in_ns(ns: str, *cmd, timeout: float = 300) -> dict:
    out = sh("ip", "netns", "exec", ns, *cmd, timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


@contextlib.contextmanager
def background(ns: str, *cmd, ready: str | None = None):
    """A server process in `ns`, stopped (by its PID) on exit; waits for `ready` to exist (made by this
    process: one left by an earlier run is removed first, else a client would race the server)."""
    if ready and os.path.exists(ready):
        os.remove(ready)
    proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 20
        while ready and not os.path.exists(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {proc.stderr.read()[-500:] if proc.stderr else ''}")
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _mbps(r: dict) -> float:
    return r["bytes"] * 8 / r["seconds"] / 1e6


def _capture_flags(captures: dict, tag: str) -> list[str]:
    from ..views.files import tagged

    return [arg for flag, path in captures.items() for arg in (flag, tagged(path, tag))]


def _churn_rows(ns: str, workers: int, seconds: float, cycles: int) -> dict:
    """The connect+close rows against the discard server running in `ns` with `workers` workers
    (or acceptor processes): 1 and 8 clients with one, 8 clients with two."""
    rows = {}
    for key, parallel in [("cycles_1", 1), ("cycles_8", 8)] if workers == 1 else [("cycles_8_2w", 8)]:
        r = in_ns(ns, PY, "-c", CYCLES, str(seconds), str(cycles), SERVER, "9", str(parallel))
        rows[key] = {"per_s": r["cycles"] / r["seconds"], "cycles": r["cycles"], "errors": r["errors"],
                     "unfinished": r["unfinished"]}
    return rows


def measure_tcpwave(size: int, cycles: int, seconds: float, tmp: str, offload: bool,
                    captures: dict | None = None) -> dict:
    ns = f"tcpwave-bench-{os.getpid()}"
    extra = [] if offload else ["--no-offload"]
    serve = [PY, "-m", "tcpwave.cli.main", "serve", *extra]
    captures = captures or {}
    tag = "on" if offload else "off"
    res = {}
    with namespaces(ns):
        ready = os.path.join(tmp, f"tw-ready-1-{tag}")
        flags = _capture_flags(captures, f"linux_to_tcpwave-offload_{tag}")
        with background(ns, *serve, *flags, "hash", "--port", "5001", "--ready-file", ready, ready=ready):
            r = in_ns(ns, PY, "-c", PUSH, str(size), SERVER, "5001")
        res["linux_to_tcpwave"] = {"mbps": _mbps(r), "verified": r["verified"]}
        for workers in (1, 2):
            ready = os.path.join(tmp, f"tw-ready-2-{tag}-{workers}")
            flags = _capture_flags(captures, f"cycles-offload_{tag}" + ("" if workers == 1 else f"-{workers}workers"))
            with background(ns, *serve, *flags, "discard", "--port", "9", "--workers", str(workers),
                            "--ready-file", ready, ready=ready):
                res.update(_churn_rows(ns, workers, seconds, cycles))
        # tcpwave client -> Linux server: the kernel side's address exists once the device does,
        # so the Linux server binds to any address; `tcpwave connect` reads the data from a pipe
        device_ready = os.path.join(tmp, f"tw-dev-{tag}")
        from ..views.files import tagged

        push_captures = {flag: tagged(path, f"tcpwave_to_linux-offload_{tag}") for flag, path in captures.items()}
        client = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-c", TCPWAVE_PUSH, str(size), KERNEL, "5002",
                                   "1" if offload else "0", device_ready, json.dumps(push_captures)],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            while not os.path.exists(device_ready) and client.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            ready = os.path.join(tmp, f"lx-ready-1-{tag}")
            with background(ns, PY, "-c", HASH_SERVER, "5002", ready) as server:
                out, _ = server.communicate(timeout=300)
                r = json.loads(out.strip().splitlines()[-1])
            client.wait(60)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        res["tcpwave_to_linux"] = {"mbps": _mbps(r), "verified": r["sha256"] == pattern_sha256(size)}
    return res


ACCEPTOR = """
import os, signal, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9)); s.listen(4096)
kids = []
for _ in range(int(sys.argv[2]) - 1):  # processes sharing the listener, as tcpwave's workers share the queues
    pid = os.fork()
    if pid == 0:
        kids = None
        break
    kids.append(pid)
if kids is not None:  # the first process: ends the others (by PID) when it is ended
    def end(*_):
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
        os._exit(0)
    signal.signal(signal.SIGTERM, end)
    open(sys.argv[1], "w").close()
while True:
    c = s.accept()[0]
    while c.recv(65536):
        pass
    c.close()
"""


def measure_linux(size: int, cycles: int, seconds: float, tmp: str) -> dict:
    """The ceiling: two kernels in two namespaces joined by a veth pair."""
    a, b = f"tcpwave-bench-{os.getpid()}-a", f"tcpwave-bench-{os.getpid()}-b"
    res = {}
    with namespaces(a, b):
        sh("ip", "link", "add", "vbench0", "netns", a, "type", "veth", "peer", "name", "vbench1", "netns", b)
        sh("ip", "netns", "exec", a, "ip", "addr", "add", f"{KERNEL}/24", "dev", "vbench0")
        sh("ip", "netns", "exec", b, "ip", "addr", "add", f"{SERVER}/24", "dev", "vbench1")
        sh("ip", "netns", "exec", a, "ip", "link", "set", "vbench0", "up")
        sh("ip", "netns", "exec", b, "ip", "link", "set", "vbench1", "up")
        ready = os.path.join(tmp, "veth-ready-1")
        hash_echo = HASH_SERVER  # the server answers with the hash, as tcpwave's hash service does
        with background(b, PY, "-c", hash_echo, "5001", ready, ready=ready):
            r = in_ns(a, PY, "-c", PUSH, str(size), SERVER, "5001")
        res["linux_to_tcpwave"] = {"mbps": _mbps(r), "verified": r["verified"]}
        res["tcpwave_to_linux"] = res["linux_to_tcpwave"]  # the same kernel path in both directions
        for workers in (1, 2):  # the discard server's work: read to the end, close
            ready = os.path.join(tmp, f"veth-ready-2-{workers}")
            with background(b, PY, "-c", ACCEPTOR, ready, str(workers), ready=ready):
                res.update(_churn_rows(a, workers, seconds, cycles))
    return res


ROWS = (("linux_to_tcpwave", "bulk: Linux client -> server", "mbps", "Mbit/s"),
        ("tcpwave_to_linux", "bulk: client -> Linux server", "mbps", "Mbit/s"),
        ("cycles_1", "connect+close, 1 client", "per_s", "/s"),
        ("cycles_8", "connect+close, 8 clients", "per_s", "/s"),
        ("cycles_8_2w", "... 8 clients, 2 workers", "per_s", "/s"))
CYCLE_ROWS = ("cycles_1", "cycles_8", "cycles_8_2w")


def run(size: int = 200_000_000, cycles: int = 200_000, as_json: bool = False, captures: dict | None = None,
        seconds: float = 5.0) -> int:
    """captures: {"--pcap": FILE, ...}: each run writes its own FILE-<run>.<ext> of tcpwave's side.
    Each connect+close row runs for `seconds`, and at most `cycles` cycles."""
    if os.geteuid() != 0:
        print("tcpwave bench: needs root (network namespaces and TUN devices)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        tw_on = measure_tcpwave(size, cycles, seconds, tmp, offload=True, captures=captures)
        tw_off = measure_tcpwave(size, cycles, seconds, tmp, offload=False, captures=captures)
        lx = measure_linux(size, cycles, seconds, tmp)
    sides = (tw_on, tw_off, lx)
    ok = all(side[k].get("verified", True) for side in sides for k, *_ in ROWS) and \
        not any(side[k]["errors"] or side[k]["unfinished"] for side in sides for k in CYCLE_ROWS)
    if as_json:
        print(json.dumps({"tcpwave_offload": tw_on, "tcpwave_no_offload": tw_off, "linux_veth": lx,
                          "bytes": size, "cycles": cycles, "verified": ok}, indent=2))
        return 0 if ok else 1
    print(f"tcpwave over TUN vs two Linux kernels over veth; {size / 1e6:g} MB per transfer, verified by "
          f"SHA-256;\nconnect+close for {seconds:g} s per row (client processes), every cycle checked to reach "
          f"TIME_WAIT\n")
    print(f"{'':30} {'tcpwave, offloads':>18} {'tcpwave, none':>15} {'Linux (veth)':>14}   ratio to Linux")
    for key, label, field, unit in ROWS:
        a, b, c = tw_on[key][field], tw_off[key][field], lx[key][field]
        print(f"{label:30} {a:9.0f} {unit:<7} {b:8.0f} {unit:<6} {c:8.0f} {unit:<6}  {a / c:5.1%} / {b / c:5.1%}")
    if not ok:
        print("\nWARNING: a transfer failed verification, or connections failed or did not close", file=sys.stderr)
    return 0 if ok else 1
