"""Test helpers: play the remote TCP by hand against one sans-IO Connection.

`Peer` delivers hand-made segments and returns exactly what the connection sent
in reply; fixtures build a connection in any RFC 9293 state through the public
API only. Flags are written packetdrill-style: S=SYN, F=FIN, R=RST, P=PSH, .=ACK.
"""

import ipaddress

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.core.connection import Connection
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.wire.options import NO_OPTIONS, Options
from tcpwave.wire.seq import MASK, seq_add
from tcpwave.wire.tcp import ACK, FIN, PSH, RST, SYN, URG, Segment

US = (ipaddress.ip_address("192.0.2.1"), 80)
THEM = (ipaddress.ip_address("192.0.2.2"), 40000)
PEER_ISS = 1_000_000
_LETTERS = {"S": SYN, "F": FIN, "R": RST, "P": PSH, ".": ACK, "U": URG}

# Tests of the state machine use plain segments; option behaviour has its own tests.
# a packetdrill script's opening: a listener, a handshake from the script's side, the accepted socket 4
PD_ACCEPTED = """\
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1000>
+0 > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
"""  # lines 1-7

PLAIN = Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0)
PEER_SYN_OPTIONS = Options(mss=1460)  # what the fixtures' peer puts on its SYN


def flags(spec: str) -> int:
    bits = 0
    for ch in spec:
        bits |= _LETTERS[ch]
    return bits


def spec(seg: Segment) -> str:
    return "".join(ch for ch, bit in _LETTERS.items() if seg.flags & bit)


class FixedIsn:
    """An ISN source that always answers `value` (for tests across the 2**32 wrap)."""

    def __init__(self, value: int):
        self.value = value

    def iss(self, now, *key) -> int:
        return self.value

    def start(self, now, *key) -> tuple[int, int]:
        return self.value, 0  # (and timestamps from the connection's clock as they are)


class Peer:
    def __init__(self, config: Config = PLAIN, peer_iss: int = PEER_ISS, isn=None):
        self.sink = ListSink()
        self.conn = Connection(config, US, THEM, tracer=Tracer(self.sink), host="us", isn=isn)
        self.now = 0.0
        self.peer_iss = peer_iss & MASK
        self.peer_nxt = self.peer_iss  # the next sequence number the peer would send
        self.iss: int | None = None  # ours, learned from our SYN or SYN,ACK
        self.sent: list[Segment] = []
        self.received = bytearray()

    # ---- driving
    def deliver(self, f: str, seq: int | None = None, ack: int | None = None, payload: bytes = b"",
                window: int = 65535, options: Options = NO_OPTIONS, urgent: int = 0) -> list[Segment]:
        """Deliver one segment; return what the connection sent in response."""
        seg = Segment(THEM[1], US[1], self.peer_nxt if seq is None else seq & MASK,
                      (self.our_nxt if ack is None else ack) & MASK, flags(f), window, payload, options, urgent)
        self.conn.segment_arrived(seg, self.now)
        return self._collect()

    def call(self, name: str, *args, **kw) -> list[Segment]:
        """A user call (connect, listen, send, close, abort, receive) at the current time."""
        method = getattr(self.conn, name)
        if name == "receive":
            self.received += method(*args, now=self.now, **kw)
        else:
            method(*args, self.now, **kw)
        return self._collect()

    def advance(self, to: float) -> list[Segment]:
        """Move the clock to `to`, firing every timer due on the way; return what was sent."""
        out = []
        for _ in range(100_000):  # a timer that re-arms itself for "now" must fail, not hang
            t = self.conn.next_timer()
            if t is None or t > to:
                break
            self.now = t
            self.conn.handle_timer(t)
            out += self._collect()
        else:
            raise AssertionError(f"timers keep firing at t={self.now}: a timer re-arms itself for now")
        self.now = to
        return out

    def fire_next_timer(self) -> list[Segment]:
        t = self.conn.next_timer()
        assert t is not None, "no timer armed"
        return self.advance(t)

    def _collect(self) -> list[Segment]:
        out = self.conn.segments_to_send()
        for seg in out:
            if seg.flags & SYN:
                self.iss = seg.seq
        self.sent += out
        return out

    # ---- observing
    @property
    def our_nxt(self) -> int:
        """The highest sequence number our side has sent, plus its length (SND.NXT as seen on the wire)."""
        best = None
        for seg in self.sent:
            if seg.flags & RST:
                continue
            end = seq_add(seg.seq, seg.seg_len)
            if best is None or ((end - best) & MASK) < (1 << 31):
                best = end
        return best if best is not None else 0

    def rel(self, seq: int) -> int:
        return (seq - self.iss) & MASK

    def states(self) -> list[tuple[str, str]]:
        return [(e["from"], e["to"]) for e in self.sink.of_type("state")]

    def drops(self) -> list[str]:
        return [e["reason"] for e in self.sink.of_type("drop")]

    def events(self) -> list:
        return self.conn.events()

    @property
    def state(self) -> str:
        return str(self.conn.state)


def expect_one(out: list[Segment], f: str, *, seq: int | None = None, ack: int | None = None,
               length: int | None = None) -> Segment:
    assert len(out) == 1, f"expected one segment [{f}], got {out}"
    seg = out[0]
    assert spec(seg) == f, f"expected flags [{f}], got [{spec(seg)}] in {seg}"
    if seq is not None:
        assert seg.seq == seq & MASK, f"expected seq {seq & MASK}, got {seg.seq}"
    if ack is not None:
        assert seg.ack == ack & MASK, f"expected ack {ack & MASK}, got {seg.ack}"
    if length is not None:
        assert len(seg.payload) == length
    return seg


def expect_ack(p: Peer, out: list[Segment]) -> Segment:
    """Exactly one bare ACK that acknowledges everything the peer sent."""
    return expect_one(out, ".", seq=p.our_nxt, ack=p.peer_nxt, length=0)


# ---------------------------------------------------------------- per-state fixtures
def listening(config: Config = PLAIN, **kw) -> Peer:
    p = Peer(config, **kw)
    p.call("listen")
    return p


def syn_sent(config: Config = PLAIN, **kw) -> Peer:
    p = Peer(config, **kw)
    out = p.call("connect")
    expect_one(out, "S")
    return p


def syn_rcvd(config: Config = PLAIN, options: Options = PEER_SYN_OPTIONS, **kw) -> Peer:
    p = listening(config, **kw)
    out = p.deliver("S", options=options)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    expect_one(out, "S.", ack=p.peer_nxt)
    return p


def established(config: Config = PLAIN, active: bool = True, **kw) -> Peer:
    if active:
        p = syn_sent(config, **kw)
        p.peer_nxt = seq_add(p.peer_iss, 1)
        out = p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), options=PEER_SYN_OPTIONS)
        expect_ack(p, out)
    else:
        p = syn_rcvd(config, **kw)
        assert p.deliver(".") == []
    assert p.state == "ESTABLISHED"
    assert any(isinstance(e, ev.Connected) for e in p.events())
    return p


def fin_wait_1(config: Config = PLAIN, **kw) -> Peer:
    p = established(config, **kw)
    expect_one(p.call("shutdown"), "F.")  # RFC CLOSE: a FIN, and the other direction stays open
    return p


def fin_wait_2(config: Config = PLAIN, **kw) -> Peer:
    p = fin_wait_1(config, **kw)
    assert p.deliver(".") == []
    assert p.state == "FIN_WAIT_2"
    return p


def peer_fin(p: Peer, state: str, ack: int | None = None) -> Peer:
    """The peer sends its FIN; expect it ACKed and the connection in `state`."""
    out = p.deliver("F.", ack=ack)
    p.peer_nxt = seq_add(p.peer_nxt, 1)
    expect_ack(p, out)
    assert p.state == state
    return p


def close_wait(config: Config = PLAIN, **kw) -> Peer:
    return peer_fin(established(config, **kw), "CLOSE_WAIT")


def last_ack(config: Config = PLAIN, **kw) -> Peer:
    p = close_wait(config, **kw)
    expect_one(p.call("close"), "F.")
    assert p.state == "LAST_ACK"
    return p


def closing(config: Config = PLAIN, **kw) -> Peer:
    p = fin_wait_1(config, **kw)
    return peer_fin(p, "CLOSING", ack=seq_add(p.our_nxt, -1))  # not yet acknowledging our FIN


def time_wait(config: Config = PLAIN, **kw) -> Peer:
    return peer_fin(fin_wait_2(config, **kw), "TIME_WAIT")
