"""Lanes for new connections (drivers/tun.py, drivers/steering.py, aio.runtime.TunLink): a device made
with lanes has a second queue per queue, the steering program puts every SYN without ACK there, and
the reader drains it first. A real device in a namespace made here: with the traffic queue's ring
full (the kernel drops what does not fit), a new client's SYN still reaches the stack, where on a
device without a lane it is dropped with the rest."""

import asyncio
import json
import os
import sys

import pytest
from netns import namespace, needs_netns

from tcpwave.aio.runtime import LANE_BATCH, TunLink

FLOOD = r"""
import json, select, socket, sys
from tcpwave.drivers.tun import TunDevice, TXQUEUELEN
from tcpwave.stack import EPHEMERAL

lanes = sys.argv[1] == "lanes"
dev = TunDevice("tcpwl0", "192.0.2.1/24", "192.0.2.2", steer=EPHEMERAL if lanes else None, lanes=lanes)
refused = dev.steering_error


def dropped() -> int:
    with open("/sys/class/net/tcpwl0/statistics/tx_dropped") as f:
        return int(f.read())


flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = 0
while dropped() == 0 and sent < 4 * TXQUEUELEN:  # until the traffic ring is full: the kernel drops
    flood.sendto(b"u" * 200, ("192.0.2.2", 9))
    sent += 1
for _ in range(50):  # and full it stays (nobody reads it)
    flood.sendto(b"u" * 200, ("192.0.2.2", 9))
client = socket.socket()
client.setblocking(False)
client.connect_ex(("192.0.2.2", 80))  # its SYN, now


def drain(q) -> list:
    out = []
    while True:
        packets, _ = q.read_batch(256)
        if not packets:
            return out
        out += [bytes(p) for p in packets]


lane = dev.lane(0)
if lane is not None:
    select.select([lane.fileno()], [], [], 10)  # (the SYN is queued when connect_ex returns: no wait)
syn_in_lane = [p for p in (drain(lane) if lane else []) if p[9] == 6]
traffic = drain(dev.queues[0])
print(json.dumps({"refused": refused, "lanes": len(dev.lanes), "sent": sent, "dropped": dropped(),
                  "traffic": len(traffic), "traffic_tcp": sum(1 for p in traffic if p[9] == 6),
                  "lane_syns": [p[33] for p in syn_in_lane], "ring": TXQUEUELEN}))
"""


def _flood(mode: str) -> dict:
    with namespace("tcpwave-lanes") as ns:
        r = ns.call(sys.executable, "-c", FLOOD, mode, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


@needs_netns
def test_a_new_clients_syn_passes_a_full_traffic_ring_on_its_lane():
    without = _flood("none")
    # the premise: with one queue the ring is full, and the SYN is among what the kernel dropped
    assert without["lanes"] == 0 and without["dropped"] > 50
    assert without["traffic"] == without["ring"] and without["traffic_tcp"] == 0, without
    got = _flood("lanes")
    if got["refused"] is not None:
        pytest.skip(f"no steering here: {got['refused']}")
    assert got["lanes"] == 1 and got["dropped"] > 50 and got["traffic"] == got["ring"], got
    assert got["traffic_tcp"] == 0 and got["lane_syns"] == [0x02], got  # the SYN, alone on the lane


class FakeQueue:
    """A queue holding packets; readable (for the loop) through a pipe while it holds any."""

    def __init__(self, packets: list):
        self.packets = packets
        self.r, self.w = os.pipe()
        if packets:
            os.write(self.w, b"x")
        self.reads: list[int] = []

    def fileno(self) -> int:
        return self.r

    def read_batch(self, limit: int = 256):
        taken, self.packets = self.packets[:limit], self.packets[limit:]
        self.reads.append(len(taken))
        if not self.packets and taken:
            os.read(self.r, 1)
        return taken, None

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def _read_through(syns: int, data: int) -> list:
    """Everything a TunLink delivers, flattened, when `syns` SYNs reach the lane after the first pass
    over a traffic queue that holds `data` packets."""
    async def main() -> list:
        lane, traffic = FakeQueue([]), FakeQueue([f"data{i}" for i in range(data)])
        link = TunLink(traffic, lane=lane)
        got: list = []
        first, done = asyncio.Event(), asyncio.Event()

        def callback(packets, trusted) -> None:
            got.extend(packets)
            if len(got) == 256 and not lane.packets:  # the first traffic batch: now the SYNs come
                lane.packets = [f"syn{i}" for i in range(syns)]
                os.write(lane.w, b"x")
                first.set()
            if len(got) == syns + data:
                done.set()

        link.attach(callback)
        await asyncio.wait_for(first.wait(), 10)
        await asyncio.wait_for(done.wait(), 10)
        link.detach()
        lane.close()
        traffic.close()
        return got

    return asyncio.run(main())


def test_the_reader_drains_the_lane_before_the_next_traffic_batch():
    got = _read_through(40, 1000)
    assert sorted(got) == sorted([f"data{i}" for i in range(1000)] + [f"syn{i}" for i in range(40)])
    assert got[256:296] == [f"syn{i}" for i in range(40)]  # the SYNs, before any more traffic


def test_a_syn_flood_on_the_lane_does_not_starve_the_traffic():
    got = _read_through(5000, 1000)
    assert len(got) == 6000 and len(set(got)) == 6000
    last_data = max(i for i, p in enumerate(got) if p.startswith("data"))
    last_syn = max(i for i, p in enumerate(got) if p.startswith("syn"))
    # traffic batches were read between the lane's: the traffic was done long before the flood was
    assert last_data < last_syn / 2, (last_data, last_syn)
    first_syn = got.index("syn0")
    assert all(p.startswith("syn") for p in got[first_syn:first_syn + LANE_BATCH])


PLAIN = r"""
import json, os, select, socket
from tcpwave.drivers.tun import TunDevice, add_persistent, delete_persistent
from tcpwave.stack import EPHEMERAL

refused = add_persistent("tcpwl1", os.getuid(), None, "192.0.2.1/24", multi_queue=True, steer=EPHEMERAL, lanes=True)
try:
    pair = TunDevice("tcpwl1", "192.0.2.1/24", "192.0.2.2", lanes=True)  # (as serve: its queue and the lane)
    held = len(pair.queues) + len(pair.lanes)
    pair.close()
    dev = TunDevice("tcpwl1", "192.0.2.1/24", "192.0.2.2")  # a library's one queue: everything comes to it
    client = socket.socket()
    client.setblocking(False)
    client.connect_ex(("192.0.2.2", 80))
    select.select([dev.fileno()], [], [], 10)
    packets, _ = dev.read_batch()
    print(json.dumps({"refused": refused, "pair": held, "alone": len(dev.queues) + len(dev.lanes),
                      "flags": [bytes(p)[33] for p in packets if bytes(p)[9] == 6]}))
    dev.close()
finally:
    delete_persistent("tcpwl1")
"""


@needs_netns
def test_one_queue_of_a_device_made_with_lanes_gets_every_packet():
    """A device `tun add` made with lanes: serve takes a queue and the lane beside it; a program that
    asks for one queue (a library's TunDevice) gets one, and the new client's SYN on it."""
    with namespace("tcpwave-lanes") as ns:
        r = ns.call(sys.executable, "-c", PLAIN, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    if got["refused"] is not None:
        pytest.skip(f"no steering here: {got['refused']}")
    assert got["pair"] == 2 and got["alone"] == 1 and got["flags"] == [0x02], got
