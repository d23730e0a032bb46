"""Clients that never read, against `tcpwave serve echo` under an address-space limit (issue 21).

    sudo .venv/bin/python benchmarks/never_reading_clients.py [--clients 3000] [--as-limit 1.5G]
        [--hold 20] [--set KNOB=VALUE ...]

In a network namespace made here (and removed at the end), `tcpwave serve echo` runs under
`prlimit --as`, its stderr a file. One client process opens N connections that write as fast as the
server takes data and never read (small socket buffers, so the kernel side holds little), for --hold
seconds, then closes them all (a RST each: data is left unread). Meanwhile a probe opens a new
connection every 0.25 s and times its echo of 4 bytes. Printed: the server's RSS idle, at its peak and
after the clients are gone (once within 20% of idle, or 10 s after the last connection went, with the
time that took); the probes' worst and median time and how many failed; what the memory
budget counted (from the control socket); MemoryError and traceback lines in stderr. Asserts
nothing: tests/test_memory_budget.py has the bounded version.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from netns import namespace, wait_for_file  # noqa: E402

CLIENTS = r"""
import errno, json, resource, selectors, socket, sys, time
n, hold, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 256, n + 256))
sel = selectors.DefaultSelector()
chunk = b"x" * 65536
socks, sent, failed = [], 0, 0
t0 = time.monotonic()
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
    s.setblocking(False)
    s.connect_ex(("192.0.2.2", 7))
    socks.append(s)
    sel.register(s, selectors.EVENT_WRITE)
    if i % 200 == 199:
        time.sleep(0.05)
live = set(socks)
while time.monotonic() - t0 < hold and live:
    for key, _ in sel.select(0.2):
        s = key.fileobj
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            pass
        except OSError:
            failed += 1
            sel.unregister(s)
            live.discard(s)
reset = n - len(live)
for s in socks:
    s.close()
json.dump({"clients": n, "sent": sent, "ended_by_server": reset}, open(out, "w"))
"""

WARM = r"""
import socket
for _ in range(int(__import__("sys").argv[1])):  # connections that echo 64 KB each, read in full
    with socket.create_connection(("192.0.2.2", 7), timeout=10) as s:
        s.sendall(b"w" * 65536)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
"""

PROBE = r"""
import json, socket, sys, time
until, out = time.monotonic() + float(sys.argv[1]), sys.argv[2]
times, failures = [], []
while time.monotonic() < until:
    t0 = time.monotonic()
    try:
        with socket.create_connection(("192.0.2.2", 7), timeout=5) as s:
            s.settimeout(5)
            s.sendall(b"ping")
            got = b""
            while len(got) < 4:
                more = s.recv(4 - len(got))
                if not more:
                    raise ConnectionError("closed")
                got += more
        times.append(time.monotonic() - t0)
    except OSError as e:
        failures.append(type(e).__name__)
    time.sleep(max(0.0, 0.25 - (time.monotonic() - t0)))
json.dump({"times": times, "failures": failures}, open(out, "w"))
"""


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def rss_parts(pid: int) -> dict:
    """Resident MB by kind of mapping: the C heap (glibc's brk arena), anonymous mappings (Python's
    object arenas, large buffers) and the rest (code, libraries)."""
    parts = {"heap": 0, "anon": 0, "other": 0}
    kind = "other"
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and not head[0].endswith(":"):
                kind = "heap" if line.rstrip().endswith("[heap]") else "anon" if len(head) == 5 else "other"
            elif head[0] == "Rss:":
                parts[kind] += int(head[1])
    return {k: round(v / 1024, 1) for k, v in parts.items()}


def query(ns, control: str) -> dict:
    r = ns.call(sys.executable, "-c", "import json,sys;from tcpwave.aio.control import query;"
                "print(json.dumps(query(sys.argv[1])))", control, capture_output=True, text=True, timeout=30)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else {}


def states(doc: dict) -> dict:
    out: dict = {}
    for c in doc.get("connections", []):
        out[c["state"]] = out.get(c["state"], 0) + 1
    return out


def live_connections(doc: dict) -> int:
    return sum(1 for c in doc.get("connections", []) if c["state"] not in ("LISTEN", "TIME_WAIT"))


def run(clients: int, as_limit: str, hold: float, knobs: list[str], idle_timeout: float,
        stderr_copy: str | None = None) -> dict:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-noread") as ns:
        ready, control = os.path.join(tmp, "ready"), os.path.join(tmp, "ctl.sock")
        err_path = os.path.join(tmp, "stderr")
        sets = [a for k in knobs for a in ("--set", k)]
        with open(err_path, "wb") as err:
            server = ns.popen("prlimit", f"--as={as_limit}", "--", py, "-m", "tcpwave.cli.main", "serve", "echo",
                              "--ready-file", ready, "--control", control,
                              "--idle-timeout", str(idle_timeout), *sets, stdout=subprocess.DEVNULL,
                              stderr=err)
        wait_for_file(ready, server, 30)
        cold = rss(server.pid)
        # idle means a server that has served: the first connections import and warm what every later
        # one uses (code paths, caches), which is not memory the clients below leave behind
        ns.call(py, "-c", WARM, "50", timeout=60, check=True)
        time.sleep(1.0)  # (a benchmark: let it settle before the idle figure)
        idle = rss(server.pid)
        idle_parts = rss_parts(server.pid)
        probe_out, clients_out = os.path.join(tmp, "probe.json"), os.path.join(tmp, "clients.json")
        settle = 2 * idle_timeout + 10  # connections whose peer vanished unseen go within 2 idle timeouts
        probe = ns.popen(py, "-c", PROBE, str(hold + settle + 5), probe_out)
        attack = ns.popen(py, "-c", CLIENTS, str(clients), str(hold), clients_out)
        peak, during = idle, {}
        t0 = time.monotonic()
        while attack.poll() is None and time.monotonic() - t0 < hold + 60:
            peak = max(peak, rss(server.pid))
            time.sleep(0.25)
            if time.monotonic() - t0 > hold * 0.8 and not during:
                during = query(ns, control)
        attack.wait(60)
        gone_at = time.monotonic()
        while time.monotonic() - gone_at < settle:  # the server lets go of the clients' connections
            doc = query(ns, control)
            if doc and live_connections(doc) == 0:
                break
            time.sleep(0.5)
        let_go = time.monotonic() - gone_at
        released_at = time.monotonic()  # the server trims at most every 2 s: RSS once within 20% of idle, or 10 s on
        while (after := rss(server.pid)) > 1.2 * idle and time.monotonic() - released_at < 10.0:
            time.sleep(0.25)
        released = time.monotonic() - released_at
        after_parts = rss_parts(server.pid)
        final = query(ns, control)
        probe.wait(hold + settle + 60)
        server.terminate()
        server.wait(20)
        stderr = open(err_path, "rb").read().decode(errors="replace")
        if stderr_copy:
            with open(stderr_copy, "w") as f:
                f.write(stderr)
        probes = json.load(open(probe_out))
        attack_stats = json.load(open(clients_out))
    times = probes["times"]
    return {
        "clients": attack_stats, "rss_cold_mb": round(cold / 2**20, 1),
        "rss_idle_mb": round(idle / 2**20, 1), "rss_peak_mb": round(peak / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1), "rss_after_vs_idle": round(after / idle, 3) if idle else None,
        "rss_idle_parts_mb": idle_parts, "rss_after_parts_mb": after_parts,
        "probes": len(times) + len(probes["failures"]), "probe_failures": probes["failures"],
        "probe_max_s": round(max(times), 3) if times else None,
        "probe_median_s": round(statistics.median(times), 4) if times else None,
        "probes_over_1s": sum(1 for t in times if t > 1.0),
        "memory_during": during.get("memory"), "memory_after": final.get("memory"),
        "drops_after": final.get("drops"), "live_after": live_connections(final) if final else None,
        "states_after": states(final), "sample_after": [
            {k: c.get(k) for k in ("state", "recv_q", "send_q", "snd_wnd", "rcv_wnd", "timers", "bytes_received",
                                   "bytes_sent")}
            for c in final.get("connections", []) if c["state"] == "ESTABLISHED"][:4],
        "seconds_to_let_go": round(let_go, 1), "seconds_to_release_rss": round(released, 1),
        "idle_timeout": idle_timeout,
        "memoryerror_lines": stderr.count("MemoryError"), "traceback_lines": stderr.count("Traceback"),
        "stderr_lines": len(stderr.splitlines()), "server_exit": server.returncode,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=3000)
    ap.add_argument("--as-limit", default="1610612736", help="prlimit --as value (default 1.5 GiB)")
    ap.add_argument("--hold", type=float, default=20.0, help="seconds the clients keep writing")
    ap.add_argument("--idle-timeout", type=float, default=20.0,
                    help="serve's --idle-timeout (default here 20 s: a server expecting such clients sets it low)")
    ap.add_argument("--set", dest="knobs", action="append", default=[], metavar="KNOB=VALUE")
    ap.add_argument("--stderr", metavar="PATH", help="also write the server's stderr to PATH")
    args = ap.parse_args()
    print(json.dumps(run(args.clients, args.as_limit, args.hold, args.knobs, args.idle_timeout, args.stderr),
                     indent=1))


if __name__ == "__main__":
    main()
