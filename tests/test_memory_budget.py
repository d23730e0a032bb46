"""The stack's memory budget (core/memory.py), as Linux's tcp_mem: buffers are charged to it; under
pressure the windows we offer shrink and out-of-order data is pruned; at the limit new connections are
refused (SYN dropped) and the largest consumers are reset; and --max-connections. Peers here never
read: each test fails on the code before the budget (every SYN answered, windows never shrink)."""

from test_stack import Wire

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.wire.options import Options
from tcpwave.wire.seq import seq_add
from tcpwave.wire.tcp import ACK, RST, SYN, Segment

KB = 1024
# a 64 KB receive window per connection (no window scaling), and a budget of a few windows
CFG = Config(window_scaling=False, timestamps=False, sack=True, delayed_ack=0, recv_buffer=64 * KB,
             mem_low=100 * KB, mem_pressure=150 * KB, mem_high=200 * KB)


class Client:
    """One hand-made client of the Wire's listener: sends data, never reads what comes back."""

    def __init__(self, w: Wire, sport: int, iss: int = 5000):
        self.w, self.sport = w, sport
        synack = w.send(Segment(sport, 80, iss, 0, SYN, 65535, options=Options(mss=1460, sack_permitted=True)))[0]
        assert synack.flags == SYN | ACK
        self.ack = seq_add(synack.seq, 1)
        self.nxt = iss + 1
        w.send(Segment(sport, 80, self.nxt, self.ack, ACK, 65535))

    def data(self, n: int, offset: int = 0) -> list[Segment]:
        """n bytes at nxt + offset (offset > 0: out of order); nxt moves only for in-order data."""
        out = self.w.send(Segment(self.sport, 80, seq_add(self.nxt, offset), self.ack, ACK, 65535, b"x" * n))
        if not offset:
            acks = [s for s in out if s.flags & ACK and not s.flags & RST]
            if acks and acks[-1].ack == seq_add(self.nxt, n):
                self.nxt = seq_add(self.nxt, n)
        return out

    def fill(self, limit: int = 200) -> list[Segment]:
        """Send full segments until the stack stops taking them (window closed or memory refused)."""
        replies: list[Segment] = []
        for _ in range(limit):
            before = self.nxt
            out = self.data(1460)
            replies += out
            if self.nxt == before or any(s.flags & RST for s in out):
                break
        return replies


def _budget(w: Wire) -> dict:
    return w.stack.memory.snapshot()


def test_buffers_are_charged_and_the_account_returns_to_zero():
    w = Wire(CFG)
    w.stack.listen(80, 0.0)
    c = Client(w, 40000)
    c.data(1000)
    assert _budget(w)["used"] == 1000  # the unread bytes
    c.data(500, offset=2000)  # out of order: its bytes plus bookkeeping
    held = _budget(w)["used"]
    assert held > 1500
    conn = w.stack.connections()[-1]
    conn.receive(now=w.now)
    assert _budget(w)["used"] == held - 1000
    conn.abort(w.now)
    assert _budget(w)["used"] == 0


def test_under_pressure_windows_shrink_and_out_of_order_data_is_pruned():
    w = Wire(CFG)
    w.stack.listen(80, 0.0)
    victim = Client(w, 40000)
    assert any(s.options.sack for s in victim.data(1000, offset=5000))  # held out of order, SACKed
    a, b = Client(w, 40001), Client(w, 40002)
    a.fill()
    b.fill()
    Client(w, 40004).data(1460 * 20)  # beyond the pressure mark now
    assert _budget(w)["level"] == "pressure"
    fresh = Client(w, 40003)
    acks = fresh.data(1000)
    assert acks[-1].window <= 4 * 1460  # a new connection is offered a few segments, not 64 KB
    out = victim.data(1000, offset=9000)  # more out-of-order data: not queued, and the queue pruned
    assert out and not out[-1].options.sack
    assert _budget(w)["pruned_bytes"] >= 1000


def test_at_the_limit_syns_are_dropped_and_the_largest_consumers_reset():
    w = Wire(CFG)
    w.stack.listen(80, 0.0)
    clients = [Client(w, 40000 + i) for i in range(4)]
    resets = []
    for c in clients:
        resets += [s for s in c.fill() if s.flags & RST]
    closed = [e.reason for _, e in w.stack.events() if isinstance(e, ev.Closed)]
    assert resets and "out_of_memory" in closed  # the largest were reset, with a reason that says so
    b = _budget(w)
    assert b["reset_connections"] >= 1 and b["peak"] >= CFG.mem_high
    assert b["used"] < CFG.mem_high  # reclaimed below the limit
    # fill it to the limit again before the next reclaim may run: a new SYN is dropped, not answered
    port = 41000
    while _budget(w)["level"] != "limit" and port < 41100:
        Client(w, port).fill()
        port += 1
    assert w.send(Segment(42000, 80, 1, 0, SYN, 65535)) == []
    assert "memory_limit" in w.drops() and _budget(w)["refused_connections"] >= 1
    w.now += 0.2  # a SYN after the next reclaim is due finds room again (the reclaim resets others)
    out = w.send(Segment(42001, 80, 1, 0, SYN, 65535))
    assert [s.flags for s in out if s.dst_port == 42001] == [SYN | ACK]
    assert all(s.flags & RST for s in out if s.dst_port != 42001)


def test_a_syn_at_the_limit_is_dropped():
    w = Wire(Config(window_scaling=False, timestamps=False, delayed_ack=0, recv_buffer=64 * KB,
                    mem_low=1, mem_pressure=1, mem_high=1000))
    w.stack.listen(80, 0.0)
    c = Client(w, 40000)
    c.data(999)  # one byte short of the limit: SYNs still welcome
    assert w.send(Segment(40001, 80, 1, 0, SYN, 65535))[0].flags == SYN | ACK
    w.now += 1.0
    c.data(1)  # at the limit (this connection is the only consumer: it is reset, and the account is empty)
    assert _budget(w)["reset_connections"] == 1 and _budget(w)["used"] == 0
    assert w.send(Segment(40002, 80, 1, 0, SYN, 65535))[0].flags == SYN | ACK


def test_send_takes_no_more_at_the_limit():
    cfg = Config(window_scaling=False, timestamps=False, delayed_ack=0, mem_low=1, mem_pressure=1,
                 mem_high=4000)
    w = Wire(cfg)
    w.stack.listen(80, 0.0)
    c = Client(w, 40000)
    conn = w.stack.connections()[-1]
    Client(w, 40001).data(4000)  # the limit: that connection is reset, and no reclaim runs for 0.1 s
    assert _budget(w)["reset_connections"] == 1 and conn.state.value == "ESTABLISHED"
    assert conn.send(b"a" * 3000, w.now) == 3000
    assert conn.send(b"b" * 3000, w.now) == 3000  # (charged after the call: at the limit now)
    assert conn.send(b"c" * 3000, w.now) == 0  # the buffer holds data and the budget is spent
    sent, end = w.replies(), c.ack
    while sent:  # everything acknowledged (Nagle holds the tail until the first ACK)
        end = seq_add(end, sum(len(s.payload) for s in sent))
        sent = [s for s in w.send(Segment(40000, 80, c.nxt, end, ACK, 65535)) if s.payload]
    assert _budget(w)["used"] == 0 and _budget(w)["level"] == "normal"
    assert conn.send(b"d" * 3000, w.now) == 3000  # the memory came back


def test_max_connections_drops_syns_beyond_it():
    w = Wire(Config(max_connections=2))
    w.stack.listen(80, 0.0)
    Client(w, 40000)
    Client(w, 40001)
    assert w.send(Segment(40002, 80, 1, 0, SYN, 65535)) == []
    assert "max_connections" in w.drops()
    w.stack.connections()[-1].abort(w.now)
    w.replies()
    assert w.send(Segment(40003, 80, 1, 0, SYN, 65535))[0].flags == SYN | ACK


def test_the_runtime_says_what_the_budget_did_in_one_line(monkeypatch):
    """A server at its limit resets the connection that filled it, and the runtime says so on stderr
    (this line raised TypeError once: the marks are floats, and that skipped re-arming the timer)."""
    import asyncio

    from tcpwave.aio import MemoryLink, Runtime, create_server, log, open_connection
    from tcpwave.stack import Stack

    lines: list[tuple[str, str]] = []
    monkeypatch.setattr(log, "say", lambda kind, text: lines.append((kind, text)) or True)

    class Silent(asyncio.Protocol):  # never reads: what comes in stays charged to the budget
        def connection_made(self, transport):
            transport.pause_reading()

    async def main():
        a, b = MemoryLink.pair(delay=0.0005)
        client = Runtime(Stack(["192.0.2.1"], seed=1), a)
        server = Runtime(Stack(["192.0.2.2"], seed=2, config=Config(mem_low=1, mem_pressure=1, mem_high=1000)), b)
        srv = await create_server(Silent, "192.0.2.2", 7, runtime=server)
        reader, writer = await open_connection("192.0.2.2", 7, runtime=client)
        writer.write(b"x" * 3000)
        try:
            await asyncio.wait_for(reader.read(), 10)  # the server's reset ends it
        except ConnectionResetError:
            pass
        deadline = asyncio.get_running_loop().time() + 10
        while not any(kind == "memory" for kind, _ in lines):
            assert asyncio.get_running_loop().time() < deadline, "no memory line"
            await asyncio.sleep(0.01)
        srv.close()
        client.close()
        server.close()

    asyncio.run(main())
    text = [t for kind, t in lines if kind == "memory"][0]
    assert text.startswith("memory budget at 0 MiB of 0 MiB: so far 0 connection(s) refused, 1 reset"), text


def test_a_segment_dropped_at_the_limit_is_answered_with_a_zero_window():
    """At the limit a connection with unread data takes no more: the drop's ACK closes the window
    (its right edge moves left, the one place it does), so the peer probes instead of resending into
    a window that would drop again; what it had in flight up to the old edge has its ACK taken and
    its data left out, beyond that it is out of window; once the budget is below its limit, the
    answer to a probe opens the window again."""
    cfg = Config(window_scaling=False, timestamps=False, sack=False, delayed_ack=0, recv_buffer=64 * KB,
                 mem_low=1, mem_pressure=1, mem_high=12 * KB)
    w = Wire(cfg)
    w.stack.listen(80, 0.0)
    clients = [Client(w, 40000 + i) for i in range(4)]
    c = clients[-1]
    out: list[Segment] = []
    for k in range(80):  # unread data from all four until one segment finds the budget at its limit
        sender = clients[k % 4]
        out = sender.data(1000)
        if _budget(w)["dropped_segments"]:
            c = sender
            break
    assert _budget(w)["dropped_segments"] == 1 and "memory_limit" in w.drops()
    acks = [s for s in out if s.dst_port == c.sport and not s.flags & RST]
    assert acks and acks[-1].ack == c.nxt and acks[-1].window == 0, acks  # RCV.NXT as it was, window 0
    dropped = w.drops().count("out_of_window")
    inflight = [s for s in c.data(1000, offset=1000) if s.dst_port == c.sport]  # sent before it saw the window close
    assert inflight and inflight[-1].ack == acks[-1].ack and inflight[-1].window == 0  # its ACK taken, not its data
    c.data(1000, offset=200_000)  # beyond any window ever offered
    assert w.drops().count("out_of_window") == dropped + 1
    again = [s for s in c.data(1000) if s.dst_port == c.sport]  # the dropped one, resent: its ACK taken, no data
    assert again and again[-1].ack == acks[-1].ack and again[-1].window == 0
    assert _budget(w)["dropped_segments"] == 1  # (not dropped for memory: there was no window for it)
    for conn in w.stack.connections():  # the applications read: the budget falls below its limit
        if conn.state.name == "ESTABLISHED":
            conn.receive(now=w.now)
    assert _budget(w)["level"] != "limit"
    w.now += 1.0
    probe = w.send(Segment(c.sport, 80, seq_add(c.nxt, -1), c.ack, ACK, 65535))  # a zero-window probe
    assert probe and probe[-1].window > 0  # the window opens again


def test_out_of_order_data_under_pressure_leaves_the_window_edge_where_it_was():
    """Only an in-order segment dropped at the limit closes the window: out-of-order data dropped
    under pressure leaves the right edge where it was offered (RFC 9293 §3.8.6)."""
    w = Wire(CFG)
    w.stack.listen(80, 0.0)
    victim = Client(w, 40000)
    first = victim.data(1000)[-1]
    edge = seq_add(first.ack, first.window)
    a, b = Client(w, 40001), Client(w, 40002)
    a.fill()
    b.fill()
    Client(w, 40004).data(1460 * 20)
    assert _budget(w)["level"] == "pressure"
    out = victim.data(1000, offset=9000)
    assert out and seq_add(out[-1].ack, out[-1].window) == edge, (out, edge)
