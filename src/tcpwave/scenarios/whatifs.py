"""What-ifs: the same runs with one rule relaxed (TIME_WAIT cut short, a late close), to show why
the rule is there."""

import dataclasses

from ..core import events as ev
from ..core.config import Config
from ..core.isn import IsnGenerator
from ..sim import DEFAULT_LINK
from .loss import final_ack_lost
from .registry import CONFIG, PORT, SERVER_ADDR, Demo, Result, scenario


@scenario("no-time-wait", "why TIME_WAIT? lost-final-ack with the client's TIME_WAIT cut to 2 ms: the "
                         "retransmitted FIN meets no connection, draws a RST, and the server reports an error")
def run_no_time_wait(seed: int, tracer=None, taps=()) -> Result:
    base = CONFIG.get() or Config()
    d = Demo(seed, tracer, list(taps), client_config=dataclasses.replace(base, msl=0.001))
    final_ack_lost(d)
    rst = [e for e in d.sink if e["type"] == "send" and e["host"] == "client" and "RST" in e["flags"]]
    return d.result("no-time-wait", seed,
                    client_answered_the_fin_with_rst=bool(rst) and rst[0].get("note") == "reset: no connection",
                    server_saw_an_error=d.closed.get("server") == ev.RESET,
                    client_closed_normally=d.closed.get("client") == ev.NORMAL)


@scenario("close-wait-lingers", "the server's application reads the client's FIN but closes only 5 s later: "
                               "CLOSE_WAIT lasts while data still flows (the pile-up operators see in ss)")
def run_close_wait_lingers(seed: int, tracer=None, taps=()) -> Result:
    d = Demo(seed, tracer, list(taps))
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


OLD, NEW = b"OLD DATA from the first connection", b"new data, second connection"


def _old_duplicate_run(seed: int, tracer, taps: list, msl: float) -> tuple[Demo, list[bytes], list[dict]]:
    """One 4-tuple, two incarnations; a copy of the first one's data segment is delayed in the
    network and arrives 0.9 s after the first connection closed. Both hosts' ISNs do not advance,
    and timestamps are off, so only TIME_WAIT stands between the old segment and the new connection.
    The server closes first (it holds TIME_WAIT, for `2 x msl`); the client reconnects once that
    is over. Returns the demo, the data the server's application read per connection, and the
    server's drops of the duplicate."""
    base = dataclasses.replace(CONFIG.get() or Config(), timestamps=False)
    d = Demo(seed, tracer, taps, config=base, server_config=dataclasses.replace(base, msl=msl))
    for host in (d.client, d.server):
        host.stack.isn = IsnGenerator(host.stack.rng.randbytes(32), ticking=False)  # ISNs that do not advance
    # per connection, keyed by the object itself: an id() could be reused by the second connection
    # once the first is freed (with TIME_WAIT cut short nothing else holds it), merging the two
    got: dict[object, bytearray] = {}
    old_copy: list[tuple[float, bytes]] = []

    def keep_a_copy(t, packet):
        if not old_copy and bytes(packet).endswith(OLD):
            old_copy.append((t, bytes(packet)))  # the segment that will arrive late

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
            got[conn] = bytearray()
        elif isinstance(event, ev.DataReadable):
            got[conn] += conn.receive(now=d.sim.now)
            if len(got) == 1 and bytes(got[conn]) == OLD:
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
    if old_copy:  # the copy leaves the network one link delay before it arrives
        sent_at, packet = old_copy[0]
        note = f"old copy of {sent_at:.3f} s"
        d.sim.at(late - DEFAULT_LINK.latency, lambda: d.sim.replay(d.client, packet, note))
    def connect_again() -> None:
        d.client.stack.connect(SERVER_ADDR, PORT, d.sim.now, local_port=40000)

    d.sim.at(reconnect, lambda: d.sim.call(d.client, connect_again))
    d.run(until=reconnect + 1.5)
    for conn in d.client.stack.connections():  # a corrupted connection wedges (ACKs of data never sent):
        conn.abort(d.sim.now)  # the client gives up on it
    d.client.pump()
    d.run(until=reconnect + 3.0)
    arrived = next((e["t"] for e in d.sink if e["type"] == "recv" and e["host"] == "server" and e["len"] == len(OLD)
                    and e["t"] > late - DEFAULT_LINK.latency), None)
    drops = [e for e in d.sink if e["type"] in ("drop", "handled") and e["host"] == "server" and e["t"] == arrived]
    return d, [bytes(v) for v in got.values()], drops


@scenario("old-duplicate", "why does TIME_WAIT last 2×MSL? A late segment of an earlier connection on the same "
                          "4-tuple: with TIME_WAIT it is discarded; with TIME_WAIT cut short (and ISNs that do "
                          "not advance) it is taken as the new connection's data")
def run_old_duplicate(seed: int, tracer=None, taps=()) -> Result:
    safe_msl, short_msl = 30.0, 0.001
    safe, safe_got, safe_drops = _old_duplicate_run(seed, None, [], msl=safe_msl)
    safe_end = max((e["t"] for e in safe.sink), default=0.0)
    d, got, _ = _old_duplicate_run(seed, tracer, list(taps), msl=short_msl)
    res = d.result("old-duplicate", seed,
                   with_time_wait_the_old_segment_is_discarded=safe_got == [OLD, NEW] and bool(safe_drops),
                   without_time_wait_it_corrupts_the_new_stream=len(got) == 2 and got[1].startswith(OLD[:len(NEW)])
                   and got[1] != NEW)
    with_tw, without_tw = f"with TIME_WAIT ({2 * safe_msl:g} s)", f"without TIME_WAIT ({2 * short_msl * 1000:g} ms)"
    res.before = [(with_tw, list(safe.sink), safe_end)]
    res.title = without_tw
    res.info = {f"{with_tw}, the second connection read": safe_got[1:] and safe_got[1].decode(),
                "what the server did with the late segment then": ", ".join(
                    e.get("reason") or e.get("what", "") for e in safe_drops),
                f"{without_tw}, the second connection read": got[1:] and got[1].decode()}
    return res
