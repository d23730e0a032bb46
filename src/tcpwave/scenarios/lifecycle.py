"""Lifecycle scenarios: opening, exchanging and closing as RFC 9293 draws them, the simultaneous
variants, and the two ways a connection is refused or reset."""


from ..core import events as ev
from ..core.state import State
from .registry import CLIENT_ADDR, SERVER_ADDR, Demo, Result, echo_then_close, scenario


@scenario("handshake", "three-way handshake, a short exchange both ways (the server speaks first), four-way "
                      "close, TIME_WAIT to CLOSED")
def run_handshake(seed: int, tracer=None, taps=()) -> Result:
    """The server greets first, as SMTP or SSH servers do: nothing the client sends right after the
    handshake's ACK could stand in for it, so dropping that ACK (`--drop client:ACK#1`) leaves the
    server in SYN_RCVD until its SYN,ACK is sent again and answered."""
    d = Demo(seed, tracer, list(taps))
    greeting, answer = b"hello, client", b"hello, server"

    def client_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.DataReadable) and bytes(d.received["client"]) == greeting:
            conn.send(answer, d.sim.now)
        elif isinstance(event, ev.DataReadable) and bytes(d.received["client"]) == greeting + b" bye":
            conn.close(d.sim.now)

    def server_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            conn.send(greeting, d.sim.now)
        elif isinstance(event, ev.DataReadable) and bytes(d.received["server"]) == answer:
            conn.send(b" bye", d.sim.now)
        elif isinstance(event, ev.EndOfStream):  # closes 0.1 s after the client's FIN: the four-way close
            d.sim.after(0.1, lambda: d.sim.call(d.server, lambda: conn.close(d.sim.now)))

    d.client.on_event, d.server.on_event = client_app, server_app
    d.listen()
    d.connect()
    d.run()
    return d.result("handshake", seed, exchanged=bytes(d.received["server"]) == answer
                    and bytes(d.received["client"]) == greeting + b" bye",
                    closed_normally=d.closed_normally())


@scenario("three-way-close", "the server closes as soon as it reads the client's FIN, so the ACK of that "
                            "FIN rides on the server's own FIN; the client goes FIN_WAIT_1 -> TIME_WAIT")
def run_three_way_close(seed: int, tracer=None, taps=()) -> Result:
    d = Demo(seed, tracer, list(taps))
    echo_then_close(d, b"hello, server", b"hello, client", close_after=0)
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
    d = Demo(seed, tracer, list(taps))

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
    d = Demo(seed, tracer, list(taps))
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
    d = Demo(seed, tracer, list(taps))
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


@scenario("refused", "a SYN to a closed port draws RST,ACK: the client is told 'connection refused'")
def run_refused(seed: int, tracer=None, taps=()) -> Result:
    d = Demo(seed, tracer, list(taps))
    d.client.on_event = d.note_common
    d.connect(port=81)
    d.run()
    return d.result("refused", seed, refused=d.closed.get("client") == ev.REFUSED)


@scenario("reset", "the server aborts mid-transfer: RST, and the client is told 'connection reset'")
def run_reset(seed: int, tracer=None, taps=()) -> Result:
    d = Demo(seed, tracer, list(taps))
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
