"""The path of a flood's SYN (issue 21, item 9): a SYN at a listener in cookie mode is answered by
a SYN,ACK built straight from the header's fields when nobody traces, the same bytes the traced
path sends; drops make no text when nobody reads it."""

import ipaddress
import os
import random

import pytest

from tcpwave.core.config import Config
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.drivers.tun import GSO_NONE, GSO_TCPV4, NEEDS_CSUM, VNET_HDR, TunQueue
from tcpwave.stack import Stack
from tcpwave.wire.address import v4
from tcpwave.wire.checksum import checksum
from tcpwave.wire.ip import build_ip, parse_ip
from tcpwave.wire.options import NO_OPTIONS, Options
from tcpwave.wire.packet import parse_ipv4_tcp
from tcpwave.wire.seq import seq_add
from tcpwave.wire.tcp import ACK, SYN, Segment, build_tcp, parse_tcp

ME = ipaddress.ip_address("192.0.2.2")
NET = ipaddress.ip_network("192.0.2.0/24")


def _syn(src: int, sport: int, seq: int, options: Options = NO_OPTIONS) -> bytes:
    s = ipaddress.ip_address(src)
    return build_ip(s, ME, 6, build_tcp(Segment(sport, 80, seq, 0, SYN, 512, options=options), s, ME))


def _flood(n: int, seed: int = 7) -> list[bytes]:
    """SYNs as `hping3 --flood --rand-source -S` sends them (martian sources among them), and some with options."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        opts = Options(mss=rng.choice((536, 1400, 1460, 9000))) if i % 3 == 0 else Options()
        out.append(_syn(rng.getrandbits(32), rng.randrange(1, 65536), rng.getrandbits(32), opts))
    return out


def _server(traced: bool, offload: bool, **cfg) -> Stack:
    tracer = Tracer(ListSink()) if traced else Tracer()
    stack = Stack([ME], seed=11, tracer=tracer, networks=[NET], checksum_offload=offload,
                  config=Config(syncookies=2, **cfg))
    stack.listen(80, 0.0)
    return stack


@pytest.mark.parametrize("offload", [False, True])
def test_untraced_cookie_synacks_are_the_bytes_the_traced_path_sends(offload):
    packets = _flood(400)
    plain, traced = _server(False, offload), _server(True, offload)
    plain.receive_packets(packets, 5.0)
    traced.receive_packets(packets, 5.0)
    out = plain.packets_to_send()
    assert out == traced.packets_to_send()
    assert plain.counters == traced.counters
    assert plain.counters["syn_cookies_sent"] == len(out) and plain.counters["martian_source"] > 0
    assert len(out) + plain.counters["martian_source"] == len(packets)
    for packet in out:
        pkt = parse_ip(packet)
        seg = parse_tcp(pkt.payload) if offload else parse_tcp(pkt.payload, pkt.src, pkt.dst)  # (checks the sum)
        assert seg.flags == SYN | ACK and seg.options.mss == 1460 and pkt.src == ME
        if offload:  # the pseudo-header sum only, for the device to finish
            assert checksum(pkt.payload, 0) != 0


def test_an_untraced_cookie_synack_completes_the_handshake():
    stack = _server(False, False, timestamps=False)
    src = ipaddress.ip_address("198.51.100.7")
    stack.receive_packets([_syn(int(src), 40000, 1000, Options(mss=1400))], 1.0)
    [packet] = stack.packets_to_send()
    synack = parse_tcp(parse_ip(packet).payload, ME, src)
    assert synack.ack == 1001
    ack = Segment(40000, 80, 1001, seq_add(synack.seq, 1), ACK, 512, b"GET / HTTP/1.0\r\n\r\n")
    stack.receive_packets([build_ip(src, ME, 6, build_tcp(ack, src, ME))], 1.1)
    [listener] = stack.listeners()
    conn = listener.accept()
    assert conn is not None and conn.remote == (src, 40000) and conn.snd_mss == 1300
    assert stack.counters["syn_cookies_accepted"] == 1


def test_untraced_drops_and_cookies_make_no_address_text(monkeypatch):
    """Martian sources and SYN cookies are counted, and nothing turns an address into text (a flood's
    drops once formatted str(src) for a trace nobody had asked for)."""
    made = []
    real = ipaddress.IPv4Address.__str__
    monkeypatch.setattr(ipaddress.IPv4Address, "__str__", lambda self: made.append(1) or real(self))
    stack = _server(False, True)
    stack.receive_packets(_flood(300), 5.0)
    assert stack.counters["martian_source"] > 0 and stack.counters["syn_cookies_sent"] > 0
    assert made == []
    sink = ListSink()  # traced: the drop events still carry the address as text
    traced = Stack([ME], seed=11, tracer=Tracer(sink), networks=[NET], config=Config(syncookies=2))
    traced.listen(80, 0.0)
    traced.receive_packets(_flood(300), 5.0)
    drops = sink.of_type("drop")
    assert drops and all(isinstance(e["src"], str) and ipaddress.ip_address(e["src"]) for e in drops)


def test_interned_addresses_are_equal_and_hash_as_ipaddress_ones():
    rng = random.Random(3)
    for a in [0, 1, 0xFFFFFFFF, 0xC0000202] + [rng.getrandbits(32) for _ in range(200)]:
        ours, theirs = v4(a), ipaddress.IPv4Address(a)
        assert ours == theirs and hash(ours) == hash(theirs) and str(ours) == str(theirs)
        assert ours.packed == theirs.packed and int(ours) == a and {theirs: 1}[ours] == 1


def test_tun_writes_carry_the_virtio_header_each_packet_needs():
    """Headers for checksum-partial packets are made once per shape: each still says where the TCP
    checksum starts and how long the headers are, for IPv4 and IPv6, options or not."""
    r, w = os.pipe()
    try:
        queue = TunQueue(w, vnet=True)
        me6, peer6 = ipaddress.ip_address("2001:db8::2"), ipaddress.ip_address("2001:db8::7")
        peer = ipaddress.ip_address("198.51.100.7")
        cases = [(ME, peer, Options(mss=1460), 20, 24, 0), (ME, peer, Options(), 20, 20, 0),
                 (me6, peer6, Options(mss=1440), 40, 24, 0), (ME, peer, Options(mss=1460), 20, 24, 0),
                 (ME, peer, Options(ts=(1, 2)), 20, 32, 1448)]
        for src, dst, opts, ip_len, tcp_len, gso in cases:
            packet = build_ip(src, dst, 6, build_tcp(Segment(80, 40000, 1, 2, SYN | ACK, 512, options=opts), src, dst))
            queue.write(packet, gso, True)
            got = os.read(r, 65536)
            gso_type = GSO_TCPV4 if gso else GSO_NONE
            assert got == VNET_HDR.pack(NEEDS_CSUM, gso_type, ip_len + tcp_len, gso, ip_len, 16) + packet
        queue.write(packet, 0, False)
        assert os.read(r, 65536) == bytes(VNET_HDR.size) + packet
    finally:
        os.close(r)
        os.close(w)


def test_the_one_step_parser_checks_the_ip_header_sum_as_the_layered_one():
    """The IP header's checksum is summed from the unpacked fields: a packet passes exactly when
    checksum() over its 20 bytes says so, whatever the fields (the ±0 forms of the sum included)."""
    rng = random.Random(5)
    good = bytearray(_syn(0xC6336407, 40000, 1000))
    for i in range(600):
        pkt = bytearray(good)
        for at in rng.sample([1, 4, 5, 8, 10, 11], rng.randrange(1, 3)):  # TOS, ident, TTL, the sum itself
            pkt[at] = rng.getrandbits(8)
        if i % 3 == 0:  # a consistent header: the sum made right for the changed fields (0 or 0xFFFF)
            pkt[10:12] = bytes(2)
            pkt[10:12] = (checksum(bytes(pkt[:20])) or (0xFFFF if i % 2 else 0)).to_bytes(2, "big")
        assert (parse_ipv4_tcp(bytes(pkt), False) is None) == (checksum(bytes(pkt[:20])) != 0)
    src, dst, seg = parse_ipv4_tcp(bytes(good), False)
    assert seg.flags == SYN and seg.payload == b"" and int(src) == 0xC6336407 and dst == ME
