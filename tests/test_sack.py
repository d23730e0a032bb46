"""The sender's SACK scoreboard (RFC 2018) and RFC 6675 recovery, plus the receiver's blocks."""

from helpers import expect_one

from tcpwave.core.config import Config
from tcpwave.core.sack import Scoreboard
from tcpwave.seq import MASK, seq_add
from tcpwave.wire.options import Options

MSS = 1000


def test_scoreboard_merges_and_counts_newly_sacked_bytes():
    sb = Scoreboard()
    una, nxt = MASK - 500, seq_add(MASK - 500, 10_000)  # across the 2**32 wrap
    assert sb.update([(seq_add(una, 2000), seq_add(una, 3000))], una, nxt) == 1000
    assert sb.update([(seq_add(una, 2500), seq_add(una, 4000))], una, nxt) == 1000  # half new
    assert sb.update([(seq_add(una, 4000), seq_add(una, 5000))], una, nxt) == 1000  # adjacent: merged
    assert sb.ranges() == [(2000, 5000)]


def test_scoreboard_ignores_dsack_and_blocks_beyond_snd_nxt():
    sb = Scoreboard()
    assert sb.update([(seq_add(100, -50), 100)], 100, 5000) == 0  # below SND.UNA: a D-SACK
    assert sb.update([(4000, 9000)], 100, 5000) == 0  # beyond what was sent
    assert not sb


def test_advance_rebases_and_keeps_sacked_data_until_cumulatively_acked():
    sb = Scoreboard()
    sb.update([(3000, 4000), (6000, 7000)], 0, 10_000)
    sb.advance(3500)
    assert sb.ranges() == [(0, 500), (2500, 3500)]
    sb.advance(4000)
    assert sb.ranges() == []


def test_isLost_by_bytes_or_by_three_ranges():
    sb = Scoreboard()
    sb.update([(5000, 7500)], 0, 10_000)  # 2500 SACKed bytes: more than 2 * MSS above 4999 and below
    assert sb.lost_below(MSS) == 5500  # bytes below 5500 have > 2000 SACKed above them
    sb = Scoreboard()
    sb.update([(2000, 2100), (3000, 3100), (4000, 4100)], 0, 10_000)  # three small ranges
    assert sb.lost_below(MSS) == 2000


def test_pipe_and_next_lost_follow_rfc_6675():
    sb = Scoreboard()
    sb.update([(1000, 2000), (3000, 6000)], 0, 8000)
    edge = sb.lost_below(MSS)  # 4000: bytes below have more than 2000 SACKed above
    assert edge == 4000
    # holes: [0,1000) lost, [2000,3000) lost, [6000,8000) not lost -> pipe 2000 before any resend
    assert sb.pipe(8000, edge, high_rxt=0) == 2000
    assert sb.next_lost(8000, edge, 0, MSS) == (0, 1000)
    assert sb.next_lost(8000, edge, 1000, MSS) == (2000, 3000)
    assert sb.pipe(8000, edge, high_rxt=3000) == 4000  # the two resent holes count again
    assert sb.next_lost(8000, edge, 3000, MSS) is None


SACK = Config(timestamps=False, window_scaling=False, delayed_ack=0)


def test_several_losses_in_one_window_are_resent_without_waiting_a_round_trip_each():
    from helpers import syn_sent

    p = syn_sent(SACK)
    p.peer_nxt = seq_add(p.peer_iss, 1)
    p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1), options=Options(mss=1460, sack_permitted=True))
    assert p.conn.sack_ok
    segs = p.call("send", b"s" * 14600)
    assert len(segs) == 10
    base = segs[0].seq
    # segments 0, 3 and 6 are lost; the receiver SACKs what arrived
    def sack(*ranges):
        return Options(sack=tuple((seq_add(base, a * 1460), seq_add(base, b * 1460)) for a, b in ranges))
    out = p.deliver(".", ack=base, options=sack((1, 3)))
    assert out == []  # 2 segments SACKed above the hole: not yet proof of loss
    out = p.deliver(".", ack=base, options=sack((4, 6), (1, 3)))
    assert [s.seq for s in out] == [base]  # IsLost(0) now: recovery before three duplicates
    out += p.deliver(".", ack=base, options=sack((7, 10), (4, 6), (1, 3)))
    holes = [base, seq_add(base, 3 * 1460), seq_add(base, 6 * 1460)]
    assert sorted(s.seq for s in out if s.seq in holes) == holes  # every hole within one round trip
    assert p.conn.ssthresh == 5 * 1460 and p.conn.cwnd == p.conn.ssthresh  # no inflation with SACK
    p.deliver(".", ack=p.our_nxt)
    assert p.conn.ssthresh == 5 * 1460  # one recovery, one reduction


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
