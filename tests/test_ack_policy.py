"""ACK policy (RFC 9293 §3.8.6.3, RFC 5681 §4.2): delayed ACKs, every second full segment,
immediate ACKs for out-of-order data and filled gaps, in a batch of segments as one by one."""

import pytest
from helpers import established, expect_one

from tcpwave.core.config import Config
from tcpwave.stack import Stack
from tcpwave.wire.ip import build_ip, parse_ip
from tcpwave.wire.options import Options
from tcpwave.wire.seq import seq_add
from tcpwave.wire.tcp import ACK, SYN, Segment, build_tcp, parse_tcp

DELAYED = Config(timestamps=False, window_scaling=False, sack=False, quickack=0)  # textbook: 40 ms delay from the start


def _data(p, n: int, offset: int = 0):
    return p.deliver("P.", seq=seq_add(p.peer_nxt, offset), payload=b"a" * n)


def test_one_segment_is_acked_when_the_delay_expires():
    p = established(DELAYED)
    assert _data(p, 100) == []
    p.peer_nxt = seq_add(p.peer_nxt, 100)
    assert p.conn.next_timer() == pytest.approx(0.040)
    expect_one(p.fire_next_timer(), ".", ack=p.peer_nxt)


def test_delay_is_configurable():
    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0.2, quickack=0))
    _data(p, 100)
    assert p.conn.next_timer() == pytest.approx(0.2)


@pytest.mark.parametrize("bad", [0.5, 1.0, -0.1])
def test_delay_of_half_a_second_or_more_is_refused(bad):
    with pytest.raises(ValueError, match="delayed_ack"):
        Config(delayed_ack=bad)


def test_every_second_full_sized_segment_is_acked_at_once():
    p = established(DELAYED)
    assert _data(p, 1460) == []
    p.peer_nxt = seq_add(p.peer_nxt, 1460)
    out = _data(p, 1460)
    p.peer_nxt = seq_add(p.peer_nxt, 1460)
    expect_one(out, ".", ack=p.peer_nxt)
    assert p.conn.next_timer() is None  # nothing owed any more


def test_out_of_order_data_is_acked_at_once_and_so_is_the_gap_filling():
    p = established(DELAYED)
    start = p.peer_nxt
    expect_one(_data(p, 100, offset=100), ".", ack=start)  # a hole: duplicate ACK at once
    out = _data(p, 100)
    expect_one(out, ".", ack=seq_add(start, 200))  # the hole filled: ACK at once


def test_a_reply_carries_the_delayed_ack():
    p = established(DELAYED)
    _data(p, 10)
    p.peer_nxt = seq_add(p.peer_nxt, 10)
    out = p.call("send", b"reply")
    seg = expect_one(out, "P.", ack=p.peer_nxt)  # the data segment acknowledges: no separate ACK
    assert seg.payload == b"reply"
    assert set(p.conn.timers.armed()) == {"retransmit"}  # only the retransmission timer is left


def test_a_fin_in_established_is_acked_after_the_delay_as_linux():
    """Linux enters ping-pong on a FIN: once data has flowed its ACK waits for the delayed-ACK timer
    (checked against the kernel: 41 ms), so an application that closes at once sends one FIN,ACK."""
    p = established(DELAYED)
    _data(p, 10)
    p.peer_nxt = seq_add(p.peer_nxt, 10)
    expect_one(p.fire_next_timer(), ".", ack=p.peer_nxt)
    assert p.deliver("F.") == []
    assert p.conn.state.value == "CLOSE_WAIT" and p.conn.next_timer() == pytest.approx(p.now + 0.040)
    expect_one(p.fire_next_timer(), ".", ack=seq_add(p.peer_nxt, 1))


def test_a_fin_before_any_data_is_acked_within_a_tick_as_linux():
    """With no data yet Linux's ACK delay (ATO) is 0: the ACK goes at the next clock tick
    (`packetdrill --kernel` on close-passive-four-way.pkt: 1-8 ms)."""
    p = established(Config(timestamps=False, window_scaling=False, sack=False))
    assert p.deliver("F.") == []
    assert p.conn.next_timer() == pytest.approx(p.now + 0.001)
    expect_one(p.fire_next_timer(), ".", ack=seq_add(p.peer_nxt, 1))


LINUX = Config(timestamps=False, window_scaling=False, sack=False)  # quickack=16: Linux's model


def test_the_first_data_is_acked_at_once_quick_ack_mode_as_linux():
    p = established(LINUX)
    for _ in range(3):
        expect_one(_data(p, 100), ".", ack=seq_add(p.peer_nxt, 100))
        p.peer_nxt = seq_add(p.peer_nxt, 100)


def test_quick_acks_run_out_after_half_the_window_in_segments():
    p = established(Config(timestamps=False, window_scaling=False, sack=False, recv_buffer=8000))
    quick = 0
    for _ in range(10):
        out = _data(p, 1000)
        p.peer_nxt = seq_add(p.peer_nxt, 1000)
        if not out:
            break
        quick += 1
        p.call("receive", 5000)  # keep the window open
    assert quick == 4  # 8000 bytes of window / (2 x 1000-byte segments)


def test_a_prompt_reply_makes_ping_pong_and_acks_wait_for_the_next_reply():
    p = established(LINUX)
    expect_one(_data(p, 10), ".")  # quick ACK
    p.peer_nxt = seq_add(p.peer_nxt, 10)
    p.call("send", b"reply")  # within the ACK delay of the data: an interactive exchange
    assert _data(p, 10) == []  # now the ACK waits...
    p.peer_nxt = seq_add(p.peer_nxt, 10)
    seg = expect_one(p.call("send", b"again"), "P.", ack=p.peer_nxt)  # ...and rides on the reply
    assert seg.payload == b"again"


def test_a_missed_reply_leaves_ping_pong_and_the_next_data_is_acked_at_once():
    p = established(LINUX)
    _data(p, 10)
    p.peer_nxt = seq_add(p.peer_nxt, 10)
    p.call("send", b"reply")
    assert _data(p, 10) == []
    p.peer_nxt = seq_add(p.peer_nxt, 10)
    expect_one(p.fire_next_timer(), ".", ack=p.peer_nxt)  # the delayed ACK: no reply came
    expect_one(_data(p, 10), ".", ack=seq_add(p.peer_nxt, 10))  # quick ACKs again


def test_a_close_within_the_delay_sends_the_fin_on_the_ack():
    p = established(DELAYED)
    p.deliver("F.")
    p.conn.close(p.now)
    expect_one(p.conn.segments_to_send(), "F.", ack=seq_add(p.peer_nxt, 1))


def test_a_fin_without_delayed_acks_is_acked_at_once():
    p = established(Config(timestamps=False, window_scaling=False, sack=False, delayed_ack=0))
    expect_one(p.deliver("F."), ".", ack=seq_add(p.peer_nxt, 1))


def test_a_fin_in_fin_wait_2_is_acked_at_once():
    p = established(DELAYED)
    p.conn.close(p.now)
    fin = p.conn.segments_to_send()[0]
    p.deliver(".", ack=seq_add(fin.seq, 1))
    assert p.conn.state.value == "FIN_WAIT_2"
    expect_one(p.deliver("F.", ack=seq_add(fin.seq, 1)), ".", ack=seq_add(p.peer_nxt, 1))


def _listening_stack(config: Config, sack: bool = False):
    """A stack with one accepted connection from 192.0.2.1:40000 (ISN 100); returns (stack, packet,
    our ISN + 1), packet() making an IPv4 packet of a segment from the peer."""
    import ipaddress

    me, peer = ipaddress.ip_address("192.0.2.2"), ipaddress.ip_address("192.0.2.1")
    stack = Stack([me], config=config, seed=3)
    listener = stack.listen(80, 0.0)

    def packet(seg):
        return build_ip(peer, me, 6, build_tcp(seg, peer, me))

    stack.receive_packet(packet(Segment(40000, 80, 100, 0, SYN, 65535,
                                        options=Options(mss=1460, sack_permitted=sack))), 0.0)
    synack = parse_tcp(parse_ip(stack.packets_to_send()[0]).payload)
    our = seq_add(synack.seq, 1)
    stack.receive_packet(packet(Segment(40000, 80, 101, our, ACK, 65535)), 0.0)
    assert listener.accept() is not None
    return stack, packet, our


def _acks(stack) -> list[int]:
    return [parse_tcp(parse_ip(raw).payload).ack for raw in stack.packets_to_send()]


def test_a_batch_is_acked_as_the_same_segments_one_by_one():
    """RFC 5681 §4.2 (and Linux without GRO): an ACK for at least every second full-sized segment, in a
    batch read from the device too. One stretch ACK per batch (about six segments per ACK on a TUN at
    200 Mbit/s) left a lossy Linux sender's small window hanging on single ACKs: each one lost cost it
    a timeout (bench --lossy, 3%: more RTOs into tcpwave than into Linux)."""
    seen = []
    for batched in (False, True):
        stack, packet, our = _listening_stack(DELAYED)
        segs = [packet(Segment(40000, 80, 101 + i * 1460, our, ACK, 65535, b"b" * 1460)) for i in range(7)]
        if batched:
            stack.receive_packets(segs, 0.01)
            acks = _acks(stack)
        else:
            acks = []
            for raw in segs:
                stack.receive_packet(raw, 0.01)
                acks += _acks(stack)
        seen.append(acks)
    assert seen[1] == seen[0] == [101 + 2 * 1460, 101 + 4 * 1460, 101 + 6 * 1460]  # the 7th waits


def test_out_of_order_segments_in_a_batch_are_each_acked_at_once():
    """RFC 5681 §4.2: an out-of-order segment draws an immediate ACK. In a batch (a TUN read of many
    packets) each one still does, with the SACK it adds: coalesced into one ACK per batch, a lossy
    Linux sender saw one ACK per ~7 data segments and went into timeouts (bench --lossy, 3% loss:
    0.30x Linux as receiver)."""
    stack, packet, our = _listening_stack(Config(timestamps=False, window_scaling=False), sack=True)
    # the first of six segments is lost: the other five arrive in one batch
    batch = [packet(Segment(40000, 80, 101 + i * 1460, our, ACK, 65535, b"b" * 1460)) for i in range(1, 6)]
    stack.receive_packets(batch, 0.01)
    acks = [parse_tcp(parse_ip(raw).payload) for raw in stack.packets_to_send()]
    assert [a.ack for a in acks] == [101] * 5  # one duplicate ACK per out-of-order segment
    assert [a.options.sack for a in acks] == [((101 + 1460, 101 + (i + 2) * 1460),) for i in range(5)]
    # the hole filled with more in-order data behind it in the same batch: the filled hole is ACKed at
    # once (RFC 5681 §4.2; Linux's ICSK_ACK_NOW), not folded into an ACK of what follows it
    batch = [packet(Segment(40000, 80, 101, our, ACK, 65535, b"b" * 1460)),
             packet(Segment(40000, 80, 101 + 6 * 1460, our, ACK, 65535, b"b" * 1460)),
             packet(Segment(40000, 80, 101 + 7 * 1460, our, ACK, 65535, b"b" * 1460))]
    stack.receive_packets(batch, 0.02)
    acks = [parse_tcp(parse_ip(raw).payload) for raw in stack.packets_to_send()]
    assert acks[0].ack == 101 + 6 * 1460 and acks[-1].ack == 101 + 8 * 1460
    assert all(a.options.sack == () for a in acks)
