"""The demo scenarios: a client and a server stack on the simulated network.

Each scenario sets up hosts, links, faults and small scripted applications,
runs the simulation in virtual time and returns a Result with what happened.
"""

import contextlib
import contextvars
import dataclasses
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core import events as ev
from ..core.config import Config
from ..core.isn import IsnGenerator
from ..core.state import State
from ..core.trace import ListSink, Tracer
from ..sim import DEFAULT_LINK, Fault, LinkParams, Simulator
from ..stack import Listener

CLIENT_ADDR, SERVER_ADDR = "192.0.2.1", "192.0.2.2"
PORT = 80


@dataclass
class Result:
    name: str
    seed: int
    events: list[dict]
    end_time: float
    closed: dict[str, str] = field(default_factory=dict)  # host -> close reason of its connection
    checks: dict[str, bool] = field(default_factory=dict)  # named verifications
    info: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: Callable[[int, Tracer | None, list], Result]


SCENARIOS: dict[str, Scenario] = {}

_CONFIG: contextvars.ContextVar[Config | None] = contextvars.ContextVar("scenario_config", default=None)


@contextlib.contextmanager
def configured(config: Config | None):
    """Run scenarios with these settings on both hosts (`tcpwave demo --cc/--set`)."""
    token = _CONFIG.set(config)
    try:
        yield
    finally:
        _CONFIG.reset(token)


def scenario(name: str, summary: str):
    def register(fn):
        SCENARIOS[name] = Scenario(name, summary, fn)
        return fn

    return register


class _Demo:
    """Two hosts joined by a link, plus bookkeeping shared by the scenarios."""

    def __init__(self, seed: int, tracer: Tracer | None, taps: list, link: LinkParams = DEFAULT_LINK,
                 config: Config | None = None, client_config: Config | None = None,
                 server_config: Config | None = None):
        self.sink = ListSink()
        self.tracer = tracer or Tracer()
        self.tracer.add_sink(self.sink)
        self.sim = Simulator(seed, self.tracer)
        self.sim.taps.extend(taps)
        config = config or _CONFIG.get()
        self.client = self.sim.add_host("client", [CLIENT_ADDR], config=client_config or config)
        self.server = self.sim.add_host("server", [SERVER_ADDR], config=server_config or config)
        self.sim.link(self.client, self.server, link)
        self.closed: dict[str, str] = {}
        self.received: dict[str, bytearray] = {"client": bytearray(), "server": bytearray()}
        self.eof: set[str] = set()
        self.listener: Listener | None = None

    def note_common(self, host, conn, event) -> None:
        if isinstance(event, ev.Connected) and self.listener is not None and conn.passive:
            assert self.listener.accept() is conn
        elif isinstance(event, ev.DataReadable):
            self.received[host.name] += conn.receive(now=self.sim.now)
        elif isinstance(event, ev.EndOfStream):
            self.eof.add(host.name)
        elif isinstance(event, ev.Closed):
            self.closed[host.name] = event.reason

    def closed_normally(self) -> bool:
        return self.closed == {"client": ev.NORMAL, "server": ev.NORMAL}

    def listen(self, port: int = PORT):
        self.listener = self.server.stack.listen(port, self.sim.now)
        return self.listener

    def connect(self, port: int = PORT, **kw):
        return self.client.stack.connect(SERVER_ADDR, port, self.sim.now, **kw)

    def run(self, until: float = 600.0, stop=None) -> None:
        for host in (self.client, self.server):
            host.pump()
        self.sim.run(until=until, stop=stop)

    def result(self, name: str, seed: int, **checks) -> Result:
        end = max((e["t"] for e in self.sink), default=0.0)  # not a stale timer wake-up
        return Result(name, seed, list(self.sink), end, dict(self.closed), checks)


def _echo_then_close(demo: _Demo, request: bytes, reply: bytes, close_after: float = 0.1):
    """Client sends request; server answers reply; client closes first; the server's application
    closes `close_after` seconds after it read the end of stream. Longer than the delayed ACK (40 ms),
    the peer's FIN is ACKed on its own first: the four-way close. 0: the three-segment close."""

    def client_app(host, conn, event):
        demo.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            conn.send(request, demo.sim.now)
        elif isinstance(event, ev.DataReadable) and bytes(demo.received["client"]) == reply:
            conn.close(demo.sim.now)

    def server_app(host, conn, event):
        demo.note_common(host, conn, event)
        if isinstance(event, ev.DataReadable) and bytes(demo.received["server"]) == request:
            conn.send(reply, demo.sim.now)
        elif isinstance(event, ev.EndOfStream):
            if close_after:
                demo.sim.after(close_after, lambda: demo.sim.call(demo.server, lambda: conn.close(demo.sim.now)))
            else:
                conn.close(demo.sim.now)

    demo.client.on_event = client_app
    demo.server.on_event = server_app


@scenario("handshake", "three-way handshake, a short exchange both ways, four-way close, TIME_WAIT to CLOSED")
def run_handshake(seed: int, tracer=None, taps=()) -> Result:
    d = _Demo(seed, tracer, list(taps))
    _echo_then_close(d, b"hello, server", b"hello, client")
    d.listen()
    d.connect()
    d.run()
    return d.result("handshake", seed, exchanged=bytes(d.received["server"]) == b"hello, server"
                    and bytes(d.received["client"]) == b"hello, client",
                    closed_normally=d.closed_normally())


@scenario("three-way-close", "the server closes as soon as it reads the client's FIN: its ACK, held by the "
                            "delayed-ACK timer, rides on its own FIN; the client goes FIN_WAIT_1 -> TIME_WAIT")
def run_three_way_close(seed: int, tracer=None, taps=()) -> Result:
    d = _Demo(seed, tracer, list(taps))
    _echo_then_close(d, b"hello, server", b"hello, client", close_after=0)
    d.listen()
    d.connect()
    d.run()
    sends = [e for e in d.sink if e["type"] == "send"]
    first_fin = next((i for i, e in enumerate(sends) if e["host"] == "client" and "FIN" in e["flags"]), len(sends))
    closing = [e["flags"] for e in sends[first_fin:]]
    client_path = [e["to"] for e in d.sink if e["type"] == "state" and e["host"] == "client"]
    return d.result("three-way-close", seed, three_segments=closing == ["FIN,ACK", "FIN,ACK", "ACK"],
                    fin_wait_1_to_time_wait="FIN_WAIT_2" not in client_path and client_path[-2:] == ["TIME_WAIT",
                                                                                                    "CLOSED"],
                    closed_normally=d.closed_normally())


@scenario("simultaneous-open", "both sides send SYN at once: SYN_SENT -> SYN_RCVD -> ESTABLISHED on each")
def run_simultaneous_open(seed: int, tracer=None, taps=()) -> Result:
    d = _Demo(seed, tracer, list(taps))

    def app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            conn.send(f"hi from {host.name}".encode(), d.sim.now)
        elif isinstance(event, ev.DataReadable) and host.name == "client":
            conn.close(d.sim.now)
        elif isinstance(event, ev.EndOfStream) and host.name == "server":
            conn.close(d.sim.now)

    d.client.on_event = d.server.on_event = app
    d.client.stack.connect(SERVER_ADDR, 5001, 0.0, local_port=5000)  # both ends active, ports fixed
    d.server.stack.connect(CLIENT_ADDR, 5000, 0.0, local_port=5001)
    d.run()
    return d.result("simultaneous-open", seed,
                    exchanged=bytes(d.received["client"]) == b"hi from server"
                    and bytes(d.received["server"]) == b"hi from client",
                    closed_normally=d.closed_normally())


@scenario("simultaneous-close", "both sides close at once: FIN_WAIT_1 -> CLOSING -> TIME_WAIT on each")
def run_simultaneous_close(seed: int, tracer=None, taps=()) -> Result:
    d = _Demo(seed, tracer, list(taps))
    conns = {}

    def app(host, conn, event):
        d.note_common(host, conn, event)
        conns[host.name] = conn
        if isinstance(event, ev.Connected):
            conn.send(f"bye from {host.name}".encode(), d.sim.now)
        if len(d.received["client"]) and len(d.received["server"]) and "closing" not in conns:
            conns["closing"] = True  # both have their message: close both in the same instant
            d.sim.after(0.05, lambda: [d.sim.call(h, lambda h=h: conns[h.name].close(d.sim.now))
                                       for h in (d.client, d.server)])

    d.client.on_event = d.server.on_event = app
    d.listen()
    d.connect()
    d.run()
    return d.result("simultaneous-close", seed,
                    closed_normally=d.closed_normally())


@scenario("half-close", "the client closes its side; the server, in CLOSE_WAIT, keeps sending, then closes")
def run_half_close(seed: int, tracer=None, taps=()) -> Result:
    d = _Demo(seed, tracer, list(taps))
    chunks = [b"first chunk after your FIN\n", b"second chunk\n", b"last chunk, closing now\n"]

    def client_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            conn.send(b"GET /story\n", d.sim.now)
            conn.shutdown(d.sim.now)  # half-close: nothing more to say, still listening

    def server_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.EndOfStream):
            for i, chunk in enumerate(chunks):
                d.sim.after(0.1 * (i + 1), lambda c=chunk: d.sim.call(d.server, lambda: conn.send(c, d.sim.now)))
            d.sim.after(0.1 * len(chunks) + 0.05, lambda: d.sim.call(d.server, lambda: conn.close(d.sim.now)))

    d.client.on_event, d.server.on_event = client_app, server_app
    d.listen()
    d.connect()
    d.run()
    return d.result("half-close", seed, delivered=bytes(d.received["client"]) == b"".join(chunks),
                    closed_normally=d.closed_normally())


def _with_fault(name: str, make_fault: Callable[[], Fault]) -> Callable:
    def run(seed: int, tracer=None, taps=()) -> Result:
        d = _Demo(seed, tracer, list(taps))
        d.sim.add_fault(make_fault())
        _echo_then_close(d, b"ping", b"pong")
        d.listen()
        d.connect()
        d.run()
        return d.result(name, seed, closed_normally=d.closed_normally(),
                        exchanged=bytes(d.received["client"]) == b"pong")

    return run


scenario("lost-syn", "the first SYN is lost: the client retransmits it after the 1 s initial RTO")(
    _with_fault("lost-syn", lambda: Fault("client", "server", "SYN")))
scenario("lost-syn-ack", "the first SYN,ACK is lost: after 1 s the client's SYN timer and the server's SYN,ACK "
                         "timer both fire; the server also answers the repeated SYN, so two SYN,ACKs go at once")(
    _with_fault("lost-syn-ack", lambda: Fault("server", "client", "SYN,ACK")))
scenario("lost-fin", "the client's first FIN is lost: FIN_WAIT_1 retransmits it")(
    _with_fault("lost-fin", lambda: Fault("client", "server", "FIN")))


def _final_ack_lost(d: _Demo) -> None:
    """Echo, then close; the client's ACK of the server's FIN is lost on the wire."""
    _echo_then_close(d, b"ping", b"pong")
    server_app = d.server.on_event

    def server_with_fault(host, conn, event):
        if isinstance(event, ev.EndOfStream):
            # the next bare ACK from the client is the one that acknowledges our FIN
            d.sim.add_fault(Fault("client", "server", "ACK", exact=True, with_data=False))
        server_app(host, conn, event)

    d.server.on_event = server_with_fault
    d.listen()
    d.connect()
    d.run()


@scenario("lost-final-ack", "the last ACK is lost: LAST_ACK retransmits its FIN, TIME_WAIT re-ACKs it")
def run_lost_final_ack(seed: int, tracer=None, taps=()) -> Result:
    d = _Demo(seed, tracer, list(taps))
    _final_ack_lost(d)
    return d.result("lost-final-ack", seed,
                    closed_normally=d.closed_normally())


@scenario("no-time-wait", "why TIME_WAIT? lost-final-ack with the client's TIME_WAIT cut to 2 ms: the "
                         "retransmitted FIN meets no connection, draws a RST, and the server reports an error")
def run_no_time_wait(seed: int, tracer=None, taps=()) -> Result:
    base = _CONFIG.get() or Config()
    d = _Demo(seed, tracer, list(taps), client_config=dataclasses.replace(base, msl=0.001))
    _final_ack_lost(d)
    rst = [e for e in d.sink if e["type"] == "send" and e["host"] == "client" and "RST" in e["flags"]]
    return d.result("no-time-wait", seed,
                    client_answered_the_fin_with_rst=bool(rst) and rst[0].get("note") == "reset: no connection",
                    server_saw_an_error=d.closed.get("server") == ev.RESET,
                    client_closed_normally=d.closed.get("client") == ev.NORMAL)


@scenario("close-wait-lingers", "the server's application reads the client's FIN but closes only 5 s later: "
                               "CLOSE_WAIT lasts while data still flows (the pile-up operators see in ss)")
def run_close_wait_lingers(seed: int, tracer=None, taps=()) -> Result:
    d = _Demo(seed, tracer, list(taps))
    chunks = [f"still sending, {i} s into CLOSE_WAIT\n".encode() for i in range(5)]

    def client_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            conn.send(b"GET /stream\n", d.sim.now)
            conn.shutdown(d.sim.now)  # done talking; still reading

    def server_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.EndOfStream):
            for i, chunk in enumerate(chunks):
                d.sim.after(float(i), lambda c=chunk: d.sim.call(d.server, lambda: conn.send(c, d.sim.now)))
            d.sim.after(5.0, lambda: d.sim.call(d.server, lambda: conn.close(d.sim.now)))

    d.client.on_event, d.server.on_event = client_app, server_app
    d.listen()
    d.connect()
    d.run()
    states = [e for e in d.sink if e["type"] == "state" and e["host"] == "server"]
    entered = next((e["t"] for e in states if e["to"] == "CLOSE_WAIT"), None)
    left = next((e["t"] for e in states if e["from"] == "CLOSE_WAIT"), None)
    res = d.result("close-wait-lingers", seed, delivered=bytes(d.received["client"]) == b"".join(chunks),
                   close_wait_for_5_s=entered is not None and left is not None and left - entered >= 5.0,
                   closed_normally=d.closed_normally())
    if entered is not None and left is not None:
        res.info = {"close_wait_seconds": round(left - entered, 6)}
    return res


class _ClocklessIsn(IsnGenerator):
    """An ISN generator whose clock does not tick: the same 4-tuple always starts at the same number
    (what RFC 9293's clock-driven ISNs exist to prevent)."""

    def clock(self, now: float) -> int:
        return 0


OLD, NEW = b"OLD DATA from the first connection", b"new data, second connection"


def _old_duplicate_run(seed: int, tracer, taps: list, msl: float) -> tuple[_Demo, list[bytes], list[dict]]:
    """One 4-tuple, two incarnations; a copy of the first one's data segment is delayed in the
    network and arrives 0.9 s after the first connection closed. Both hosts' ISNs do not advance,
    and timestamps are off, so only TIME_WAIT stands between the old segment and the new connection.
    The server closes first (it holds TIME_WAIT, for `2 x msl`); the client reconnects once that
    is over. Returns the demo, the data the server's application read per connection, and the
    server's drops of the duplicate."""
    base = dataclasses.replace(_CONFIG.get() or Config(), timestamps=False)
    d = _Demo(seed, tracer, taps, config=base, server_config=dataclasses.replace(base, msl=msl))
    for host in (d.client, d.server):
        host.stack.isn = _ClocklessIsn(host.stack.rng.randbytes(32))
    got: dict[int, bytearray] = {}
    old_copy: list[bytes] = []

    def keep_a_copy(t, packet):
        if not old_copy and bytes(packet).endswith(OLD):
            old_copy.append(bytes(packet))  # the segment that will arrive late

    d.sim.taps.append(keep_a_copy)

    def client_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            first = not got
            d.sim.after(0.0 if first else 0.2, lambda: d.sim.call(d.client, lambda: conn.send(
                OLD if first else NEW, d.sim.now)))
        elif isinstance(event, ev.EndOfStream):
            conn.close(d.sim.now)

    def server_app(host, conn, event):
        if isinstance(event, ev.Connected) and d.listener is not None and conn.passive:
            assert d.listener.accept() is conn
            got[id(conn)] = bytearray()
        elif isinstance(event, ev.DataReadable):
            got[id(conn)] += conn.receive(now=d.sim.now)
            if len(got) == 1 and bytes(got[id(conn)]) == OLD:
                conn.close(d.sim.now)  # the server closes first: TIME_WAIT is on its side
        elif isinstance(event, ev.EndOfStream) and len(got) > 1:
            conn.close(d.sim.now)
        elif isinstance(event, ev.Closed):
            d.closed[host.name] = event.reason

    d.client.on_event, d.server.on_event = client_app, server_app
    d.listen()
    d.connect(local_port=40000)
    d.run(until=0.5)
    closed_at = d.sim.now
    reconnect = closed_at + 2 * msl + 0.5  # once the server's TIME_WAIT is over
    # the old segment arrives 0.9 s after the close, or, if a new connection is up by then, between
    # its handshake and its first data (which goes 0.2 s after it connects)
    late = min(closed_at + 0.9, reconnect + 0.1)
    if old_copy:
        d.sim.at(late, lambda: d.sim.call(d.server, lambda: d.server.stack.receive_packet(old_copy[0], d.sim.now)))
    def connect_again() -> None:
        d.client.stack.connect(SERVER_ADDR, PORT, d.sim.now, local_port=40000)

    d.sim.at(reconnect, lambda: d.sim.call(d.client, connect_again))
    d.run(until=reconnect + 1.5)
    for conn in d.client.stack.connections():  # a corrupted connection wedges (ACKs of data never sent):
        conn.abort(d.sim.now)  # the client gives up on it
    d.client.pump()
    d.run(until=reconnect + 3.0)
    drops = [e for e in d.sink if e["type"] in ("drop", "handled") and e["host"] == "server" and late - 1e-9 <= e["t"]
             <= late + 1e-9]
    return d, [bytes(v) for v in got.values()], drops


@scenario("old-duplicate", "why does TIME_WAIT last 2×MSL? A late segment of an earlier connection on the same "
                          "4-tuple: with TIME_WAIT it is discarded; with TIME_WAIT cut short (and ISNs that do "
                          "not advance) it is taken as the new connection's data")
def run_old_duplicate(seed: int, tracer=None, taps=()) -> Result:
    safe, safe_got, safe_drops = _old_duplicate_run(seed, None, [], msl=30.0)
    d, got, _ = _old_duplicate_run(seed, tracer, list(taps), msl=0.001)
    res = d.result("old-duplicate", seed,
                   with_time_wait_the_old_segment_is_discarded=safe_got == [OLD, NEW] and bool(safe_drops),
                   without_time_wait_it_corrupts_the_new_stream=len(got) == 2 and got[1].startswith(OLD[:len(NEW)])
                   and got[1] != NEW)
    res.info = {"with TIME_WAIT (60 s), the second connection read": safe_got[1:] and safe_got[1].decode(),
                "what the server did with the late segment then": ", ".join(
                    e.get("reason") or e.get("what", "") for e in safe_drops),
                "without TIME_WAIT (2 ms), the second connection read": got[1:] and got[1].decode()}
    return res


@scenario("refused", "a SYN to a closed port draws RST,ACK: the client is told 'connection refused'")
def run_refused(seed: int, tracer=None, taps=()) -> Result:
    d = _Demo(seed, tracer, list(taps))
    d.client.on_event = d.note_common
    d.connect(port=81)
    d.run()
    return d.result("refused", seed, refused=d.closed.get("client") == ev.REFUSED)


@scenario("reset", "the server aborts mid-transfer: RST, and the client is told 'connection reset'")
def run_reset(seed: int, tracer=None, taps=()) -> Result:
    d = _Demo(seed, tracer, list(taps))
    chunk = b"x" * 1000

    def client_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            def write():  # one chunk every 30 ms until the connection is gone
                if conn.state is State.ESTABLISHED:
                    conn.send(chunk, d.sim.now)
                    d.sim.after(0.030, lambda: d.sim.call(d.client, write))
            write()

    def server_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.DataReadable) and len(d.received["server"]) >= 3000 and conn.state is not State.CLOSED:
            conn.abort(d.sim.now)

    d.client.on_event, d.server.on_event = client_app, server_app
    d.listen()
    d.connect()
    d.run()
    return d.result("reset", seed, client_reset=d.closed.get("client") == ev.RESET,
                    server_aborted=d.closed.get("server") == ev.ABORTED)


@scenario("lossy", "1 MB each way over 10% loss with reordering, verified by SHA-256")
def run_lossy(seed: int, tracer=None, taps=(), size: int = 1_000_000, loss: float = 0.10) -> Result:
    link = LinkParams(latency=0.010, bandwidth=50e6, queue_bytes=512 * 1024, loss=loss, reorder=0.05,
                      reorder_delay=0.004)
    d = _Demo(seed, tracer, list(taps), link=link)
    rng = random.Random(seed)
    data = {"client": rng.randbytes(size), "server": rng.randbytes(size)}
    sent = {"client": 0, "server": 0}

    def app(host, conn, event):
        d.note_common(host, conn, event)
        name = host.name
        if isinstance(event, (ev.Connected, ev.SendSpace, ev.EndOfStream)) and sent[name] < size:
            if conn.state in (State.ESTABLISHED, State.CLOSE_WAIT):
                sent[name] += conn.send(data[name][sent[name]:], d.sim.now)
        if sent[name] == size and conn.state in (State.ESTABLISHED, State.CLOSE_WAIT):
            conn.shutdown(d.sim.now)  # done sending; the other direction may still be busy

    d.client.on_event = d.server.on_event = app
    d.listen()
    d.connect()
    d.run(until=3600.0)
    digest = {k: hashlib.sha256(v).hexdigest() for k, v in data.items()}
    got = {k: hashlib.sha256(bytes(v)).hexdigest() for k, v in d.received.items()}
    res = d.result("lossy", seed, client_to_server=got["server"] == digest["client"],
                   server_to_client=got["client"] == digest["server"],
                   closed_normally=d.closed_normally())
    res.info = {"bytes_each_way": size, "sha256_client_data": digest["client"],
                "sha256_server_data": digest["server"], "packets": d.sim.packets_sent}
    return res
