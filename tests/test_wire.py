"""Wire formats: checksum, options, TCP and IP parsing and building, malformed input."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tcpwave.wire.checksum import checksum, pseudo_header_sum
from tcpwave.wire.errors import MalformedPacket
from tcpwave.wire.ip import build_ip, parse_ip
from tcpwave.wire.options import Options, build_options, parse_options
from tcpwave.wire.tcp import ACK, PROTO_TCP, PSH, SYN, Segment, build_tcp, parse_tcp

V4 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
V6 = ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::2")


def reference_checksum(data: bytes) -> int:
    """RFC 1071 the slow, obvious way: 16-bit words with end-around carry."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=9000))
def test_checksum_matches_rfc1071_reference(data):
    assert checksum(data) == reference_checksum(data)


def test_checksum_edge_cases():
    assert checksum(b"") == 0xFFFF
    assert checksum(b"\xff\xff" * 40000) == reference_checksum(b"\xff\xff" * 40000)
    # RFC 1071's worked example: words 0001 f203 f4f5 f6f7 sum to ddf2 (checksum 220d)
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


options_strategy = st.builds(
    Options,
    mss=st.none() | st.integers(0, 0xFFFF),
    wscale=st.none() | st.integers(0, 14),
    sack_permitted=st.booleans(),
    sack=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=2).map(tuple),
    ts=st.none() | st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
)


@given(options_strategy)
def test_options_round_trip(opts):
    raw = build_options(opts)
    assert len(raw) % 4 == 0 and len(raw) <= 40
    assert parse_options(raw) == opts


def test_unknown_option_kinds_are_skipped():
    raw = bytes([2, 4, 5, 180]) + bytes([30, 6, 1, 2, 3, 4]) + bytes([1, 1]) + bytes([3, 3, 7, 0])
    opts = parse_options(raw)
    assert opts.mss == 1460 and opts.wscale == 7 and opts.unknown == (30,)


def test_eol_ends_option_parsing():
    assert parse_options(bytes([0, 2, 4, 5, 180])).mss is None


@pytest.mark.parametrize("raw, why", [
    (bytes([2, 0, 0, 0]), "length 0"),
    (bytes([2, 1, 0, 0]), "length 1"),
    (bytes([30, 9, 1, 1]), "overruns"),
    (bytes([2, 3, 5, 0]), "MSS with the wrong length"),
    (bytes([8, 6, 0, 0, 0, 0]), "timestamps with the wrong length"),
    (bytes([1, 1, 1, 2]), "kind without a length byte"),
    (bytes([5, 6, 0, 0, 0, 0]), "SACK that is not whole blocks"),
])
def test_broken_options_are_malformed(raw, why):
    with pytest.raises(MalformedPacket) as e:
        parse_options(raw)
    assert e.value.reason == "bad_option", why


@pytest.mark.parametrize("src, dst", [V4, V6])
def test_tcp_in_ip_round_trip(src, dst):
    seg = Segment(1234, 80, 2**32 - 3, 77, SYN | ACK | PSH, 4321, b"payload!",
                  Options(mss=1400, wscale=3, sack_permitted=True, ts=(9, 8)), 0)
    packet = build_ip(src, dst, 6, build_tcp(seg, src, dst))
    pkt = parse_ip(packet)
    assert (pkt.src, pkt.dst, pkt.proto) == (src, dst, 6)
    back = parse_tcp(pkt.payload, pkt.src, pkt.dst)
    assert (back.src_port, back.dst_port, back.seq, back.ack, back.flags, back.window) == (1234, 80, 2**32 - 3, 77,
                                                                                        SYN | ACK | PSH, 4321)
    assert bytes(back.payload) == b"payload!" and back.options == seg.options


@pytest.mark.parametrize("mutate, reason", [
    (lambda b: b[:30], "truncated"),
    (lambda b: b[:20] + bytes([b[20]]) + b[21:32] + bytes([0x40]) + b[33:], "bad_data_offset"),  # offset 16 < 20
    (lambda b: b[:20] + b[20:32] + bytes([0xF0]) + b[33:], "bad_data_offset"),  # offset 60 > segment
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "bad_checksum"),
    (lambda b: bytes([0x75]) + b[1:], "bad_ip_version"),
    (lambda b: b[:10] + bytes([b[10] ^ 0xFF]) + b[11:], "bad_ip_checksum"),
    (lambda b: b[:2] + (5000).to_bytes(2, "big") + b[4:], "truncated"),
    (lambda b: b[:2] + (10).to_bytes(2, "big") + b[4:], "bad_ip_length"),
])
def test_malformed_packets_raise_with_a_named_reason(mutate, reason):
    src, dst = V4
    good = build_ip(src, dst, 6, build_tcp(Segment(1, 2, 3, 4, ACK, 5, b"data"), src, dst))
    with pytest.raises(MalformedPacket) as e:
        pkt = parse_ip(mutate(good))
        parse_tcp(pkt.payload, pkt.src, pkt.dst)
    assert e.value.reason == reason


def test_tcp_header_shorter_than_20_bytes_is_truncated():
    src, dst = V4
    with pytest.raises(MalformedPacket) as e:
        pkt = parse_ip(build_ip(src, dst, 6, b"0123456789"))
        parse_tcp(pkt.payload, pkt.src, pkt.dst)
    assert e.value.reason == "truncated"


@given(st.binary(max_size=120))
def test_parsing_arbitrary_bytes_only_ever_raises_malformed_packet(data):
    try:
        pkt = parse_ip(data)
        parse_tcp(pkt.payload, pkt.src, pkt.dst)
    except MalformedPacket:
        pass


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.binary(max_size=3000), st.integers(0, 0xFFFF),
       st.sampled_from([None, (1, 2), (2**32 - 1, 0)]), st.booleans(), st.integers(0, 0xFFFF), st.booleans())
def test_one_step_ipv4_packets_are_the_bytes_the_layered_builders_make(sport, dport, seq, ack, flags, window,
                                                                      payload, urgent, ts, syn_opts, ident,
                                                                      partial):
    from tcpwave.wire.packet import build_ipv4_tcp

    opts = Options(mss=1460 if syn_opts else None, sack_permitted=syn_opts, wscale=7 if syn_opts else None, ts=ts)
    seg = Segment(sport, dport, seq, ack, flags, window, payload, opts, urgent)
    a, b = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("198.51.100.7")
    layered = build_ip(a, b, PROTO_TCP, build_tcp(seg, a, b, partial=partial), ident=ident)
    assert build_ipv4_tcp(seg, int(a), int(b), ident, partial) == layered


@given(st.binary(min_size=0, max_size=120), st.booleans())
def test_one_step_parsing_agrees_with_the_layered_parsers_or_leaves_the_packet_to_them(tail, trusted):
    from tcpwave.wire.packet import parse_ipv4_tcp

    a, b = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("198.51.100.7")
    good = build_ip(a, b, PROTO_TCP, build_tcp(Segment(1, 2, 3, 4, ACK, 5, b"data", Options(ts=(1, 2))), a, b))
    for data in (good, good[:20] + tail, good[:40] + tail, tail, good[:30] + tail + good[30:]):
        fast = parse_ipv4_tcp(data, trusted)
        if fast is None:
            continue
        pkt = parse_ip(data)  # whatever the one-step parser accepts, the layered ones accept alike
        seg = parse_tcp(pkt.payload) if trusted else parse_tcp(pkt.payload, pkt.src, pkt.dst)
        assert (fast[0], fast[1]) == (pkt.src, pkt.dst)
        assert (fast[2].seq, fast[2].ack, fast[2].flags, fast[2].options, bytes(fast[2].payload)) == \
            (seg.seq, seg.ack, seg.flags, seg.options, bytes(seg.payload))
    assert parse_ipv4_tcp(good, False) is not None


@given(st.binary(max_size=9000).map(lambda b: int.from_bytes(b, "big")))
def test_mod_ffff_is_the_remainder(x):
    from tcpwave.wire.checksum import mod_ffff

    assert mod_ffff(x) == x % 0xFFFF
    for edge in (0, 0xFFFF, 0xFFFF * 7, (1 << 512) - 1, 1 << 33000, (1 << 600000) - 1, 0xFFFF << 70000):
        assert mod_ffff(edge) == edge % 0xFFFF


@given(st.binary(max_size=3000), st.integers(0, 2**32 - 1), st.data())
def test_one_step_parsing_takes_every_good_checksum_and_no_bad_one(payload, seq, data):
    """The one-step parser checks the TCP checksum from the whole packet's words less the IP header's:
    any one bit flipped in the segment (header, options or data, odd lengths too) is refused, as the
    layered parser refuses it; the packet as built is taken, also with bytes after its total length."""
    from tcpwave.wire.packet import parse_ipv4_tcp

    a, b = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("198.51.100.7")
    good = build_ip(a, b, PROTO_TCP, build_tcp(Segment(1, 2, seq, 4, ACK, 5, payload, Options(ts=(1, 2))), a, b))
    fast = parse_ipv4_tcp(good, False)
    assert fast is not None and bytes(fast[2].payload) == payload and fast[2].seq == seq
    assert parse_ipv4_tcp(good + data.draw(st.binary(min_size=1, max_size=3)), False) is not None
    bit = data.draw(st.integers(20 * 8, len(good) * 8 - 1))
    bad = bytearray(good)
    bad[bit // 8] ^= 1 << (bit % 8)
    if bit // 8 in (32, 33):  # the data offset's byte: the header may now overrun, or take data as options
        return
    assert parse_ipv4_tcp(bytes(bad), False) is None
    with pytest.raises(MalformedPacket):
        parse_tcp(parse_ip(bytes(bad)).payload, a, b)
    if bit // 8 >= 52:  # in the data: trusted (the checksum is the kernel's to make), it is taken as it is
        assert bytes(parse_ipv4_tcp(bytes(bad), True)[2].payload) == bytes(bad[52:])


@pytest.mark.parametrize("opts", [
    bytes((1, 1, 8, 10)) + (7).to_bytes(4, "big") + (9).to_bytes(4, "big"),  # Linux's layout: read in place
    bytes((8, 10)) + (7).to_bytes(4, "big") + (9).to_bytes(4, "big") + bytes((1, 1)),  # FreeBSD's
    bytes((1, 1, 4, 2, 2, 4, 5, 180, 3, 3, 7, 0)),  # SACK-permitted, MSS, window scale, EOL
    bytes((1, 1, 8, 11)) + bytes(8),  # a timestamps option of the wrong length: malformed
    bytes((1, 1, 8, 10)) + bytes(7) + bytes((0,)),  # an all-zero TSval and TSecr
])
def test_one_step_parsing_of_twelve_option_bytes_is_the_layered_parsers(opts):
    from tcpwave.wire.packet import parse_ipv4_tcp

    a, b = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("198.51.100.7")
    tcp = bytearray(build_tcp(Segment(1, 2, 3, 4, ACK, 5, b"data"), a, b))
    tcp = tcp[:12] + bytes(((32 // 4) << 4,)) + tcp[13:16] + bytes(2) + tcp[18:20] + opts + tcp[20:]
    tcp[16:18] = checksum(bytes(tcp), pseudo_header_sum(a, b, PROTO_TCP, len(tcp))).to_bytes(2, "big")
    packet = build_ip(a, b, PROTO_TCP, bytes(tcp))
    fast = parse_ipv4_tcp(packet, False)
    try:
        layered = parse_tcp(parse_ip(packet).payload, a, b)
    except MalformedPacket:
        assert fast is None
        return
    assert fast is not None and fast[2].options == layered.options and bytes(fast[2].payload) == b"data"
