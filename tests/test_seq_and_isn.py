"""Sequence arithmetic modulo 2**32, ISN selection (RFC 6528), and data across the wrap."""

import ipaddress

from helpers import PLAIN, FixedIsn, Peer, expect_ack, expect_one
from hypothesis import given
from hypothesis import strategies as st

from tcpwave.core.isn import IsnGenerator
from tcpwave.wire.seq import MASK, seq_add, seq_diff, seq_ge, seq_gt, seq_in, seq_le, seq_lt

u32 = st.integers(0, MASK)
small = st.integers(-(2**31) + 1, 2**31 - 1)


@given(u32, small)
def test_seq_diff_inverts_seq_add(a, n):
    assert seq_diff(seq_add(a, n), a) == n


@given(u32, st.integers(1, 2**31 - 1))
def test_ordering_holds_across_the_wrap(a, n):
    b = seq_add(a, n)
    assert seq_lt(a, b) and seq_le(a, b) and seq_gt(b, a) and seq_ge(b, a)
    assert not seq_lt(b, a) and not seq_lt(a, a) and seq_le(a, a)


def test_window_membership_across_the_wrap():
    lo = MASK - 10
    hi = seq_add(lo, 100)
    assert seq_in(lo, MASK, hi) and seq_in(lo, 0, hi) and seq_in(lo, 50, hi)
    assert not seq_in(lo, hi, hi) and not seq_in(lo, lo - 1, hi)
    assert not seq_in(5, 5, 5)


def test_isn_differs_per_connection_and_grows_with_the_clock():
    gen = IsnGenerator(b"k" * 32)
    h1, h2 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
    a = gen.iss(0.0, h1, 1000, h2, 80)
    assert a == gen.iss(0.0, h1, 1000, h2, 80)  # same input, same answer
    assert a != gen.iss(0.0, h1, 1001, h2, 80)
    assert seq_diff(gen.iss(1.0, h1, 1000, h2, 80), a) == 250_000  # 4 us ticks
    assert a != IsnGenerator(b"x" * 32).iss(0.0, h1, 1000, h2, 80)  # keyed


def test_timestamp_offsets_are_per_connection_and_keyed_and_do_not_tick():
    gen = IsnGenerator(b"k" * 32)
    h1, h2 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
    _, off = gen.start(0.0, h1, 1000, h2, 80)
    assert gen.start(5.0, h1, 1000, h2, 80)[1] == off  # the clock is the timestamp's own, not the offset's
    offsets = {gen.start(0.0, h1, port, h2, 80)[1] for port in range(1000, 1100)}
    assert len(offsets) == 100 and off in offsets
    assert IsnGenerator(b"x" * 32).start(0.0, h1, 1000, h2, 80)[1] != off


def test_our_isn_and_data_across_the_wrap():
    p = Peer(PLAIN, peer_iss=MASK - 2, isn=FixedIsn(MASK - 1))
    p.call("connect")
    assert p.iss == MASK - 1
    p.peer_nxt = seq_add(p.peer_iss, 1)
    out = p.deliver("S.", seq=p.peer_iss, ack=seq_add(p.iss, 1))
    expect_ack(p, out)
    out = p.call("send", b"0123456789")
    seg = expect_one(out, "P.", seq=MASK, length=10)  # starts at 2**32-1, ends past zero
    assert p.deliver(".", ack=seq_add(seg.seq, 10)) == []
    assert p.conn.next_timer() is None  # everything acknowledged across the wrap
    out = p.deliver("P.", payload=b"abcdef")  # peer data: 2**32-2 up to 4, across zero
    p.peer_nxt = seq_add(p.peer_nxt, 6)
    assert p.peer_nxt == 4
    expect_ack(p, out)
    p.call("receive")
    assert p.received == b"abcdef"
