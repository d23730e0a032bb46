"""The scenario registry and the two-host harness every scenario runs on.

Each scenario sets up hosts, links, faults and small scripted applications,
runs the simulation in virtual time and returns a Result with what happened.
A family module registers its scenarios with @scenario(name, summary).
"""

import contextlib
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core import events as ev
from ..core.config import Config
from ..core.trace import ListSink, Tracer
from ..sim import DEFAULT_LINK, LinkParams, Simulator
from ..stack import Listener
from .faults import fresh as fresh_faults

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
    # runs drawn before this one, for comparison: (title, events, end time); not in --events/--pcap
    before: list[tuple[str, list[dict], float]] = field(default_factory=list)
    title: str = ""  # this run's title when there are runs before it

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    run: Callable[[int, Tracer | None, list], Result]


SCENARIOS: dict[str, Scenario] = {}

CONFIG: contextvars.ContextVar[Config | None] = contextvars.ContextVar("scenario_config", default=None)


@contextlib.contextmanager
def configured(config: Config | None):
    """Run scenarios with these settings on both hosts (`tcpwave demo --cc/--set`)."""
    token = CONFIG.set(config)
    try:
        yield
    finally:
        CONFIG.reset(token)


def scenario(name: str, summary: str):
    def register(fn):
        SCENARIOS[name] = Scenario(name, summary, fn)
        return fn

    return register


class Demo:
    """Two hosts joined by a link, plus bookkeeping shared by the scenarios."""

    def __init__(self, seed: int, tracer: Tracer | None, taps: list, link: LinkParams = DEFAULT_LINK,
                 config: Config | None = None, client_config: Config | None = None,
                 server_config: Config | None = None):
        self.sink = ListSink()
        self.tracer = tracer or Tracer()
        self.tracer.add_sink(self.sink)
        self.sim = Simulator(seed, self.tracer)
        self.sim.taps.extend(taps)
        config = config or CONFIG.get()
        self.client = self.sim.add_host("client", [CLIENT_ADDR], config=client_config or config)
        self.server = self.sim.add_host("server", [SERVER_ADDR], config=server_config or config)
        self.sim.link(self.client, self.server, link)
        for fault in fresh_faults():  # tcpwave demo --drop/--delay/--dup
            self.sim.add_fault(fault)
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


def echo_then_close(demo: Demo, request: bytes, reply: bytes, close_after: float = 0.1):
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
