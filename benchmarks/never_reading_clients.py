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

Why a probe was slow: each probe's start (`at_s`, from the start of the attack), connect time and
retransmissions (TCP_INFO); the namespace's TUN drops (packets the kernel dropped because the server
did not read them in time) and TCP retransmission counters (`net_delta`); the server's CPU; and, from
a sitecustomize loaded into the server, every loop callback that ran 50 ms or more and every full
collection (`full_gcs`, `loop_stall_max_s`). `slow_probes` lists each probe over 1 s with what
overlapped it; --verbose adds the 0.25 s samples and every stall.
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
import json, socket, struct, sys, time
until, out = time.monotonic() + float(sys.argv[1]), sys.argv[2]
times, failures, each = [], [], []
while time.monotonic() < until:
    t0 = time.monotonic()
    rec = {"at": t0}
    try:
        with socket.create_connection(("192.0.2.2", 7), timeout=5) as s:
            rec["connect_s"] = time.monotonic() - t0
            s.settimeout(5)
            s.sendall(b"ping")
            got = b""
            while len(got) < 4:
                more = s.recv(4 - len(got))
                if not more:
                    raise ConnectionError("closed")
                got += more
            # tcpi_total_retrans (SYN and data retransmissions of this probe), from TCP_INFO
            rec["retrans"] = struct.unpack_from("I", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 100)[0]
        rec["s"] = time.monotonic() - t0
        times.append(rec["s"])
    except OSError as e:
        failures.append(type(e).__name__)
        rec["failed"], rec["s"] = type(e).__name__, time.monotonic() - t0
    each.append(rec)
    time.sleep(max(0.0, 0.25 - (time.monotonic() - t0)))
json.dump({"times": times, "failures": failures, "each": each}, open(out, "w"))
"""

# Loaded into the server (PYTHONPATH) to see its event loop from inside: each callback of the loop that
# ran for STALL s or more, and each full (generation 2) garbage collection, with CLOCK_MONOTONIC times
# (the probes' clock), one JSON line each as it happens
STALLS = r"""
import asyncio.events, gc, json, os, time
_out = open(os.environ["NEVER_READING_STALLS"], "a", buffering=1)
STALL = 0.05
_run = asyncio.events.Handle._run
def _timed(self, _run=_run, now=time.monotonic):
    t0 = now()
    _run(self)
    took = now() - t0
    if took >= STALL:
        cb = getattr(self._callback, "__qualname__", None) or repr(self._callback)[:80]
        _out.write(json.dumps({"at": t0, "s": took, "callback": cb}) + "\n")
asyncio.events.Handle._run = _timed
_gc = {}
def _on_gc(phase, info):
    if phase == "start":
        _gc["t0"] = time.monotonic()
    elif info["generation"] == 2 or time.monotonic() - _gc["t0"] >= 0.01:
        t0 = _gc["t0"]
        _out.write(json.dumps({"at": t0, "s": time.monotonic() - t0, "gc": info["generation"],
                               "collected": info["collected"]}) + "\n")
gc.callbacks.append(_on_gc)
if os.environ.get("NEVER_READING_PROFILE"):  # --profile: where the server's time went, as pstats
    import atexit, cProfile
    _prof = cProfile.Profile()
    _prof.enable()
    atexit.register(lambda: _prof.dump_stats(os.environ["NEVER_READING_PROFILE"] + f".{os.getpid()}"))
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


def net_counters(pid: int) -> dict:
    """Counters of the server's network namespace, read through /proc/PID/net: what the TUN device
    dropped on its way to the server (its TX drops: the server did not read fast enough), and the
    kernel's TCP retransmissions (the probes' and the clients' together)."""
    out = {"tun_tx_dropped": 0}
    with open(f"/proc/{pid}/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if rest and name.strip() != "lo":
                out["tun_tx_dropped"] += int(rest.split()[11])
    for table in ("snmp", "netstat"):
        with open(f"/proc/{pid}/net/{table}") as f:
            lines = f.read().splitlines()
        for head, values in zip(lines[::2], lines[1::2], strict=True):
            kind, names = head.split(":")
            for k, v in zip(names.split(), values.split(":")[1].split(), strict=True):
                if f"{kind}{k}" in ("TcpRetransSegs", "TcpExtTCPSynRetrans", "TcpExtTCPTimeouts", "TcpExtListenDrops"):
                    out[f"{kind}{k}"] = int(v)
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantiles(times: list) -> dict:
    """median_s, p90_s, max_s of some probes' times (None where there are none)."""
    ordered = sorted(times)
    if not ordered:
        return {"median_s": None, "p90_s": None, "max_s": None}
    return {"median_s": round(statistics.median(ordered), 4), "p90_s": round(ordered[int(0.9 * len(ordered))], 4),
            "max_s": round(ordered[-1], 4)}


def explain(probes: list, stalls: list, samples: list, t0: float) -> list:
    """Each probe slower than 1 s (or failed), with what happened meanwhile: its connect time and
    retransmissions, the server's loop callbacks and collections that overlapped it, the TUN drops
    and the server's CPU over it."""
    out = []
    for p in probes:
        if p["s"] <= 1.0 and "failed" not in p:
            continue
        start, end = p["at"], p["at"] + p["s"]
        over = [s for s in stalls if s["at"] < end and s["at"] + s["s"] > start]
        inside = [x for x in samples if start - 0.25 <= x["t"] + t0 <= end + 0.25]
        row = {"at_s": round(start - t0, 2), "s": round(p["s"], 3), "connect_s": round(p.get("connect_s", -1), 3),
               "retrans": p.get("retrans"), "failed": p.get("failed"),
               "stalls": [{"at_s": round(s["at"] - t0, 2), "s": round(s["s"], 3),
                           "what": s.get("callback") or f"gc{s['gc']}"} for s in over]}
        if len(inside) >= 2:
            row["tun_drops"] = inside[-1]["tun_tx_dropped"] - inside[0]["tun_tx_dropped"]
            span = max(1e-3, inside[-1]["t"] - inside[0]["t"])
            row["cpu_share"] = round((inside[-1]["cpu"] - inside[0]["cpu"]) / span, 2)
        out.append(row)
    return out


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
        stderr_copy: str | None = None, verbose: bool = False, txqueuelen: int = 0, profile: str | None = None) -> dict:
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-noread") as ns:
        ready, control = os.path.join(tmp, "ready"), os.path.join(tmp, "ctl.sock")
        err_path = os.path.join(tmp, "stderr")
        sets = [a for k in knobs for a in ("--set", k)]
        stalls_path = os.path.join(tmp, "stalls.jsonl")
        with open(os.path.join(tmp, "sitecustomize.py"), "w") as f:
            f.write(STALLS)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")])),
                   NEVER_READING_STALLS=stalls_path, **({"NEVER_READING_PROFILE": profile} if profile else {}))
        with open(err_path, "wb") as err:
            server = ns.popen("prlimit", f"--as={as_limit}", "--", py, "-m", "tcpwave.cli.main", "serve", "echo",
                              "--ready-file", ready, "--control", control,
                              "--idle-timeout", str(idle_timeout), *sets, stdout=subprocess.DEVNULL,
                              stderr=err, env=env)
        wait_for_file(ready, server, 30)
        if txqueuelen:  # (an experiment: the device's queue made longer than serve makes it)
            ns.call("ip", "link", "set", "tcpw0", "txqueuelen", str(txqueuelen), check=True)
        cold = rss(server.pid)
        # idle means a server that has served: the first connections import and warm what every later
        # one uses (code paths, caches), which is not memory the clients below leave behind
        ns.call(py, "-c", WARM, "50", timeout=60, check=True)
        time.sleep(1.0)  # (a benchmark: let it settle before the idle figure)
        idle = rss(server.pid)
        idle_parts = rss_parts(server.pid)
        probe_out, clients_out = os.path.join(tmp, "probe.json"), os.path.join(tmp, "clients.json")
        settle = 2 * idle_timeout + 10  # connections whose peer vanished unseen go within 2 idle timeouts
        net_before = net_counters(server.pid)
        probe = ns.popen(py, "-c", PROBE, str(hold + settle + 5), probe_out)
        attack = ns.popen(py, "-c", CLIENTS, str(clients), str(hold), clients_out)
        peak, during, samples = idle, {}, []
        t0 = time.monotonic()

        def sample() -> int:
            now = rss(server.pid)
            samples.append({"t": round(time.monotonic() - t0, 2), "rss_mb": round(now / 2**20),
                            "cpu": round(cpu_seconds(server.pid), 2), **net_counters(server.pid)})
            return now

        while attack.poll() is None and time.monotonic() - t0 < hold + 60:
            peak = max(peak, sample())
            time.sleep(0.25)
            if time.monotonic() - t0 > hold * 0.8 and not during:
                during = query(ns, control)
        attack.wait(60)
        gone_at = time.monotonic()
        while time.monotonic() - gone_at < settle:  # the server lets go of the clients' connections
            doc = query(ns, control)
            if doc and live_connections(doc) == 0:
                break
            sample()
            time.sleep(0.5)
        let_go = time.monotonic() - gone_at
        released_at = time.monotonic()  # the server trims at most every 2 s: RSS once within 20% of idle, or 10 s on
        while (after := sample()) > 1.2 * idle and time.monotonic() - released_at < 10.0:
            time.sleep(0.25)
        released = time.monotonic() - released_at
        after_parts = rss_parts(server.pid)
        final = query(ns, control)
        probe.wait(hold + settle + 60)
        net_after = net_counters(server.pid)
        cpu_total = cpu_seconds(server.pid)
        server.terminate()
        server.wait(20)
        stderr = open(err_path, "rb").read().decode(errors="replace")
        if stderr_copy:
            with open(stderr_copy, "w") as f:
                f.write(stderr)
        probes = json.load(open(probe_out))
        attack_stats = json.load(open(clients_out))
        stalls = [json.loads(line) for line in open(stalls_path)] if os.path.exists(stalls_path) else []
    times = probes["times"]
    during_attack = [s for s in stalls if s["at"] >= t0]
    full_gc = [s["s"] for s in during_attack if s.get("gc") == 2]
    loop_stalls = [s["s"] for s in during_attack if "callback" in s]
    attacked = [p for p in probes.get("each", []) if t0 <= p["at"] < t0 + hold]
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
        "net_delta": {k: net_after[k] - net_before.get(k, 0) for k in net_after},
        "collector_after": final.get("collector"),
        "server_cpu_s": round(cpu_total, 1),
        "full_gcs": len(full_gc), "full_gc_max_s": round(max(full_gc), 3) if full_gc else 0.0,
        "full_gc_total_s": round(sum(full_gc), 2),
        "loop_stalls_over_50ms": len(loop_stalls),
        "loop_stall_max_s": round(max(loop_stalls), 3) if loop_stalls else 0.0,
        # the probes started while the clients wrote: how many, over 1 s, and how many waited >= 1 s to
        # connect (their SYN or its SYN,ACK lost: the kernel tries again after 1 s)
        "attack_probes": {"started": len(attacked), "over_1s": sum(1 for p in attacked if p["s"] > 1.0),
                          "connect_over_1s": sum(1 for p in attacked if p.get("connect_s", 0) >= 1.0),
                          "failed": sum(1 for p in attacked if "failed" in p),
                          # their times, and how many resent something (a SYN or the 4 bytes: TCP_INFO)
                          **quantiles([p["s"] for p in attacked]),
                          "retransmitted": sum(1 for p in attacked if p.get("retrans"))},
        "slow_probes": explain(probes.get("each", []), stalls, samples, t0),
        "samples": samples if verbose else None,
        "stalls": [{**s, "at": round(s["at"] - t0, 2), "s": round(s["s"], 3)} for s in stalls] if verbose else None,
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
    ap.add_argument("--verbose", action="store_true",
                    help="also print the samples (RSS, CPU, TUN drops every 0.25 s) and every stall and collection")
    ap.add_argument("--txqueuelen", type=int, default=0, help="set the TUN device's queue length once serve is up")
    ap.add_argument("--profile", metavar="PATH", help="profile the server (cProfile; PATH.PID, as pstats): slow")
    args = ap.parse_args()
    print(json.dumps(run(args.clients, args.as_limit, args.hold, args.knobs, args.idle_timeout, args.stderr,
                         args.verbose, args.txqueuelen, args.profile), indent=1))


if __name__ == "__main__":
    main()
