"""Loss recovery on the simulated network (RACK-TLP, PRR, NewReno) and the defects it fixed:
recovery after our FIN, zero-window probes that are not duplicate ACKs, SYN windows never scaled."""

import hashlib

from helpers import established, syn_sent

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.sim import Fault, LinkParams, Simulator
from tcpwave.wire.options import Options
from tcpwave.wire.seq import seq_add

RTT = 0.020


class Transfer:
    """A client on a 20 ms RTT, 100 Mbit/s path, warmed up so cwnd holds a 40-segment flight; then
    `flight()` writes 40 segments (and shuts down at once, if asked) with chosen ones lost."""

    def __init__(self, config: Config | None = None):
        self.sink = ListSink()
        self.sim = sim = Simulator(3, Tracer(self.sink))
        cfg = config or Config()
        self.a = sim.add_host("client", ["192.0.2.1"], config=cfg)
        self.b = sim.add_host("server", ["192.0.2.2"], config=cfg)
        sim.link(self.a, self.b, LinkParams(latency=RTT / 2, bandwidth=100e6, queue_bytes=1 << 22))
        self.received = bytearray()
        self.eof_at: float | None = None
        self.b.on_event = self._server
        self.listener = self.b.stack.listen(80, 0.0)
        self.conn = self.a.stack.connect("192.0.2.2", 80, 0.0)
        self.a.pump()
        sim.run(until=0.1)
        self.sent = bytearray()
        self._write(bytes(200_000))  # warm up: cwnd grows past 40 segments
        sim.run(stop=lambda: len(self.received) == 200_000 and self.conn.snd_una == self.conn.snd_nxt)
        assert self.conn.cwnd >= 40 * self.conn.snd_mss  # (the flight follows at once: no idle restart)

    def _server(self, host, conn, event):
        if isinstance(event, ev.Connected):
            self.listener.accept()
        elif isinstance(event, ev.DataReadable):
            self.received += conn.receive(now=self.sim.now)
        elif isinstance(event, ev.EndOfStream):
            self.eof_at = self.sim.now
            conn.close(self.sim.now)

    def _write(self, data: bytes) -> None:
        def go():
            assert self.conn.send(data, self.sim.now) == len(data)
            self.sent += data
        self.sim.call(self.a, go)

    def flight(self, lost: list[int], shutdown: bool) -> float:
        """Write 40 segments at once, lose the ones at these indexes; return the time until the
        server has every byte (and, with shutdown, the FIN)."""
        conn = self.conn
        mss = conn.snd_mss
        start = conn.snd_nxt
        for i in lost:
            seq = seq_add(start, i * mss)
            self.sim.add_fault(Fault("client", "server", with_data=True, match=lambda s, q=seq: s.seq == q))
        t0 = self.sim.now
        data = bytes(range(256)) * (40 * mss // 256 + 1)
        data = data[: 40 * mss]

        def go():
            assert conn.send(data, self.sim.now) == len(data)
            self.sent.extend(data)
            if shutdown:
                conn.shutdown(self.sim.now)
        self.sim.call(self.a, go)
        self.sim.run(until=t0 + 30)
        total = len(self.sent)
        assert hashlib.sha256(self.received).digest() == hashlib.sha256(self.sent).digest()
        assert len(self.received) == total
        if shutdown:
            assert self.eof_at is not None
            return self.eof_at - t0
        return max(e["t"] for e in self.sink if e["type"] == "recv" and e["host"] == "server"
                   and e.get("len")) - t0

    def losses(self) -> list[str]:
        return [e["rule"] for e in self.sink if e["type"] == "loss" and e["host"] == "client"]

    def timeouts(self) -> int:
        return sum(1 for e in self.sink if e["type"] == "timer" and e["host"] == "client"
                   and e["name"] == "retransmit" and e["action"] == "fire")


def test_tail_loss_then_shutdown_completes_within_five_round_trips():
    """The last 5 segments of a flight are lost and the FIN follows at once: the FIN arrives
    beyond the hole and is SACKed (as Linux SACKs it), so RACK finds the five lost after its
    reordering window, with no retransmission timeout (the old code took 5 RTOs)."""
    t = Transfer()
    took = t.flight(lost=[35, 36, 37, 38, 39], shutdown=True)
    assert took <= 5 * RTT
    assert t.timeouts() == 0
    assert t.losses() == ["rack"] * 5


def test_a_tail_loss_with_nothing_after_it_is_found_by_a_probe():
    """RFC 8985 §7: nothing follows the lost tail, so no ACK can report it: after PTO the last
    segment goes again, and its SACK lets RACK mark the rest."""
    t = Transfer()
    took = t.flight(lost=[35, 36, 37, 38, 39], shutdown=False)
    # without the probe nothing could happen before the RTO (0.2 s at least) after the last ACK
    assert took < Config().rto_min
    assert t.timeouts() == 0
    assert t.losses()[0] == "tlp" and t.losses().count("rack") == 4


def test_scattered_losses_then_shutdown_complete_within_five_round_trips():
    t = Transfer()
    took = t.flight(lost=[3, 9, 17, 25, 31, 38], shutdown=True)
    assert took <= 5 * RTT
    assert t.timeouts() == 0
    assert t.losses().count("rack") >= 6


def test_recovery_states_are_traced_and_end_open():
    t = Transfer()
    t.flight(lost=[5, 20], shutdown=False)
    moves = [(e["from"], e["to"]) for e in t.sink if e["type"] == "recovery" and e["host"] == "client"]
    assert ("open", "disorder") in moves and ("disorder", "recovery") in moves
    assert moves[-1][1] == "open"


def test_without_sack_newreno_repairs_with_fast_retransmit():
    t = Transfer(Config(sack=False))
    took = t.flight(lost=[3, 20], shutdown=False)
    assert t.timeouts() == 0
    assert set(t.losses()) == {"dupack"}
    assert took <= 4 * RTT


def test_a_zero_window_probe_with_data_is_not_a_duplicate_ack():
    """RFC 5681 §2: a duplicate ACK carries no data. Linux probes a zero window with one byte of
    data; three such probes must not trigger a fast retransmit and a cwnd cut."""
    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0,
                           recv_buffer=1000, congestion_control="reno"))
    p.call("send", b"x" * 3000)  # our data in flight: the peer's ACKs below acknowledge none of it
    una = p.conn.snd_una
    start = p.peer_nxt
    p.deliver("P.", payload=b"f" * 1000, ack=una)  # fills our 1000-byte window
    p.peer_nxt = seq_add(start, 1000)
    cwnd = p.conn.cwnd
    for _ in range(3):
        out = p.deliver("P.", payload=b"z", ack=una)  # the peer probes our zero window
        assert all(len(s.payload) == 0 for s in out)  # an ACK of the probe, no retransmission
    assert p.conn.cwnd == cwnd
    assert not [e for e in p.sink.of_type("loss")]


def test_a_synack_with_data_has_its_window_unscaled():
    """RFC 7323 §2.2: the window field of a SYN (or SYN,ACK) is never scaled, even when the
    segment carries data that is processed as in ESTABLISHED."""
    p = syn_sent(Config(timestamps=False, sack=False))
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), window=1000, payload=b"hello",
              options=Options(mss=1460, wscale=7))
    assert p.state == "ESTABLISHED"
    assert p.conn.snd_wnd == 1000  # not 1000 << 7


def test_a_synack_in_simultaneous_open_has_its_window_unscaled():
    p = syn_sent(Config(timestamps=False, sack=False))
    p.deliver("S", seq=p.peer_iss, ack=0, window=2000, options=Options(mss=1460, wscale=7))
    assert p.state == "SYN_RCVD"
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), window=1000, options=Options(mss=1460, wscale=7))
    assert p.state == "ESTABLISHED"
    assert p.conn.snd_wnd == 1000  # the SYN,ACK's own window, unscaled


def _established_with_timestamps():
    p = syn_sent(Config(window_scaling=False, sack=False, delayed_ack=0))
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), options=Options(mss=1460, ts=(100, 0)))
    assert p.state == "ESTABLISHED" and p.conn.ts_enabled
    return p


def test_a_forged_segment_that_fails_the_ack_check_does_not_move_ts_recent():
    """RFC 7323 §4.3 and the hardening review: TS.Recent moves only for a segment that passes the
    checks, or a forged one could make PAWS drop the real peer's next data."""
    p = _established_with_timestamps()
    p.deliver(".", ack=seq_add(p.our_nxt, 5000), options=Options(ts=(1 << 30, 0)))  # ACK above SND.NXT
    out = p.deliver("P.", payload=b"real", options=Options(ts=(200, 0)))
    assert out and out[-1].ack == seq_add(p.peer_nxt, 4)  # accepted, not dropped by PAWS


def test_a_challenged_syn_does_not_move_ts_recent():
    p = _established_with_timestamps()
    p.deliver("S", seq=p.peer_nxt, options=Options(ts=(1 << 30, 0)))  # RFC 5961 §4: challenge-ACKed
    out = p.deliver("P.", payload=b"real", options=Options(ts=(200, 0)))
    assert out and out[-1].ack == seq_add(p.peer_nxt, 4)


def test_a_tail_loss_probe_that_resends_is_not_counted_twice_in_flight():
    """The probe resends the last segment, which is not deemed lost: the pipe holds it once, so
    data written after the probe fills the congestion window less that one segment (as Linux,
    whose probe leaves retrans_out alone)."""
    from helpers import PEER_ISS, expect_ack

    cfg = Config(timestamps=False, window_scaling=False, delayed_ack=0)
    p = syn_sent(cfg)
    p.peer_nxt = seq_add(PEER_ISS, 1)
    expect_ack(p, p.deliver("S.", seq=PEER_ISS, ack=seq_add(p.iss, 1),
                            options=Options(mss=1000, sack_permitted=True)))
    mss = p.conn.snd_mss
    flight = p.call("send", b"t" * 10 * mss)
    [probe] = p.fire_next_timer()  # the tail loss probe: the last segment again (nothing new to send)
    assert probe.seq == flight[-1].seq and len(probe.payload) == mss
    p.deliver(".", ack=flight[-1].seq)  # the first nine arrive: one segment is in flight
    out = p.call("send", b"u" * 40 * mss)
    assert sum(len(s.payload) for s in out) == p.conn.cwnd // mss * mss - mss  # cwnd less that one
class TwoWay:
    """Two hosts on a 20 ms RTT, 100 Mbit/s path (with `loss` each way): the server streams
    `stream` bytes to the client as fast as it may; the client may write to the server too."""

    def __init__(self, stream: int, loss: float = 0.0, seed: int = 5):
        self.sink = ListSink()
        self.sim = sim = Simulator(seed, Tracer(self.sink))
        self.a = sim.add_host("client", ["192.0.2.1"])
        self.b = sim.add_host("server", ["192.0.2.2"])
        sim.link(self.a, self.b, LinkParams(latency=RTT / 2, bandwidth=100e6, queue_bytes=1 << 22, loss=loss))
        self.stream = bytes(range(256)) * (stream // 256)
        self.streamed = 0
        self.at_client = bytearray()
        self.at_server = bytearray()
        self.server_conn = None
        self.b.on_event = self._server
        self.a.on_event = self._client
        self.listener = self.b.stack.listen(80, 0.0)
        self.conn = self.a.stack.connect("192.0.2.2", 80, 0.0)
        self.a.pump()

    def _feed(self, conn) -> None:
        while self.streamed < len(self.stream):
            n = conn.send(self.stream[self.streamed:self.streamed + 65536], self.sim.now)
            if not n:
                break
            self.streamed += n

    def _server(self, host, conn, event):
        if isinstance(event, ev.Connected):
            self.server_conn = self.listener.accept()
            self._feed(conn)
        elif isinstance(event, ev.SendSpace):
            self._feed(conn)
        elif isinstance(event, ev.DataReadable):
            self.at_server += conn.receive(now=self.sim.now)

    def _client(self, host, conn, event):
        if isinstance(event, ev.DataReadable):
            self.at_client += conn.receive(now=self.sim.now)


def test_a_lost_request_segment_is_resent_while_the_peer_keeps_streaming():
    """Issue 22 defect 1: every segment of the server's stream is an ACK with no news for the
    client's request. The RACK reorder timer armed when the second request segment was SACKed must
    not be pushed back by them (RFC 8985 §6.2: it is set only when loss detection runs): the
    request is repaired within 10 RTT, not when the stream ends (the old code: 782 ms)."""
    w = TwoWay(20_000_000)
    w.sim.run(until=1.0)
    assert w.streamed < len(w.stream)  # the stream is still going
    mss = w.conn.snd_mss
    first = w.conn.snd_nxt
    w.sim.add_fault(Fault("client", "server", with_data=True, match=lambda s: s.seq == first))
    request = b"q" * (2 * mss)
    w.sim.call(w.a, lambda: w.conn.send(request, w.sim.now))
    w.sim.run(stop=lambda: len(w.at_server) == len(request), until=4.0)
    assert bytes(w.at_server) == request
    assert w.sim.now - 1.0 <= 10 * RTT
    assert len(w.at_client) < len(w.stream)  # repaired while the peer streams, not after


def test_a_two_way_transfer_over_a_lossy_path_invents_no_reordering():
    """Issue 22 defects 2 and 3: SACK blocks repeated on data segments and window updates are not
    D-SACKs (RFC 2883 §4), and blocks are taken lowest first; a path that never reorders leaves
    RACK's reordering window at its minimum on both sides (the old code: multiplier 14-15)."""
    from tcpwave.core.observe import snapshot

    w = TwoWay(3_000_000, loss=0.01)
    w.sim.run(until=0.1)
    upload = bytes(range(256)) * (3_000_000 // 256)
    sent = [0]

    def feed():
        while sent[0] < len(upload):
            n = w.conn.send(upload[sent[0]:sent[0] + 65536], w.sim.now)
            if not n:
                w.sim.after(0.005, lambda: w.sim.call(w.a, feed))
                return
            sent[0] += n
    w.sim.call(w.a, feed)
    w.sim.run(stop=lambda: len(w.at_server) == len(upload) and len(w.at_client) == len(w.stream), until=60)
    assert bytes(w.at_server) == upload and bytes(w.at_client) == w.stream
    assert [e for e in w.sink if e["type"] == "loss"]  # the path did lose segments
    for conn in (w.conn, w.server_conn):
        assert snapshot(conn, w.sim.now)["reo_wnd_mult"] == 1


def _lossless_flight_time() -> float:
    return Transfer().flight(lost=[], shutdown=True)


def test_tail_losses_with_shutdown_cost_at_most_five_round_trips_over_a_lossless_flight():
    """Issue 22's done-when: 40 segments, shutdown() right after send(): the last segment lost, the
    last five lost, six scattered losses each finish within 5 RTT of the same flight without loss."""
    base = _lossless_flight_time()
    for lost in ([39], [35, 36, 37, 38, 39], [3, 9, 17, 25, 31, 38]):
        t = Transfer()
        took = t.flight(lost=lost, shutdown=True)
        assert took - base <= 5 * RTT, (lost, took, base)
        assert t.timeouts() == 0


def test_newreno_counts_each_delivered_segment_once():
    """Issue 22 defect 11 (RFC 6937 §3, Linux's tcp_remove_reno_sacks): without SACK a duplicate
    ACK stands for one delivered segment, so the cumulative ACK that ends the recovery delivers
    only what the duplicates did not already count. What the connection reports delivered
    (tcp_info's delivered, which PRR's prr_delivered also adds up) equals what was acknowledged;
    the old code counted the segments behind each hole twice."""
    from tcpwave.core.observe import snapshot

    t = Transfer(Config(sack=False))
    before = snapshot(t.conn, t.sim.now)
    t.flight(lost=[3, 20], shutdown=False)
    after = snapshot(t.conn, t.sim.now)
    assert set(t.losses()) == {"dupack"}
    assert after["delivered"] - before["delivered"] == after["bytes_acked"] - before["bytes_acked"]
