"""ICMP errors (RFC 1122 §4.2.3.9): path MTU discovery lowers the MSS and resends what was too big
(RFC 1191 / RFC 8201); an error is believed only if it quotes a sequence number in flight (RFC 5927)."""

from test_stack import ME, PEER, Wire

from tcpwave.core.config import Config
from tcpwave.wire.checksum import checksum
from tcpwave.wire.ip import build_ip
from tcpwave.wire.tcp import ACK, Segment, build_tcp


def frag_needed(sent: Segment, mtu: int, seq: int | None = None) -> bytes:
    """What a router sends back for our segment `sent` (ME -> PEER): type 3 code 4 with its MTU."""
    if seq is not None:
        sent = Segment(sent.src_port, sent.dst_port, seq, sent.ack, sent.flags, sent.window, sent.payload)
    quoted = build_ip(ME, PEER, 6, build_tcp(sent, ME, PEER))[:28]  # IP header + 8 bytes of TCP
    msg = bytearray((3, 4, 0, 0, 0, 0)) + mtu.to_bytes(2, "big") + quoted
    msg[2:4] = checksum(msg).to_bytes(2, "big")
    return build_ip(PEER, ME, 1, bytes(msg))


def _established_sending(w: Wire):
    listener = w.stack.listen(80, w.now)
    synack = w.handshake(40000)
    conn = listener.accept()
    conn.send(b"d" * 4380, w.now)
    segs = w.replies()
    assert [len(s.payload) for s in segs] == [1460, 1460, 1460]
    return conn, synack, segs


def test_fragmentation_needed_lowers_the_mss_and_resends_smaller():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False))
    conn, _, segs = _established_sending(w)
    w.stack.receive_packet(frag_needed(segs[0], 1000), w.now)
    out = w.replies()
    assert conn.snd_mss == 960  # 1000 - 40 bytes of headers
    assert out and all(len(s.payload) <= 960 for s in out) and out[0].seq == segs[0].seq
    assert "pmtu" in [e["type"] for e in w.sink]


def test_an_icmp_error_quoting_a_sequence_number_not_in_flight_is_ignored():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False))
    conn, _, segs = _established_sending(w)
    w.stack.receive_packet(frag_needed(segs[0], 600, seq=(segs[0].seq - 100_000) & 0xFFFFFFFF), w.now)
    assert w.replies() == [] and conn.snd_mss == 1460
    assert "icmp_out_of_window" in w.drops()


def test_an_icmp_error_for_no_connection_is_dropped_with_its_reason():
    w = Wire()
    seg = Segment(80, 40999, 5, 0, ACK, 65535)
    w.stack.receive_packet(frag_needed(seg, 1000), w.now)
    assert "icmp_no_connection" in w.drops()


def test_icmpv6_packet_too_big_lowers_the_mss():
    from test_stack import ME6, PEER6

    from tcpwave.wire.checksum import pseudo_header_sum
    from tcpwave.wire.options import Options
    from tcpwave.wire.tcp import SYN

    w = Wire(Config(timestamps=False, window_scaling=False, sack=False))
    listener = w.stack.listen(80, w.now)
    [synack] = w.send(Segment(40000, 80, 5000, 0, SYN, 65535, options=Options(mss=1440)), src=PEER6, dst=ME6)
    w.send(Segment(40000, 80, 5001, (synack.seq + 1) & 0xFFFFFFFF, ACK, 65535), src=PEER6, dst=ME6)
    conn = listener.accept()
    conn.send(b"v" * 2880, w.now)
    [first, _] = w.stack.packets_to_send()
    quoted = first[:48]  # the IPv6 header and 8 bytes of TCP
    msg = bytearray((2, 0, 0, 0)) + (1280).to_bytes(4, "big") + quoted
    msg[2:4] = checksum(msg, pseudo_header_sum(PEER6, ME6, 58, len(msg))).to_bytes(2, "big")
    w.stack.receive_packet(build_ip(PEER6, ME6, 58, bytes(msg)), w.now)
    assert conn.snd_mss == 1220  # 1280 - 60 bytes of headers


def icmp_about(sent: Segment, typ: int, code: int) -> bytes:
    """An ICMP error of `typ`/`code` from the path, quoting our segment `sent` (ME -> PEER)."""
    quoted = build_ip(ME, PEER, 6, build_tcp(sent, ME, PEER))[:28]
    msg = bytearray((typ, code, 0, 0, 0, 0, 0, 0)) + quoted
    msg[2:4] = checksum(msg).to_bytes(2, "big")
    return build_ip(PEER, ME, 1, bytes(msg))


def _connecting(w: Wire):
    conn = w.stack.connect(PEER, 80, w.now)
    [syn] = w.replies()
    return conn, syn


def test_host_unreachable_fails_a_connect_at_once_with_ehostunreach():
    import errno

    from tcpwave.core import events as ev
    from tcpwave.core.reasons import CloseReason
    from tcpwave.core.state import State

    w = Wire()
    conn, syn = _connecting(w)
    w.stack.receive_packet(icmp_about(syn, 3, 1), w.now)
    assert conn.state is State.CLOSED and w.stack.next_timer() is None
    assert (conn, ev.Closed(CloseReason.HOST_UNREACHABLE)) in w.stack.events()
    exc = conn.close_reason.exception("connect")
    assert type(exc) is OSError and exc.errno == errno.EHOSTUNREACH
    assert [e["errno"] for e in w.sink.of_type("icmp")] == ["EHOSTUNREACH"]


def test_port_unreachable_fails_a_connect_as_refused():
    w = Wire()
    conn, syn = _connecting(w)
    w.stack.receive_packet(icmp_about(syn, 3, 3), w.now)
    assert isinstance(conn.close_reason.exception("connect"), ConnectionRefusedError)


def test_an_unreachable_established_connection_times_out_with_the_icmp_errno():
    import errno

    from tcpwave.core.state import State

    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, data_retries=2))
    conn, _, segs = _established_sending(w)
    w.stack.receive_packet(icmp_about(segs[0], 3, 0), w.now)  # net unreachable: a soft error
    assert conn.state is State.ESTABLISHED and w.replies() == []
    while conn.state is not State.CLOSED:
        w.now = w.stack.next_timer()
        w.stack.handle_timer(w.now)
    assert conn.close_reason.errno == errno.ENETUNREACH  # not ETIMEDOUT: what Linux reports


def test_an_ack_that_gets_through_clears_the_soft_error():
    from tcpwave.core.reasons import CloseReason
    from tcpwave.core.state import State

    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, data_retries=2))
    conn, synack, segs = _established_sending(w)
    w.stack.receive_packet(icmp_about(segs[0], 3, 1), w.now)
    w.send(Segment(40000, 80, 5001, (segs[0].seq + 1460) & 0xFFFFFFFF, ACK, 65535))  # the path works again
    while conn.state is not State.CLOSED:
        w.now = w.stack.next_timer()
        w.stack.handle_timer(w.now)
    assert conn.close_reason is CloseReason.TIMED_OUT


def test_time_exceeded_is_parsed_as_an_error_too():
    import errno

    from tcpwave.wire.icmp import parse_error
    from tcpwave.wire.ip import parse_ip
    pkt = parse_ip(icmp_about(Segment(80, 40000, 7, 0, ACK, 100), 11, 0))
    err = parse_error(4, pkt.src, pkt.dst, pkt.payload)
    assert err is not None and err.kind == "time_exceeded" and err.errno == errno.EHOSTUNREACH
