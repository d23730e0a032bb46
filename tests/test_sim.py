"""The simulated network: seeded replay, links, targeted faults."""

import hashlib
import io

from tcpwave.core import events as ev
from tcpwave.scenarios import SCENARIOS, run_lossy
from tcpwave.sim import Fault, LinkParams, Simulator
from tcpwave.views.pcap import PcapWriter


def _pcap_of(name: str, seed: int) -> bytes:
    buf = io.BytesIO()
    SCENARIOS[name].run(seed, None, [PcapWriter(buf)])
    return buf.getvalue()


def test_same_seed_replays_byte_for_byte():
    assert _pcap_of("handshake", 5) == _pcap_of("handshake", 5)
    a = run_lossy(11, size=100_000)
    b = run_lossy(11, size=100_000)
    assert a.events == b.events


def test_different_seeds_differ():
    assert _pcap_of("handshake", 5) != _pcap_of("handshake", 6)  # ISNs come from the seed


def _pair(link: LinkParams, seed=3):
    sim = Simulator(seed)
    a = sim.add_host("a", ["192.0.2.1"])
    b = sim.add_host("b", ["192.0.2.2"])
    sim.link(a, b, link)
    return sim, a, b


def _transfer(link: LinkParams, size=200_000, seed=3, faults=()):
    sim, a, b = _pair(link, seed)
    for f in faults:
        sim.add_fault(f)
    data = bytes(range(256)) * (size // 256)
    got = bytearray()
    sent = [0]
    closed = {}

    def app_a(host, conn, event):
        if isinstance(event, (ev.Connected, ev.SendSpace)) and sent[0] < len(data):
            sent[0] += conn.send(data[sent[0]:], sim.now)
            if sent[0] == len(data):
                conn.close(sim.now)
        if isinstance(event, ev.Closed):
            closed["a"] = event.reason

    def app_b(host, conn, event):
        if isinstance(event, ev.DataReadable):
            got.extend(conn.receive(now=sim.now))
        elif isinstance(event, ev.EndOfStream):
            conn.close(sim.now)
        elif isinstance(event, ev.Closed):
            closed["b"] = event.reason

    a.on_event, b.on_event = app_a, app_b
    b.stack.listen(9, 0.0)
    a.stack.connect("192.0.2.2", 9, 0.0)
    a.pump()
    sim.run(until=3000)
    return bytes(got) == data, closed, sim


def test_clean_link_delivers_and_closes():
    ok, closed, sim = _transfer(LinkParams())
    assert ok and closed == {"a": "normal", "b": "normal"}


def test_bandwidth_bounds_transfer_time():
    ok, _, sim = _transfer(LinkParams(latency=0.001, bandwidth=10e6, queue_bytes=10**7), size=1_250_000)
    assert ok
    # 1.25 MB at 10 Mbit/s needs at least 1 s of virtual time, plus TIME_WAIT
    transfer_end = sim.now - 60.0
    assert transfer_end >= 1.0


def test_loss_duplication_corruption_and_reordering_still_deliver_exactly():
    link = LinkParams(loss=0.05, duplicate=0.05, corrupt=0.05, reorder=0.1)
    ok, closed, _ = _transfer(link, size=100_000, seed=9)
    assert ok and closed == {"a": "normal", "b": "normal"}


def test_targeted_fault_drops_only_the_first_fin():
    from tcpwave.core.trace import ListSink

    sink = ListSink()
    sim, a, b = _pair(LinkParams())
    sim.tracer.add_sink(sink)
    sim.add_fault(Fault("a", "b", "FIN"))

    def app_a(host, conn, event):
        if isinstance(event, ev.Connected):
            conn.close(sim.now)

    def app_b(host, conn, event):
        if isinstance(event, ev.EndOfStream):
            conn.close(sim.now)

    a.on_event, b.on_event = app_a, app_b
    b.stack.listen(9, 0.0)
    a.stack.connect("192.0.2.2", 9, 0.0)
    a.pump()
    sim.run()
    lost = [e for e in sink if e["type"] == "drop" and e.get("where") == "link"]
    assert len(lost) == 1 and "FIN" in lost[0]["flags"] and lost[0]["host"] == "a"
    fins = [e for e in sink if e["type"] == "send" and e["host"] == "a" and "FIN" in e["flags"]]
    assert len(fins) == 2 and fins[1].get("note") == "retransmission"


def test_lossy_scenario_hashes_match_at_small_size():
    r = run_lossy(2, size=200_000)
    assert r.checks == {"client_to_server": True, "server_to_client": True, "closed_normally": True}
    assert hashlib.sha256(b"").hexdigest() not in r.info.values()
