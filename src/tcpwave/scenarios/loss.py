"""Loss scenarios: one named segment lost on the wire (SYN, SYN,ACK, FIN, the final ACK), and a bulk
transfer both ways over a lossy, reordering link."""

import hashlib
import random
from collections.abc import Callable

from ..core import events as ev
from ..core.state import State
from ..sim import Fault, LinkParams
from .registry import Demo, Result, echo_then_close, scenario


def _with_fault(name: str, make_fault: Callable[[], Fault]) -> Callable:
    def run(seed: int, tracer=None, taps=()) -> Result:
        d = Demo(seed, tracer, list(taps))
        d.sim.add_fault(make_fault())
        echo_then_close(d, b"ping", b"pong")
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


def final_ack_lost(d: Demo) -> None:
    """Echo, then close; the client's ACK of the server's FIN is lost on the wire."""
    echo_then_close(d, b"ping", b"pong")
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
    d = Demo(seed, tracer, list(taps))
    final_ack_lost(d)
    return d.result("lost-final-ack", seed,
                    closed_normally=d.closed_normally())


@scenario("lossy", "1 MB each way over 10% loss with reordering, verified by SHA-256")
def run_lossy(seed: int, tracer=None, taps=(), size: int = 1_000_000, loss: float = 0.10) -> Result:
    link = LinkParams(latency=0.010, bandwidth=50e6, queue_bytes=512 * 1024, loss=loss, reorder=0.05,
                      reorder_delay=0.004)
    d = Demo(seed, tracer, list(taps), link=link)
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
    res.info = {"bytes_each_way": size, "packets": d.sim.packets_sent}
    for src, dst in (("client", "server"), ("server", "client")):  # one hash per direction: they differ
        same = digest[src] == got[dst]
        res.info[f"SHA-256 of the {src} → {dst} data"] = (
            f"{digest[src]} (sent by the {src} = received by the {dst})" if same
            else f"sent by the {src} {digest[src]}, received by the {dst} {got[dst]}")
    return res
