"""TIME_WAIT as a compact record: the stack lets the full connection go once the application does,
and the 4-tuple still behaves exactly as a held connection in TIME_WAIT would."""

import gc
import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.core.state import State
from tcpwave.core.trace import NULL_TRACER, ListSink, Tracer
from tcpwave.stack import Stack
from tcpwave.wire.ip import build_ip
from tcpwave.wire.options import Options
from tcpwave.wire.seq import seq_add
from tcpwave.wire.tcp import ACK, FIN, RST, SYN, Segment, build_tcp

ME, PEER = ipaddress.ip_address("192.0.2.2"), ipaddress.ip_address("192.0.2.1")
PORT = 40000
PEER_ISS = 5000
PEER_TS = 1000


class Side:
    """A stack (the active closer, so it ends in TIME_WAIT) and a hand-driven peer."""

    def __init__(self, hold: bool, traced: bool = True, msl: float = 30.0):
        self.sink = ListSink()
        self.stack = Stack([ME], config=Config(msl=msl), tracer=Tracer(self.sink) if traced else NULL_TRACER,
                           host="stack", seed=11)
        self.now = 0.0
        listener = self.stack.listen(80, self.now)
        synack = self.send(Segment(PORT, 80, PEER_ISS, 0, SYN, 65535,
                                   options=Options(mss=1460, wscale=7, sack_permitted=True, ts=(PEER_TS, 0))))
        self.tsval = _tcp(synack[0]).options.ts[0]
        self.snd_una = seq_add(_tcp(synack[0]).seq, 1)
        self.send(Segment(PORT, 80, PEER_ISS + 1, self.snd_una, ACK, 512,
                          options=Options(ts=(PEER_TS + 1, self.tsval))))
        conn = listener.accept()
        conn.send(b"hello", self.now)
        conn.close(self.now)
        self.now = 0.5
        self.send(Segment(PORT, 80, PEER_ISS + 1, seq_add(self.snd_una, 6), FIN | ACK, 512,
                          options=Options(ts=(PEER_TS + 2, self.tsval))))
        assert conn.state is State.TIME_WAIT
        self.ref = conn.weak()
        self.held = conn if hold else None
        del conn
        self.advance(1.5)  # past the deadlines the connection's timers had before TIME_WAIT
        if not hold:  # let a let-go connection's cycles be collected: the young generations first (a
            gc.collect(1)  # full collection of the suite's heap costs tens of ms), all of them if it stays
            if self.ref() is not None:
                gc.collect()

    def send(self, seg: Segment) -> list[bytes]:
        self.stack.receive_packet(build_ip(PEER, ME, 6, build_tcp(seg, PEER, ME)), self.now)
        self.stack.events()  # (the application takes its events)
        return self.stack.packets_to_send()

    def advance(self, now: float) -> list[bytes]:
        self.now = now
        t = self.stack.next_timer()
        if t is not None and t <= now:
            self.stack.handle_timer(now)
        self.stack.events()
        return self.stack.packets_to_send()

    def table(self) -> list[str]:
        return [c.state.value for c in self.stack.connections()] + ["TW"] * len(self.stack.time_waits())


def test_the_connection_is_let_go_and_the_record_re_acks_a_retransmitted_fin():
    side = Side(hold=False)
    assert side.ref() is None  # the stack kept no full connection
    assert side.stack.connections() == [] and len(side.stack.time_waits()) == 1
    side.now = 10.0
    [raw] = side.send(Segment(PORT, 80, PEER_ISS + 1, seq_add(side.snd_una, 6), FIN | ACK, 512,
                              options=Options(ts=(PEER_TS + 3, side.tsval))))
    ack = _tcp(raw)
    assert ack.flags == ACK and ack.seq == seq_add(side.snd_una, 6) and ack.ack == PEER_ISS + 2
    assert ack.options.ts[1] == PEER_TS + 2  # TS.Recent stays (as Linux: a retransmitted FIN does not move it)
    assert side.stack.next_timer() == 10.0 + 60.0  # 2 x MSL restarted
    assert side.ref() is None and side.stack.connections() == []
    side.advance(69.0)
    assert len(side.stack.time_waits()) == 1
    [tw] = side.stack.time_waits()
    side.now = 70.0
    side.stack.handle_timer(70.0)
    assert side.stack.time_waits() == [] and side.stack.next_timer() is None
    assert side.stack.events() == [(tw, ev.Closed(ev.NORMAL))]  # told under the record
    assert tw.state is State.CLOSED and tw.remote == (PEER, PORT)
    closed = [e for e in side.sink.of_type("state") if e["to"] == "CLOSED"]
    assert closed[-1]["from"] == "TIME_WAIT" and closed[-1]["why"] == "2MSL timeout"


def test_a_held_connection_still_sees_time_wait_end():
    side = Side(hold=True, traced=False)
    assert side.stack.connections() == [] and len(side.stack.time_waits()) == 1
    side.advance(0.5 + 60.0)
    assert side.held.state is State.CLOSED and side.stack.time_waits() == []


def test_ss_lists_the_records():
    from tcpwave.core.observe import stack_snapshot
    side = Side(hold=False)
    [row] = [r for r in stack_snapshot(side.stack, 1.5) if r["state"] == "TIME_WAIT"]
    assert row["remote"] == f"{PEER}:{PORT}" and row["rcv_nxt"] == PEER_ISS + 2
    assert row["timers"] == {"time_wait": 59.0}


segments = st.lists(st.tuples(
    st.floats(0, 40),  # time step
    st.sampled_from([ACK, FIN | ACK, RST, RST | ACK, SYN, SYN | ACK, FIN, 0]),
    st.integers(-3, 3),  # seq, near RCV.NXT (-1 with FIN: the retransmitted FIN)
    st.integers(-3, 3),  # ack, near SND.NXT
    st.integers(0, 3),  # payload bytes
    st.sampled_from([None, -5, 0, 1, 100]),  # tsval, relative to TS.Recent (None: no option)
), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segments, st.booleans())
def test_a_record_answers_exactly_as_a_held_connection(steps, traced):
    held, let_go = Side(hold=True, traced=traced), Side(hold=False, traced=traced)
    assert let_go.ref() is None
    rcv_nxt, snd_nxt = PEER_ISS + 2, seq_add(held.snd_una, 6)
    for dt, flags, ds, da, n, ts in steps:
        now = held.now + dt
        assert held.advance(now) == let_go.advance(now)
        opts = Options(ts=(PEER_TS + 2 + ts, held.tsval)) if ts is not None else Options()
        seg = Segment(PORT, 80, seq_add(rcv_nxt, ds), seq_add(snd_nxt, da), flags, 512, payload=b"x" * n,
                      options=opts)
        assert held.send(seg) == let_go.send(seg)
        assert held.table() == let_go.table()
        assert held.stack.next_timer() == let_go.stack.next_timer()
    assert list(held.sink) == list(let_go.sink)  # the same trace, event for event


def _tcp(raw: bytes) -> Segment:
    from tcpwave.wire.ip import parse_ip
    from tcpwave.wire.tcp import parse_tcp
    pkt = parse_ip(raw)
    return parse_tcp(pkt.payload, pkt.src, pkt.dst)


def test_untraced_expiry_also_tells_closed_under_the_record():
    side = Side(hold=False, traced=False)
    [tw] = side.stack.time_waits()
    side.now = 0.5 + 60.0
    side.stack.handle_timer(side.now)
    assert side.stack.events() == [(tw, ev.Closed(ev.NORMAL))] and side.stack.time_waits() == []


def test_a_weak_reference_to_a_connection_follows_it_until_it_is_freed():
    """conn.weak() is what weakref.ref(conn) would be (the compiled Connection takes no weakref.ref):
    the connection while anything holds it, None once it is freed; the record alive() uses it."""
    from tcpwave.core.connection import Connection

    conn = Connection()
    ref, again = conn.weak(), conn.weak()
    assert ref() is conn and again() is conn
    del conn
    gc.collect()  # (a connection's parts point back at it: freed by the cycle collector)
    assert ref() is None and again() is None
