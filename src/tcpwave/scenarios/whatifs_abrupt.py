"""What-ifs that end abruptly, the ones tutorials raise: close() with unread data (a RST, and the
data the peer loses), SO_LINGER 0 (abort), a SYN to a full backlog, and a half-open connection
after the peer reboots. Each checks what its run shows, from the events."""

from ..core import events as ev
from ..core.config import Config
from ..stack import Stack
from .registry import CONFIG, SERVER_ADDR, Demo, Result, scenario

RESPONSE = b"".join(f"line {i:04d} of the response\n".encode() for i in range(4000))  # 104 KB


def _sent(d: Demo, host: str, flag: str) -> list[dict]:
    return [e for e in d.sink if e["type"] == "send" and e["host"] == host and flag in e["flags"].split(",")]


def _states(d: Demo, host: str) -> list[str]:
    return [e["to"] for e in d.sink if e["type"] == "state" and e["host"] == host]


def _lost_bytes(d: Demo, written: int, host: str) -> dict[str, object]:
    got = len(d.received[host])
    return {"bytes written": written, f"bytes {host} read": got, "bytes lost to the RST": written - got}


@scenario("close-unread", "the server answers the first of two pipelined requests and close()s without "
                         "reading the second: unread data turns its close into a RST, and the client loses "
                         "the end of the answer")
def run_close_unread(seed: int, tracer=None, taps=()) -> Result:
    d = Demo(seed, tracer, list(taps))
    first, second = b"GET /first\n", b"GET /second\n"

    def client_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            conn.send(first, d.sim.now)
            d.sim.after(0.005, lambda: d.sim.call(d.client, lambda: conn.send(second, d.sim.now)))

    def server_app(host, conn, event):
        if isinstance(event, ev.DataReadable) and not d.received["server"]:
            d.received["server"] += conn.receive(len(first), now=d.sim.now)  # the first request only
            conn.send(RESPONSE, d.sim.now)
            # the answer written, the application closes once the second request is in (unread)
            d.sim.after(0.03, lambda: d.sim.call(d.server, lambda: conn.close(d.sim.now)))
        elif not isinstance(event, ev.DataReadable):
            d.note_common(host, conn, event)

    d.client.on_event, d.server.on_event = client_app, server_app
    d.listen()
    d.connect()
    d.run()
    rst = _sent(d, "server", "RST")
    res = d.result("close-unread", seed,
                   server_sent_rst_not_fin=bool(rst) and rst[0].get("note") == "CLOSE with unread data"
                   and not _sent(d, "server", "FIN"),
                   client_was_reset=d.closed.get("client") == ev.RESET,
                   client_lost_part_of_the_answer=len(d.received["client"]) < len(RESPONSE)
                   and RESPONSE.startswith(bytes(d.received["client"])),
                   no_time_wait="TIME_WAIT" not in _states(d, "client") + _states(d, "server"))
    res.info = _lost_bytes(d, len(RESPONSE), "client")
    return res


@scenario("linger-zero", "the client writes 104 KB and closes with SO_LINGER 0 (an abort): one RST instead "
                        "of a FIN, the unsent data discarded, no TIME_WAIT on either side")
def run_linger_zero(seed: int, tracer=None, taps=()) -> Result:
    d = Demo(seed, tracer, list(taps))

    def client_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            conn.send(RESPONSE, d.sim.now)
            d.sim.after(0.015, lambda: d.sim.call(d.client, lambda: conn.abort(d.sim.now, why="SO_LINGER 0 close()")))

    d.client.on_event, d.server.on_event = client_app, d.note_common
    d.listen()
    d.connect()
    d.run()
    rst = [e for e in _sent(d, "client", "RST") if e.get("note") == "SO_LINGER 0 close()"]
    res = d.result("linger-zero", seed,  # (its later RSTs answer the server's ACKs that were on the way)
                   client_aborted_with_one_rst_and_no_fin=len(rst) == 1 and not _sent(d, "client", "FIN"),
                   server_was_reset=d.closed.get("server") == ev.RESET,
                   unsent_data_discarded=len(d.received["server"]) < len(RESPONSE),
                   no_time_wait="TIME_WAIT" not in _states(d, "client") + _states(d, "server"))
    res.info = _lost_bytes(d, len(RESPONSE), "server")
    return res


@scenario("backlog-full", "the server's accept queue (backlog 1) holds a connection its application has not "
                         "accepted: a second SYN is dropped without an answer, and the client retries until "
                         "the application accepts")
def run_backlog_full(seed: int, tracer=None, taps=()) -> Result:
    d = Demo(seed, tracer, list(taps))
    accepted: list[float] = []
    ports = (40001, 40002)

    mine: set = set()  # the connections the application has accepted: it reads only those

    def serve(conn) -> None:
        d.received["server"] += conn.receive(now=d.sim.now)
        conn.close(d.sim.now)

    def server_app(host, conn, event):
        if isinstance(event, ev.DataReadable):
            if conn in mine:
                serve(conn)
        elif not isinstance(event, ev.Connected):
            d.note_common(host, conn, event)

    def accept_all() -> None:  # the application gets round to accept() every 2.5 s
        assert d.listener is not None
        while (conn := d.listener.accept()) is not None:
            accepted.append(d.sim.now)
            mine.add(conn)
            serve(conn)
        if d.sim.now < 5.0:
            d.sim.after(2.5, lambda: d.sim.call(d.server, accept_all))

    def client_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            conn.send(f"hello from port {conn.local[1]}\n".encode(), d.sim.now)
        elif isinstance(event, ev.EndOfStream):
            conn.close(d.sim.now)

    d.client.on_event, d.server.on_event = client_app, server_app
    d.listen().backlog = 1
    d.connect(local_port=ports[0])
    d.sim.at(0.1, lambda: d.sim.call(d.client, lambda: d.connect(local_port=ports[1])))
    d.sim.at(2.5, lambda: d.sim.call(d.server, accept_all))
    d.run()
    dropped = [e for e in d.sink if e["type"] == "drop" and e["host"] == "server" and e.get("reason") == "backlog_full"]
    syns = [e for e in _sent(d, "client", "SYN") if e["src"].endswith(f":{ports[1]}")]
    connected = next((e["t"] for e in d.sink if e["type"] == "state" and e["host"] == "client"
                      and e["to"] == "ESTABLISHED" and e["t"] > 0.1), None)
    answers = [e for e in _sent(d, "server", "SYN") if e["dst"].endswith(f":{ports[1]}")]
    res = d.result("backlog-full", seed,
                   second_syn_dropped_unanswered=bool(dropped) and bool(accepted)
                   and all(e["t"] > accepted[0] for e in answers),
                   client_retransmitted_its_syn=len(syns) > 1,
                   connected_after_accept=connected is not None and bool(accepted) and connected > accepted[0],
                   both_requests_read=b"40001" in d.received["server"] and b"40002" in d.received["server"])
    res.info = {"SYNs the full backlog dropped": len(dropped),
                "the second client's SYNs sent at (s)": ", ".join(f"{e['t']:.3f}" for e in syns),
                "its connection established at (s)": connected if connected is None else round(connected, 6)}
    return res


@scenario("peer-reboot", "the server reboots while the connection is idle: the client still thinks it is "
                        "ESTABLISHED (half-open) until its next segment draws a RST from the rebooted stack")
def run_peer_reboot(seed: int, tracer=None, taps=()) -> Result:
    d = Demo(seed, tracer, list(taps))
    reboot_at, write_at = 1.0, 3.0

    def client_app(host, conn, event):
        d.note_common(host, conn, event)
        if isinstance(event, ev.Connected):
            conn.send(b"first request\n", d.sim.now)
            d.sim.at(write_at, lambda: d.sim.call(d.client, lambda: conn.send(b"after the reboot\n", d.sim.now)))

    def reboot() -> None:  # every connection the server held is gone; the service listens again
        old = d.server.stack
        d.server.stack = Stack(SERVER_ADDR, config=CONFIG.get() or Config(), seed=old.rng.getrandbits(64),
                               tracer=d.tracer, host="server")
        d.sim.tracer.emit(d.sim.now, "server", "handled", what="reboot", done="every connection forgotten")
        d.listen()

    d.client.on_event, d.server.on_event = client_app, d.note_common
    d.listen()
    d.connect()
    d.sim.at(reboot_at, lambda: d.sim.call(d.server, reboot))
    d.run()
    rst = [e for e in _sent(d, "server", "RST") if e["t"] > write_at]
    res = d.result("peer-reboot", seed,
                   client_half_open_until_it_wrote=d.closed.get("client") == ev.RESET and all(
                       e["t"] >= write_at for e in d.sink if e["type"] == "state" and e["host"] == "client"
                       and e["from"] == "ESTABLISHED"),
                   next_segment_drew_a_rst=bool(rst),
                   first_request_read=bytes(d.received["server"]) == b"first request\n")
    ended = next((e["t"] for e in d.sink if e["type"] == "state" and e["host"] == "client"
                  and e["from"] == "ESTABLISHED"), None)
    res.info = {"the client stayed ESTABLISHED after the reboot for (s)": None if ended is None
                else round(ended - reboot_at, 6)}
    return res
