"""The sender's retransmission queue with SACK (RFC 2018, RFC 6675's pipe), RACK's loss detection,
and the receiver's blocks."""

from helpers import expect_one, syn_sent

from tcpwave.core.config import Config
from tcpwave.core.rtxqueue import RetransmitQueue
from tcpwave.wire.options import Options
from tcpwave.wire.seq import MASK, seq_add

MSS = 1000


def _queue(segments: int, now: float = 0.0) -> RetransmitQueue:
    q = RetransmitQueue()
    q.reset(0)
    for _ in range(segments):
        q.sent(MSS, False, now)
    return q


def _marks(q) -> list:
    return [(r.start, r.end, r.sacked, r.lost, r.retrans) for r in q]


def test_sack_marks_records_splits_partly_covered_ones_and_counts_newly_sacked():
    q = _queue(10)
    assert [(r.start, r.end) for r in q.sack(2000, 3000)] == [(2000, 3000)]
    newly = q.sack(2500, 4500)  # half of it already SACKed; 4000-4500 splits a record
    assert [(r.start, r.end) for r in newly] == [(3000, 4000), (4000, 4500)]
    assert q.sacked == 2500 and q.highest_sacked == 4500
    assert [(r.start, r.end) for r in q][4:6] == [(4000, 4500), (4500, 5000)]
    assert q.in_flight == 10_000 - 2500  # RFC 6675 pipe: SACKed bytes have left the network


def test_blocks_below_snd_una_or_beyond_snd_nxt_mark_nothing():
    q = _queue(5)
    q.acknowledge(1000)
    assert q.sack(0, 1000) == []  # below SND.UNA: a D-SACK, not for the queue
    assert q.sack(5000, 9000) == []  # beyond what was sent
    assert q.is_sacked(0, 1000)  # (a D-SACK test: already acknowledged)
    assert q.sacked == 0


def test_cumulative_ack_drops_records_and_splits_the_one_it_ends_in():
    q = _queue(4)
    q.sack(2000, 3000)
    delivered = q.acknowledge(2500)
    assert [(r.start, r.end) for r in delivered] == [(0, 1000), (1000, 2000)]  # 2000-2500 was SACKed
    assert [(r.start, r.end, r.sacked) for r in q] == [(2500, 3000, True), (3000, 4000, False)]
    assert q.una == 2500 and q.sacked == 500 and q.flight == 1500


def test_lost_and_retransmitted_bytes_make_the_pipe():
    q = _queue(8)
    q.sack(1000, 2000)
    q.sack(3000, 6000)
    first, third = list(q)[0], list(q)[2]
    q.mark_lost(first)
    q.mark_lost(third)
    # 8000 sent, 4000 SACKed, 2000 lost: 2000 presumed in flight (RFC 6675 SetPipe)
    assert q.in_flight == 2000
    assert q.next_lost() is first
    q.retransmitted(first, 1.0)
    assert q.next_lost() is third and q.in_flight == 3000  # a retransmission is in flight again
    q.mark_lost(first)  # RACK finds the retransmission lost too
    assert q.retrans_out == 0 and q.next_lost() is first
    q.acknowledge(8000)
    assert (q.sacked, q.lost, q.retrans_out, q.in_flight) == (0, 0, 0, 0)


def test_positions_are_unwrapped_across_the_sequence_space_wrap():
    q = _queue(3)
    snd_una = MASK - 500
    assert q.unwrap(seq_add(snd_una, 2500), snd_una) == 2500  # past 2**32, still 2500 bytes on


SACK = Config(timestamps=False, window_scaling=False, delayed_ack=0, congestion_control="reno")


def test_several_losses_in_one_window_are_resent_without_waiting_a_round_trip_each():
    """RFC 8985 RACK with SACK: a segment is lost once a later-sent one is delivered and a reordering
    window has passed; with three segments SACKed above a hole the window is zero (§6.2 step 4)."""
    from helpers import syn_sent

    p = syn_sent(SACK)
    p.advance(0.1)  # a 100 ms RTT: the SYN,ACK's sample sets SRTT and RACK's min_RTT
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), options=Options(mss=1460, sack_permitted=True))
    assert p.conn.sack_ok
    segs = p.call("send", b"s" * 14600)
    assert len(segs) == 10
    base = segs[0].seq
    p.advance(0.2)  # a round trip later the SACKs come back: segments 0, 3 and 6 were lost

    def sack(*ranges):
        return Options(sack=tuple((seq_add(base, a * 1460), seq_add(base, b * 1460)) for a, b in ranges))
    out = p.deliver(".", ack=base, options=sack((1, 3)))
    assert out == []  # 2 segments SACKed above the hole: it may be reordering; RACK waits min_RTT/4
    assert p.conn.timers.slot == "rack_reorder"
    out = p.deliver(".", ack=base, options=sack((4, 6), (1, 3)))
    assert [s.seq for s in out] == [base]  # three SACKed: reo_wnd 0, segment 0 is lost at once
    out += p.deliver(".", ack=base, options=sack((7, 10), (4, 6), (1, 3)))
    holes = [base, seq_add(base, 3 * 1460), seq_add(base, 6 * 1460)]
    assert sorted(s.seq for s in out if s.seq in holes) == holes  # every hole within one round trip
    assert p.conn.ssthresh == 5 * 1460  # Reno halves once
    p.deliver(".", ack=p.our_nxt)
    assert p.conn.ssthresh == 5 * 1460  # one recovery, one reduction
    assert p.conn.cwnd == p.conn.ssthresh  # RFC 6937: recovery ends with cwnd = ssthresh
    assert not [e for e in p.sink.of_type("timer") if e["name"] == "retransmit" and e["action"] == "fire"]


def test_receiver_blocks_are_most_recent_first_and_at_most_three_with_timestamps():
    from helpers import syn_sent

    p = syn_sent(Config(window_scaling=False, delayed_ack=0))
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1),
              options=Options(mss=1460, sack_permitted=True, ts=(1, 0)))
    start = p.peer_nxt
    last = None
    for i in (1, 3, 5, 7):  # four separate out-of-order pieces
        out = p.deliver("P.", seq=seq_add(start, i * 100), payload=b"o" * 100, options=Options(ts=(2, 0)))
        last = expect_one(out, ".", ack=start)
    blocks = last.options.sack
    assert len(blocks) == 3  # 40 option bytes: 10 for timestamps leave room for three blocks
    assert blocks[0] == (seq_add(start, 700), seq_add(start, 800))  # the newest first


def _sack_peer():
    from helpers import syn_sent

    p = syn_sent(SACK)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), options=Options(mss=1460, sack_permitted=True))
    return p


def test_duplicate_below_rcv_nxt_is_reported_as_dsack_first():
    p = _sack_peer()
    start = p.peer_nxt
    p.deliver("P.", payload=b"d" * 500)
    p.peer_nxt = seq_add(start, 500)
    out = p.deliver("P.", seq=start, payload=b"d" * 500)  # a spurious retransmission
    seg = expect_one(out, ".", ack=p.peer_nxt)
    assert seg.options.sack == ((start, seq_add(start, 500)),)  # below the ACK: a D-SACK
    out = p.deliver(".")  # reported once only
    assert out == [] or not expect_one(out, ".").options.sack


def test_duplicate_of_out_of_order_data_is_reported_as_dsack_before_the_sack_blocks():
    p = _sack_peer()
    start = p.peer_nxt
    piece = (seq_add(start, 1000), seq_add(start, 1500))
    p.deliver("P.", seq=piece[0], payload=b"o" * 500)
    out = p.deliver("P.", seq=piece[0], payload=b"o" * 500)  # the same piece again
    seg = expect_one(out, ".", ack=start)
    assert seg.options.sack == (piece, piece)  # D-SACK first, then the block that contains it


def _ten_segments_out():
    """A SACK connection with a 100 ms RTT (SRTT and min_RTT from the SYN,ACK) and ten 1460-byte
    segments just sent; returns the peer and a function making SACK options in segment units."""
    p = syn_sent(SACK)
    p.advance(0.1)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), options=Options(mss=1460, sack_permitted=True))
    segs = p.call("send", b"s" * 14600)
    assert len(segs) == 10
    base = segs[0].seq
    p.advance(0.2)

    def sack(*ranges):
        return Options(sack=tuple((seq_add(base, a * 1460), seq_add(base, b * 1460)) for a, b in ranges))
    return p, base, sack


def _reo_wnd_mult(p) -> int:
    from tcpwave.core.observe import snapshot
    return snapshot(p.conn, p.now)["reo_wnd_mult"]


def test_a_repeated_sack_block_is_not_a_dsack():
    """Issue 22 defect 2, RFC 2883 §4 (Linux's tcp_check_dsack): the first block is a D-SACK only
    below the cumulative ACK or inside the second block. A block repeated on the next ACK (a window
    update, a data segment) is not one, and must not widen RACK's reordering window."""
    p, base, sack = _ten_segments_out()
    p.deliver(".", ack=base, options=sack((1, 2)))
    p.deliver(".", ack=base, window=60000, options=sack((1, 2)))  # the same block again
    assert _reo_wnd_mult(p) == 1
    p.deliver(".", ack=seq_add(base, 2 * 1460), options=sack((0, 1)))  # below SEG.ACK: a real D-SACK
    assert _reo_wnd_mult(p) == 2


def test_a_first_block_inside_the_second_is_a_dsack():
    p, base, sack = _ten_segments_out()
    p.deliver(".", ack=base, options=sack((3, 4)))
    p.deliver(".", ack=base, options=sack((3, 4), (3, 5)))  # RFC 2883 §4.1.2: a duplicate above SND.UNA
    assert _reo_wnd_mult(p) == 2


def test_sack_blocks_are_taken_lowest_first():
    """Issue 22 defect 3: the newest block comes first on the wire (RFC 2018 §4). Taken in that
    order, a lower block newly SACKed by the same ACK would look reordered (RFC 8985 §6.2 step 3)
    and keep the reordering window open; sorted (as Linux's tcp_sacktag_write_queue), four
    segments SACKed above the hole with no reordering seen make the window zero (§6.2 step 4), so
    the hole is resent at once."""
    p, base, sack = _ten_segments_out()
    out = p.deliver(".", ack=base, options=sack((6, 8), (2, 4)))  # the ACK that SACKed 2-4 was lost
    assert [s.seq for s in out][:1] == [base]
    assert p.conn.timers.slot != "rack_reorder"
