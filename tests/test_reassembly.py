"""The receive buffer under attack: out-of-order pieces cost a binary search each and at most the
window's worth of memory; pruned data is re-requested, and a reneging receiver does not stall the
sender."""

import random

from helpers import syn_sent

from tcpwave.core.config import Config
from tcpwave.core.recv_buffer import OVERHEAD, ReceiveBuffer
from tcpwave.wire.options import Options
from tcpwave.wire.seq import seq_add


def test_pieces_merge_and_deliver_exactly_once_in_any_order():
    rng = random.Random(4)
    data = bytes(rng.randrange(256) for _ in range(20_000))
    cuts = sorted(rng.sample(range(1, len(data)), 400))
    pieces = [(a, data[a:b]) for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    pieces += [(a, data[a:a + 50]) for a in rng.sample(range(len(data) - 50), 100)]  # overlapping repeats
    rng.shuffle(pieces)
    rb = ReceiveBuffer(1 << 20)
    got = bytearray()
    for off, chunk in pieces:
        rb.insert(off, chunk)
        got += rb.read()
    assert bytes(got) == data and not rb.has_gaps and rb.ooo_bytes == 0


def test_alternate_one_byte_pieces_cost_little_and_are_bounded_by_the_window():
    """The review's attack: one-byte segments at alternate offsets. Before, ~3 ms per segment at
    2,000 held pieces and unbounded memory; now the queue stays within its capacity (bytes plus
    OVERHEAD per range, highest ranges pruned) and each insert is a binary search."""
    capacity = 256 * 1024
    rb = ReceiveBuffer(capacity)
    n = 131_000  # what a 256 KB window allows (benchmarks/reassembly_attack.py times it)
    for i in range(n):
        rb.insert(1 + 2 * i, b"x")
        assert rb.charged <= capacity
    assert len(rb.ranges()) <= capacity // (OVERHEAD + 1)
    assert rb.pruned > 0
    assert rb.holds(1, 2) and not rb.holds(0, 1)


def test_filling_the_holes_delivers_what_was_kept():
    rb = ReceiveBuffer(10_000)
    for i in range(10):
        rb.insert(1 + 2 * i, bytes([65 + i]))
    assert rb.insert(0, b"_") == 2  # the first hole: byte 0 and the piece after it
    assert rb.read() == b"_A"


def test_a_sender_resends_data_the_receiver_reneged_on():
    """RFC 2018 §8: SACKed data may be dropped by the receiver (as pruning does). After a second
    timeout the sender forgets its SACK marks and resends, instead of waiting forever."""
    p = syn_sent(Config(timestamps=False, window_scaling=False, delayed_ack=0, congestion_control="reno"))
    p.advance(0.1)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), options=Options(mss=1000, sack_permitted=True))
    segs = p.call("send", b"r" * 5000)
    base = segs[0].seq
    p.advance(0.2)
    p.deliver(".", ack=base, options=Options(sack=((seq_add(base, 1000), seq_add(base, 5000)),)))
    p.advance(0.3)  # RACK resends the hole
    p.deliver(".", ack=seq_add(base, 1000))  # the hole arrived, but the SACKed rest was dropped: reneged
    resent = set()
    for _ in range(6):
        resent |= {s.seq for s in p.fire_next_timer() if len(s.payload)}
        if seq_add(base, 1000) in resent:
            break
    assert seq_add(base, 1000) in resent
