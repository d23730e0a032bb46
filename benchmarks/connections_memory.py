"""Memory per connection: hold many established connections in one process, then take them all to
TIME_WAIT, and print the heap each one costs (tracemalloc, both ends counted).

    .venv/bin/python benchmarks/connections_memory.py [--connections 50000]

Prints figures; asserts none. Both stacks run in one process on the simulator (no data moves).
"""

import argparse
import gc
import time
import tracemalloc

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.core.state import State
from tcpwave.sim import LinkParams, Simulator


def heap() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=50_000)
    n = ap.parse_args().connections
    t0 = time.perf_counter()
    sim = Simulator(1)
    cfg = Config(msl=3600.0)  # TIME_WAIT lasts long enough to be counted
    a = sim.add_host("a", ["192.0.2.1", *(f"192.0.2.{i}" for i in range(3, 10))], config=cfg)
    b = sim.add_host("b", ["192.0.2.2"], config=cfg)
    sim.link(a, b, LinkParams(latency=0.0001, bandwidth=0))
    accepted = []
    b.on_event = lambda h, c, e: accepted.append(listener.accept()) if isinstance(e, ev.Connected) else None
    listener = b.stack.listen(80, 0.0, backlog=n + 1)
    tracemalloc.start()
    base = heap()
    conns = []
    for i in range(n):  # several local addresses: more than 16,384 ephemeral ports per peer
        conns.append(a.stack.connect("192.0.2.2", 80, sim.now, local_address=f"192.0.2.{3 + i % 7}"))
    a.pump()
    sim.run(until=1.0)
    established = sum(1 for c in conns if c.state is State.ESTABLISHED)
    per_established = (heap() - base) / (2 * established)
    for c in conns:
        c.close(sim.now)
    a.pump()
    sim.run(until=2.0)
    for c in accepted:
        if c.state is State.CLOSE_WAIT:
            c.close(sim.now)
    b.pump()
    sim.run(until=3.0)
    time_wait = sum(1 for c in conns if c.state is State.TIME_WAIT)
    closed = sum(1 for c in accepted if c.state is State.CLOSED)
    accepted.clear()  # the server ends are CLOSED: let them go
    conns.clear()  # as an application that closed its sockets: the stack keeps TIME_WAIT records
    sim.run(until=4.0)  # (until the last timer entries of the full connections have passed)
    records = len(a.stack.time_waits())
    with_records = heap()
    per_time_wait = (with_records - base) / max(1, records)  # the servers' ends are CLOSED and freed
    sim.run(until=3.0 + 2 * cfg.msl + 1)
    gone = records - len(a.stack.time_waits())
    per_record = (with_records - heap()) / max(1, gone)  # what expiry frees: the record itself
    print(f"{established} connections established ({2 * established} endpoints): "
          f"{per_established:.0f} bytes per endpoint")
    print(f"{time_wait} client ends in TIME_WAIT ({closed} server ends closed and freed), "
          f"{records} TIME_WAIT records once the application let go: {per_time_wait:.0f} bytes per TIME_WAIT "
          f"all told (with the table room the {2 * established} endpoints left behind)")
    print(f"{gone} TIME_WAIT records expired after 2 x MSL: {per_record:.0f} bytes freed per record")
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
