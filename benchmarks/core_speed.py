"""How fast the core runs: both stacks in one process, on the simulator.

    .venv/bin/python benchmarks/core_speed.py [--mb 20] [--cycles 2000]
    .venv/bin/python benchmarks/core_speed.py --both 3   # compiled and pure builds, interleaved, 3 rounds

It runs the build that loads (it prints which: `tcpwave --version`'s line); TCPWAVE_PURE=1 runs the
pure-Python sources of a compiled install. `--both N` runs N rounds, each the compiled then the pure
build in a fresh subprocess, and prints every figure and the ratio per round.
Prints figures; it asserts no speed. Data is verified (byte count and SHA-256), not just counted.
The link adds no bandwidth limit and 1 ms latency, so wall time is all TCP and simulator work. Each
line also gives the process's CPU time for it, and `--both` the ratios by CPU time too: on a shared,
loaded machine other processes stretch wall time, much less CPU time.
"""

import argparse
import hashlib
import os
import re
import subprocess
import sys
import time

from tcpwave.core import events as ev
from tcpwave.sim import LinkParams, Simulator


def bulk(size: int) -> None:
    sim = Simulator(1)
    a = sim.add_host("a", ["192.0.2.1"])
    b = sim.add_host("b", ["192.0.2.2"])
    sim.link(a, b, LinkParams(latency=0.001, bandwidth=0, queue_bytes=1 << 30))
    data = bytes(range(256)) * (size // 256)
    view = memoryview(data)
    sent = [0]
    digest = hashlib.sha256()
    got = [0]

    def app_a(host, conn, event):
        if isinstance(event, (ev.Connected, ev.SendSpace)):
            while sent[0] < len(data):
                n = conn.send(view[sent[0] : sent[0] + 65536], sim.now)
                if not n:
                    break
                sent[0] += n
            if sent[0] == len(data):
                conn.close(sim.now)

    def app_b(host, conn, event):
        if isinstance(event, ev.Connected):
            listener.accept()
        elif isinstance(event, ev.DataReadable):
            chunk = conn.receive(now=sim.now)
            digest.update(chunk)
            got[0] += len(chunk)
        elif isinstance(event, ev.EndOfStream):
            conn.close(sim.now)

    a.on_event, b.on_event = app_a, app_b
    listener = b.stack.listen(9, 0.0)
    a.stack.connect("192.0.2.2", 9, 0.0)
    a.pump()
    t0, c0 = time.perf_counter(), time.process_time()
    sim.run()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    ok = got[0] == len(data) and digest.hexdigest() == hashlib.sha256(data).hexdigest()
    print(f"bulk           {len(data) / 1e6:6.1f} MB  {dt:6.2f} s wall  {len(data) * 8 / dt / 1e6:7.0f} Mbit/s"
          f"  {sim.packets_sent / dt:8.0f} packets/s  data {'verified' if ok else 'MISMATCH'}  {cpu:6.2f} s cpu")


def cycles(n: int) -> None:
    sim = Simulator(1)
    a = sim.add_host("a", ["192.0.2.1"])
    b = sim.add_host("b", ["192.0.2.2"])
    sim.link(a, b, LinkParams(latency=0.0001, bandwidth=0))
    closed: dict[str, int] = {}

    def app_a(host, conn, event):  # holds no connection: TIME_WAIT ends as a record, which says Closed
        if isinstance(event, ev.Connected):
            conn.close(sim.now)
        elif isinstance(event, ev.Closed):
            closed[event.reason] = closed.get(event.reason, 0) + 1

    def app_b(host, conn, event):
        if isinstance(event, ev.Connected):
            assert listener.accept() is conn  # a server accepts, or the backlog fills up
        elif isinstance(event, ev.EndOfStream):
            conn.close(sim.now)

    a.on_event, b.on_event = app_a, app_b
    listener = b.stack.listen(9, 0.0)
    for i in range(n):
        sim.at(i * 0.01, lambda: sim.call(a, lambda: a.stack.connect("192.0.2.2", 9, sim.now)))
    t0, c0 = time.perf_counter(), time.process_time()
    sim.run()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    done = closed.get("normal", 0)
    left = len(a.stack.time_waits()) + len(a.stack.connections())
    print(f"connect+close  {done:6d} cycles {dt:6.2f} s wall  {done / dt:7.0f} cycles/s"
          f"  (each through TIME_WAIT; closed normally: {done}/{n}, {left} left; {closed})  {cpu:6.2f} s cpu")


def both(rounds: int, mb: float, n: int) -> None:
    """Each round: this script in a subprocess on the compiled build, then on the pure one."""
    ratios: dict[str, list[float]] = {"bulk": [], "connect+close": [], "bulk cpu": [], "cycles cpu": []}
    for r in range(1, rounds + 1):
        figures = {}
        for build, pure in (("compiled", "0"), ("pure", "1")):
            out = subprocess.run([sys.executable, __file__, "--mb", str(mb), "--cycles", str(n)], check=True,
                                 capture_output=True, text=True, env={**os.environ, "TCPWAVE_PURE": pure}).stdout
            print(f"round {r}, {build}: " + out.strip().replace("\n", "\n    "))
            bulk_rate = float(re.search(r"(\d+) Mbit/s", out).group(1))
            cycle_rate = float(re.search(r"(\d+) cycles/s", out).group(1))
            cpu = [float(x) for x in re.findall(r"([\d.]+) s cpu", out)]  # (bulk, cycles)
            figures[build] = (bulk_rate, cycle_rate, *cpu)
        (cb, cc, cbc, ccc), (pb, pc, pbc, pcc) = figures["compiled"], figures["pure"]
        ratios["bulk"].append(cb / pb)
        ratios["connect+close"].append(cc / pc)
        ratios["bulk cpu"].append(pbc / cbc)
        ratios["cycles cpu"].append(pcc / ccc)
        print(f"round {r}: compiled/pure  bulk {cb / pb:.2f}x  connect+close {cc / pc:.2f}x"
              f"  (by CPU time, which a loaded machine disturbs less: {pbc / cbc:.2f}x, {pcc / ccc:.2f}x)")
    for what, values in ratios.items():
        print(f"{what:14s} compiled/pure per round: " + ", ".join(f"{v:.2f}x" for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20)
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--both", type=int, metavar="ROUNDS", default=0,
                        help="run the compiled and the pure build, interleaved, ROUNDS times (subprocesses)")
    args = parser.parse_args()
    if args.both:
        both(args.both, args.mb, args.cycles)
        return
    from tcpwave.cli.build_info import describe

    print(f"build          {describe()}")
    bulk(int(args.mb * 1e6))
    cycles(args.cycles)


if __name__ == "__main__":
    main()
