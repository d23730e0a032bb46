"""Checksum offload and TSO in the stack (the TUN device's side is covered by the interop tests)."""

import ipaddress

from tcpwave.core.config import Config
from tcpwave.stack import Stack
from tcpwave.wire.checksum import checksum
from tcpwave.wire.ip import build_ip, parse_ip
from tcpwave.wire.options import Options
from tcpwave.wire.seq import seq_add
from tcpwave.wire.tcp import ACK, SYN, Segment, build_tcp, parse_tcp

A, B = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
A6, B6 = ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::2")


def test_partial_checksum_is_what_the_kernel_completes_into_the_full_one():
    for src, dst in ((A, B), (A6, B6)):
        seg = Segment(1000, 80, 12345, 678, ACK, 500, b"payload of odd length", Options(ts=(1, 2)))
        full = build_tcp(seg, src, dst)
        part = build_tcp(seg, src, dst, partial=True)
        # the device sums the segment from csum_start with the partial value in place, and stores
        # the complement: that must be the checksum we would have computed ourselves
        assert checksum(part) == int.from_bytes(full[16:18], "big")
        assert full[:16] == part[:16] and full[18:] == part[18:]


def _established_server(**stack_kw):
    stack = Stack([B], config=Config(timestamps=False, window_scaling=True, sack=False), seed=1, **stack_kw)
    listener = stack.listen(80, 0.0)
    syn = Segment(40000, 80, 100, 0, SYN, 65535, options=Options(mss=1460, wscale=7))
    stack.receive_packet(build_ip(A, B, 6, build_tcp(syn, A, B)), 0.0)
    synack = parse_tcp(parse_ip(stack.packets_to_send()[0]).payload)
    stack.receive_packet(build_ip(A, B, 6, build_tcp(Segment(40000, 80, 101, seq_add(synack.seq, 1), ACK, 65535),
                                                    A, B)), 0.0)
    return stack, listener.accept(), seq_add(synack.seq, 1)


def test_tso_segments_carry_the_mss_to_cut_at_and_partial_checksums():
    stack, conn, _ = _established_server(checksum_offload=True, segment_max=65000)
    conn.send(b"t" * 100_000, 0.0)
    out = stack.packets_to_send_offload()
    sizes = [len(parse_tcp(parse_ip(p).payload).payload) for p, _, _ in out]
    assert max(sizes) > 1460 and sum(sizes) == min(100_000, 14600)  # the initial window, in one super-segment
    for _, gso, partial in out:
        assert partial and gso == 1460  # cut at the connection's MSS by the device


def test_without_offload_segments_stay_within_the_mss():
    stack, conn, _ = _established_server()
    conn.send(b"t" * 100_000, 0.0)
    out = stack.packets_to_send_offload()
    assert all(gso == 0 and not partial for _, gso, partial in out)
    assert max(len(parse_tcp(parse_ip(p).payload).payload) for p, _, _ in out) == 1460


def test_trusted_packets_skip_checksum_verification_and_only_they():
    stack, conn, our_next = _established_server()
    seg = Segment(40000, 80, 101, our_next, ACK, 65535, b"data")
    bad = bytearray(build_ip(A, B, 6, build_tcp(seg, A, B)))
    bad[-8] ^= 0xFF  # a wrong TCP checksum, as a partial one looks
    stack.receive_packet(bytes(bad), 0.0)
    assert conn.readable == 0 and stack.counters.get("bad_checksum") == 1
    stack.receive_packets([bytes(bad)], 0.0, trusted=[True])  # the local kernel made it: accepted
    assert conn.readable == 4
