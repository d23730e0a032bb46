"""Property: two stacks over a random lossy, reordering, duplicating link, with random writes and a
random close order, deliver exactly the bytes written, in order, both ways, and both reach CLOSED
(the active closer through TIME_WAIT) within bounded virtual time."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.core.state import State
from tcpwave.core.trace import ListSink
from tcpwave.sim import LinkParams, Simulator

links = st.builds(
    LinkParams,
    latency=st.floats(0.0005, 0.05),
    bandwidth=st.sampled_from([0, 1e6, 10e6, 100e6]),
    queue_bytes=st.sampled_from([8 * 1024, 64 * 1024, 1 << 20]),
    loss=st.floats(0.0, 0.2),
    reorder=st.floats(0.0, 0.3),
    reorder_delay=st.floats(0.0, 0.05),
    duplicate=st.floats(0.0, 0.1),
    corrupt=st.floats(0.0, 0.05),
)
writes = st.lists(st.integers(1, 20_000), max_size=8)


# derandomize: CI explores the same examples every run; a failure is reproducible, never flaky.
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(link=links, back=links, seed=st.integers(0, 2**32), a_writes=writes, b_writes=writes,
       close_gap=st.floats(-0.2, 0.2), msl=st.sampled_from([30.0, 600.0]))
def test_exact_delivery_and_clean_close(link, back, seed, a_writes, b_writes, close_gap, msl):
    # 2 x MSL must outlast the peer's FIN retransmissions (RFC 9293 §3.4.2's premise): with a tiny MSL
    # a retransmitted FIN correctly meets a freed 4-tuple and a RST. Virtual time makes MSL free.
    config = Config(msl=msl)
    sim = Simulator(seed)
    sink = ListSink()
    sim.tracer.add_sink(sink)
    a = sim.add_host("a", ["192.0.2.1"], config=config)
    b = sim.add_host("b", ["192.0.2.2"], config=config)
    sim.link(a, b, link, back)
    payload = {"a": b"".join(bytes([i % 251]) * n for i, n in enumerate(a_writes)),
               "b": b"".join(bytes([(i + 7) % 251]) * n for i, n in enumerate(b_writes))}
    chunks = {"a": list(a_writes), "b": list(b_writes)}
    offset = {"a": 0, "b": 0}
    got = {"a": bytearray(), "b": bytearray()}
    conns, closed = {}, {}
    done_writing = {"a": False, "b": False}

    def pump_writes(name, conn):
        # one application write per chunk; a short write is retried when space returns
        while chunks[name] and conn.state in (State.ESTABLISHED, State.CLOSE_WAIT):
            n = chunks[name][0]
            start = offset[name]
            taken = conn.send(payload[name][start:start + n], sim.now)
            offset[name] += taken
            chunks[name][0] -= taken
            if chunks[name][0]:
                return
            chunks[name].pop(0)
        if not chunks[name] and not done_writing[name]:
            done_writing[name] = True
            delay = max(0.0, close_gap) if name == "a" else max(0.0, -close_gap)
            host = a if name == "a" else b
            sim.after(delay, lambda: sim.call(host, lambda: conn.shutdown(sim.now)))

    def app(host, conn, event):
        name = host.name
        conns[name] = conn
        if isinstance(event, ev.DataReadable):
            got[name] += conn.receive(now=sim.now)
        if isinstance(event, (ev.Connected, ev.SendSpace, ev.DataReadable, ev.EndOfStream)):
            pump_writes(name, conn)
        if isinstance(event, ev.Closed):
            closed[name] = event.reason

    a.on_event = b.on_event = app
    b.stack.listen(7, 0.0)
    a.stack.connect("192.0.2.2", 7, 0.0)
    a.pump()
    sim.run(until=20_000.0)

    # Both close normally, with one exception TCP itself allows: a side still in LAST_ACK or
    # CLOSING whose FIN retransmission arrives after its peer's TIME_WAIT ended gets a RST.
    states = [e for e in sink if e["type"] == "state"]
    for name, reason in closed.items():
        if reason == "normal":
            continue
        last = [e for e in states if e["host"] == name][-1]
        assert reason == "reset" and last["from"] in ("LAST_ACK", "CLOSING"), (name, reason, last)
        other = "b" if name == "a" else "a"
        assert any(e["host"] == other and e["from"] == "TIME_WAIT" and e["t"] <= last["t"] for e in states)
    assert set(closed) == {"a", "b"}, (closed, sim.now)
    assert bytes(got["b"]) == payload["a"]
    assert bytes(got["a"]) == payload["b"]
    assert a.stack.connections() == [] and b.stack.connections() == []
    # whoever closed first went through TIME_WAIT; every path ended in CLOSED
    ends = {h: [e["to"] for e in sink if e["type"] == "state" and e["host"] == h] for h in "ab"}
    assert ends["a"][-1] == "CLOSED" and ends["b"][-1] == "CLOSED"
    assert "TIME_WAIT" in ends["a"] + ends["b"]


buffers = st.sampled_from([1500, 4000, 16_384, 256 * 1024])


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(link=links, seed=st.integers(0, 2**32), a_writes=writes, b_writes=writes,
       recv_buffer=buffers, send_buffer=buffers, read_chunk=st.integers(1, 3000),
       read_every=st.floats(0.001, 0.5), nodelay=st.booleans(), delayed_ack=st.sampled_from([0.0, 0.04, 0.2]))
def test_small_buffers_and_slow_readers_still_deliver_exactly(link, seed, a_writes, b_writes, recv_buffer,
                                                             send_buffer, read_chunk, read_every, nodelay,
                                                             delayed_ack):
    """Slow readers close the window to zero; persist probes, SWS rules and Nagle must still get every
    byte through, in order, and both sides must close."""
    config = Config(msl=600.0, recv_buffer=recv_buffer, send_buffer=send_buffer, nodelay=nodelay,
                    delayed_ack=delayed_ack)
    sim = Simulator(seed)
    a = sim.add_host("a", ["192.0.2.1"], config=config)
    b = sim.add_host("b", ["192.0.2.2"], config=config)
    sim.link(a, b, link)
    payload = {"a": b"".join(bytes([i % 251]) * n for i, n in enumerate(a_writes)),
               "b": b"".join(bytes([(i + 7) % 251]) * n for i, n in enumerate(b_writes))}
    offset = {"a": 0, "b": 0}
    got = {"a": bytearray(), "b": bytearray()}
    closed, eof = {}, set()

    def write_more(name, conn):
        while offset[name] < len(payload[name]) and conn.state in (State.ESTABLISHED, State.CLOSE_WAIT):
            n = conn.send(payload[name][offset[name]:offset[name] + 7000], sim.now)
            offset[name] += n
            if not n:
                return
        if offset[name] == len(payload[name]) and conn.state in (State.ESTABLISHED, State.CLOSE_WAIT):
            conn.shutdown(sim.now)

    def slow_read(host, conn):
        # the reader takes at most read_chunk bytes every read_every seconds: the window closes
        if conn.state is State.CLOSED and not conn.readable:
            return
        got[host.name] += conn.receive(read_chunk, now=sim.now)
        if conn.readable or host.name not in eof:
            sim.after(read_every, lambda: sim.call(host, lambda: slow_read(host, conn)))

    def app(host, conn, event):
        if isinstance(event, ev.Connected):
            write_more(host.name, conn)
            sim.after(read_every, lambda: sim.call(host, lambda: slow_read(host, conn)))
        elif isinstance(event, (ev.SendSpace, ev.EndOfStream)):
            if isinstance(event, ev.EndOfStream):
                eof.add(host.name)
            write_more(host.name, conn)
        elif isinstance(event, ev.Closed):
            closed[host.name] = event.reason

    a.on_event = b.on_event = app
    listener = b.stack.listen(7, 0.0)
    a.stack.connect("192.0.2.2", 7, 0.0)
    a.pump()
    sim.run(until=50_000.0)
    assert listener.accept() is not None
    assert bytes(got["b"]) == payload["a"], (len(got["b"]), len(payload["a"]))
    assert bytes(got["a"]) == payload["b"], (len(got["a"]), len(payload["b"]))
    assert closed == {"a": "normal", "b": "normal"}, (closed, sim.now)
