"""Real clients during a SYN flood: `hping3 --flood --rand-source -S` at `tcpwave serve http
--workers N` for a bounded time, while curl asks for a page every 0.4 s.

    sudo .venv/bin/python benchmarks/syn_flood.py [--workers 2] [--seconds 10] [--requests 20]

Everything runs in a network namespace made here and removed at the end (TEST-NET addresses only);
the flood is bounded by `timeout`. Prints how many requests were answered within 1 s, the SYNs per
second the device handed to tcpwave (its TX counter) and how many it dropped (TX dropped: its queue
was full), and hping3's own count. Figures depend on the machine: on a shared 2-CPU one, hping3 and
the workers share the CPUs.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time


def link_counters(ns: str, dev: str) -> tuple[int, int]:
    """(packets the kernel sent into the device, of those dropped) for dev."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ip", "-s", "link", "show", dev], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    i = next(k for k, line in enumerate(out) if line.strip().startswith("TX:"))
    fields = out[i + 1].split()
    return int(fields[1]), int(fields[3])


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds the processes have used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]) / tick, system + int(fields[12]) / tick
    return user, system


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=10, help="the flood's length (default 10)")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--py-spy", metavar="FILE", help="also sample the first worker with py-spy (--native) during the "
                    "flood and write its collapsed stacks (py-spy's raw format) to FILE")
    args = ap.parse_args()
    args.py_spy_command = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if os.geteuid() != 0:
        print("needs root (a network namespace and a TUN device)", file=sys.stderr)
        return 1
    missing = [tool for tool in ("hping3", "curl") if not shutil.which(tool)]
    if missing:
        print(f"needs {' and '.join(missing)} (apt-get install {' '.join(missing)})", file=sys.stderr)
        return 1
    ns = f"tcpwave-flood-{os.getpid()}"
    py = sys.executable
    subprocess.run(["ip", "netns", "add", ns], check=True)
    procs: list[subprocess.Popen] = []
    try:
        run = ["ip", "netns", "exec", ns]
        subprocess.run([*run, "ip", "link", "set", "lo", "up"], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            ready = os.path.join(tmp, "ready")
            server = subprocess.Popen([*run, py, "-m", "tcpwave.cli.main", "serve", "http", "--workers",
                                       str(args.workers), "--control", "none", "--ready-file", ready],
                                      stderr=subprocess.PIPE, text=True)
            procs.append(server)
            deadline = time.monotonic() + 20
            while not os.path.exists(ready):
                if server.poll() is not None or time.monotonic() > deadline:
                    print("the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            workers = children(server.pid)  # (ip netns exec became the serve process itself)
            before, cpu_before = link_counters(ns, "tcpw0"), cpu_seconds(workers)
            t0 = time.monotonic()
            flood = subprocess.Popen([*run, "timeout", str(args.seconds), "hping3", "--flood", "--rand-source", "-S",
                                      "-p", "80", "192.0.2.2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
            procs.append(flood)
            spy = None
            if args.py_spy:
                spy = subprocess.Popen([args.py_spy_command, "record", "--native", "--format", "raw", "-r", "200",
                                               "-d", str(max(1, args.seconds - 2)), "-o", args.py_spy, "--pid",
                                               str(workers[0])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append(spy)
            time.sleep(1.0)  # (the flood under way)
            spacing = max(0.05, (args.seconds - 2.0) / args.requests)
            curls = []
            for _ in range(args.requests):
                curls.append(subprocess.Popen([*run, "curl", "-s", "-o", "/dev/null", "-m", "5", "-w",
                                               "%{http_code} %{time_total}", "http://192.0.2.2/"],
                                              stdout=subprocess.PIPE, text=True))
                procs.append(curls[-1])
                time.sleep(spacing)
            results = [c.communicate(timeout=30)[0].split() for c in curls]
            _, flood_err = flood.communicate(timeout=args.seconds + 10)
            elapsed = time.monotonic() - t0
            if spy is not None:
                spy.wait(30)
            after, cpu_after = link_counters(ns, "tcpw0"), cpu_seconds(workers)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)
    times = [float(t) for code, t in results if code == "200"]
    fast = sum(t <= 1.0 for t in times)
    sent = re.search(r"(\d+) packets transmitted", flood_err)
    taken, dropped = after[0] - before[0], after[1] - before[1]
    print(f"{fast} of {len(results)} requests answered within 1 s ({len(times)} answered at all; "
          f"times {', '.join(f'{t:.2f}' for t in sorted(times))})")
    print(f"device: {taken / args.seconds:,.0f} packets/s handed to tcpwave, {dropped / args.seconds:,.0f}/s "
          f"dropped ({dropped / max(1, taken + dropped):.0%}), over the {args.seconds} s flood "
          f"({elapsed:.1f} s in all)")
    if sent:
        print(f"hping3: {int(sent[1]) / args.seconds:,.0f} SYN/s sent")
    else:
        print(f"hping3 said no count: {flood_err.strip()[-300:]!r}")
    user, system = cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]
    print(f"workers: {user:.1f} s user + {system:.1f} s system CPU in all; per packet taken "
          f"{user / max(1, taken) * 1e6:.1f} us user (Python: parse, cookie, reply) + "
          f"{system / max(1, taken) * 1e6:.1f} us system (the TUN reads and writes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
