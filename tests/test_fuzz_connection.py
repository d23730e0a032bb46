"""Fuzzing the connection (hardening): a hypothesis state machine drives one connection through every
state with random segments (sequence and acknowledgment numbers near the live values, random flags,
options and payloads), timers and user calls. Peer input never raises; every segment not used is
dropped with a named reason; every state reached is one of the eleven; the core's own invariants
hold. Derandomized and bounded: the same examples every run, a few seconds in CI."""

from helpers import Peer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tcpwave.core.config import Config
from tcpwave.core.errors import TcpError
from tcpwave.core.reasons import DropReason
from tcpwave.core.state import State
from tcpwave.wire.options import Options
from tcpwave.wire.seq import MASK, seq_add
from tcpwave.wire.tcp import ACK, FIN, PSH, RST, SYN, URG

FLAG_SETS = [ACK, ACK | PSH, ACK | FIN, SYN, SYN | ACK, RST, RST | ACK, FIN, ACK | URG, 0, ACK | SYN | FIN]
REASONS = {r.value for r in DropReason}
options = st.one_of(
    st.just(Options()),
    st.builds(Options, mss=st.one_of(st.none(), st.integers(0, 65535)),
              wscale=st.one_of(st.none(), st.integers(0, 20)),
              sack_permitted=st.booleans(),
              ts=st.one_of(st.none(), st.tuples(st.integers(0, MASK), st.integers(0, MASK))),
              sack=st.lists(st.tuples(st.integers(0, MASK), st.integers(0, MASK)), max_size=3).map(tuple)),
)


class ConnectionFuzz(RuleBasedStateMachine):
    @initialize(active=st.booleans(), sack=st.booleans(), ts=st.booleans())
    def start(self, active, sack, ts):
        cfg = Config(sack=sack, timestamps=ts, delayed_ack=0.04, keepalive=True, keepalive_idle=30.0,
                     user_timeout=None)
        self.p = Peer(cfg)
        self.p.call("connect") if active else self.p.call("listen")

    def _near(self, base: int, spread: int) -> int:
        return seq_add(base, spread) & MASK

    @rule(flags=st.sampled_from(FLAG_SETS), dseq=st.integers(-70_000, 70_000), dack=st.integers(-70_000, 70_000),
          payload=st.binary(max_size=3000), window=st.integers(0, 65535), opts=options,
          urgent=st.integers(0, 65535))
    def segment(self, flags, dseq, dack, payload, window, opts, urgent):
        p = self.p
        seq = self._near(p.peer_nxt, dseq if dseq % 3 else 0)  # a third exactly at the expected value
        ack = self._near(p.conn.snd_nxt, dack if dack % 3 else 0)
        spec = "".join(ch for ch, bit in (("S", SYN), ("F", FIN), ("R", RST), ("P", PSH), (".", ACK), ("U", URG))
                       if flags & bit)
        before = len(p.sink)
        p.deliver(spec, seq=seq, ack=ack, payload=payload, window=window, options=opts, urgent=urgent)
        for e in p.sink[before:]:
            if e["type"] == "drop":
                assert e["reason"] in REASONS, e
        if flags & SYN and not flags & ACK and p.conn.state is State.SYN_RCVD:
            p.peer_nxt = seq_add(seq, 1)  # sometimes the handshake goes on

    @rule(seconds=st.sampled_from([0.01, 0.2, 1.0, 30.0, 600.0]))
    def time_passes(self, seconds):
        self.p.advance(self.p.now + seconds)

    @rule(size=st.integers(0, 100_000))
    def send(self, size):
        try:
            self.p.call("send", b"s" * size)
        except (TcpError, ConnectionError, TimeoutError):
            pass  # misuse in this state, or the peer ended it: a clear error, never a crash

    @rule(call=st.sampled_from(["receive", "shutdown", "close", "abort"]))
    def user(self, call):
        try:
            self.p.call(call)
        except (TcpError, ConnectionError, TimeoutError):
            pass

    @invariant()
    def consistent(self):
        if not hasattr(self, "p"):
            return
        conn = self.p.conn
        assert isinstance(conn.state, State)
        q = conn.recovery.q
        assert q.sacked >= 0 and q.lost >= 0 and q.retrans_out >= 0 and q.in_flight >= 0
        assert conn.rcv.buf.charged <= conn.config.recv_buffer + 64 * 4  # the queue stays bounded
        assert conn.snd.unsent == conn.snd.buf.bytes_from(conn.snd.nxt)  # the count the sender keeps
        nxt = conn.next_timer()
        assert nxt is None or nxt >= self.p.now - 1e-9 or conn.state is State.CLOSED


ConnectionFuzz.TestCase.settings = settings(max_examples=300, stateful_step_count=50, deadline=None,
                                            derandomize=True, suppress_health_check=list(HealthCheck))
test_connection_fuzz = ConnectionFuzz.TestCase
