"""Flow control (RFC 9293 §3.8.6): receiver silly-window avoidance, window updates on reads,
zero-window probing that backs off and never gives up while answered, and the send buffer."""

from helpers import established, expect_one

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.wire.seq import seq_add, seq_diff

SMALL = Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0, recv_buffer=10_000)


def _fill(p, total: int, size: int = 1000):
    out = []
    for _ in range(total // size):
        out += p.deliver("P.", payload=b"f" * size)
        p.peer_nxt = seq_add(p.peer_nxt, size)
    return out


def right_edge(seg) -> int:
    return seq_add(seg.ack, seg.window)


def test_window_follows_free_receive_space():
    p = established(SMALL)
    out = _fill(p, 3000)
    assert [s.window for s in out] == [10_000 - 1000, 10_000 - 2000, 10_000 - 3000]
    assert len({right_edge(s) for s in out}) == 1  # the edge stays put while nobody reads


def test_right_edge_moves_only_by_the_sws_rule():
    p = established(SMALL)
    out = _fill(p, 9000)
    edge = right_edge(out[-1])
    assert p.call("receive", 300) == []  # 300 bytes freed: under min(10000 / 2, MSS 1000)
    out = p.deliver("P.", payload=b"g" * 500)  # the next ACK still offers the same edge
    p.peer_nxt = seq_add(p.peer_nxt, 500)
    assert right_edge(expect_one(out, ".")) == edge
    out = p.call("receive", 1000)  # 1300 freed in all: the edge may move, and at once (window small)
    seg = expect_one(out, ".")
    assert seq_diff(right_edge(seg), edge) == 1300


def test_window_never_shrinks_even_when_the_buffer_is_full():
    p = established(SMALL)
    out = _fill(p, 10_000)
    assert out[-1].window == 0 and right_edge(out[-1]) == right_edge(out[0])


def test_zero_window_probes_back_off_and_never_give_up_while_answered():
    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0, data_retries=3))
    p.deliver(".", window=0)
    assert p.call("send", b"w" * 100) == []
    probe_times = []
    for _ in range(12):  # well past data_retries: probes are not retransmissions
        out = p.fire_next_timer()
        probe = expect_one(out, ".", seq=seq_add(p.our_nxt, -1), length=0)
        probe_times.append(p.now)
        p.deliver(".", window=0)  # the peer answers, still closed
        assert probe.ack == p.peer_nxt
    gaps = [round(b - a, 6) for a, b in zip(probe_times, probe_times[1:], strict=False)]
    assert gaps[:4] == [0.4, 0.8, 1.6, 3.2] and max(gaps) == 120.0  # backoff from 0.2 s, capped at RTO max
    assert p.state == "ESTABLISHED"
    out = p.deliver(".", window=5000)  # the window opens: the data goes
    assert sum(len(s.payload) for s in out) == 100


def test_send_accepts_only_what_fits_and_reports_space_returning():
    p = established(Config(timestamps=False, window_scaling=False, sack=False, send_buffer=3000))
    assert p.conn.send(b"s" * 5000, p.now) == 3000
    p._collect()
    assert p.conn.send_space == 0
    p.deliver(".", ack=p.our_nxt)
    events = p.events()
    assert ev.SendSpace(3000) in events


def test_a_peer_shrinking_its_window_is_handled_without_abort():
    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0, nodelay=True))
    p.deliver(".", window=10_000)
    out = p.call("send", b"k" * 8000)
    assert sum(len(s.payload) for s in out) == 8000
    first = out[0].seq
    # the peer takes back its offer: 2000 bytes acknowledged, window now ends below what we sent
    assert p.deliver(".", ack=seq_add(first, 2000), window=1000) == []
    assert p.call("send", b"l" * 100) == []  # nothing new beyond the shrunken edge
    assert p.state == "ESTABLISHED"
    out = p.deliver(".", ack=seq_add(first, 8000), window=20_000)  # the window opens again
    assert sum(len(s.payload) for s in out) == 100
    assert p.state == "ESTABLISHED"


def test_the_fin_needs_a_byte_of_window():
    """Our FIN takes a sequence number: with the window filled by the last data it waits for the
    ACK that opens room (a receiver with no window left would not accept it, RFC 9293 §3.10.7.4)."""
    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0))
    p.deliver(".", window=1000)
    p.conn.send(b"f" * 1000, p.now)  # (queued: sent with the shutdown below, in one output)
    out = p.call("shutdown")
    assert sum(len(s.payload) for s in out) == 1000 and not any(s.flags & 0x01 for s in p.sent)
    out = p.deliver(".", ack=p.our_nxt, window=1000)
    fin = expect_one(out, "F.", length=0)
    assert fin.seq == seq_add(p.our_nxt, -1)
