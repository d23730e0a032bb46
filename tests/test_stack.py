"""The stack: CLOSED-port RSTs, demultiplexing, listeners and backlog, ports, ICMP echo, bad input."""

import ipaddress

import pytest

from tcpwave.core import events as ev
from tcpwave.core.config import Config
from tcpwave.core.state import State
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.stack import PortInUse, Stack
from tcpwave.wire.icmp import build_echo_request
from tcpwave.wire.ip import build_ip, parse_ip
from tcpwave.wire.options import Options
from tcpwave.wire.seq import seq_add
from tcpwave.wire.tcp import ACK, FIN, RST, SYN, Segment, build_tcp, parse_tcp

ME, PEER = ipaddress.ip_address("192.0.2.2"), ipaddress.ip_address("192.0.2.1")
ME6, PEER6 = ipaddress.ip_address("2001:db8::2"), ipaddress.ip_address("2001:db8::1")
CFG = Config(timestamps=False, window_scaling=False, sack=False)


class Wire:
    """Feeds hand-made TCP segments into a Stack and parses what it answers."""

    def __init__(self, config=CFG):
        self.sink = ListSink()
        self.stack = Stack([ME, ME6], config=config, tracer=Tracer(self.sink), host="stack", seed=7)
        self.now = 0.0

    def send(self, seg: Segment, src=PEER, dst=ME) -> list[Segment]:
        self.stack.receive_packet(build_ip(src, dst, 6, build_tcp(seg, src, dst)), self.now)
        return self.replies()

    def replies(self) -> list[Segment]:
        out = []
        for raw in self.stack.packets_to_send():
            pkt = parse_ip(raw)
            out.append(parse_tcp(pkt.payload, pkt.src, pkt.dst))  # also verifies our checksum
        return out

    def drops(self) -> list[str]:
        return [e["reason"] for e in self.sink.of_type("drop")]

    def handshake(self, sport=40000, dport=80, iss=5000) -> Segment:
        synack = self.send(Segment(sport, dport, iss, 0, SYN, 65535, options=Options(mss=1460)))[0]
        assert synack.flags == SYN | ACK
        assert self.send(Segment(sport, dport, iss + 1, seq_add(synack.seq, 1), ACK, 65535)) == []
        return synack


def test_closed_port_answers_syn_with_rst_ack():
    w = Wire()
    [rst] = w.send(Segment(40000, 81, 1000, 0, SYN, 65535))
    assert rst.flags == RST | ACK and rst.seq == 0 and rst.ack == 1001
    assert (rst.src_port, rst.dst_port) == (81, 40000)
    assert "no_socket" in w.drops()


def test_closed_port_answers_ack_with_rst_from_the_ack_field():
    w = Wire()
    [rst] = w.send(Segment(40000, 81, 1000, 424242, ACK, 65535, b"data"))
    assert rst.flags == RST and rst.seq == 424242


def test_closed_port_never_answers_rst():
    w = Wire()
    assert w.send(Segment(40000, 81, 1000, 0, RST, 0)) == []


def test_closed_port_answers_over_ipv6_too():
    w = Wire()
    [rst] = w.send(Segment(40000, 81, 1000, 0, SYN, 65535), src=PEER6, dst=ME6)
    assert rst.flags == RST | ACK and rst.ack == 1001


def test_listener_accepts_after_handshake_and_demuxes_by_four_tuple():
    w = Wire()
    listener = w.stack.listen(80, w.now)
    assert listener.accept() is None
    w.handshake(40000)
    w.handshake(40001)
    a, b = listener.accept(), listener.accept()
    assert {a.remote[1], b.remote[1]} == {40000, 40001}
    assert listener.accept() is None
    w.send(Segment(40001, 80, 5001, seq_add(b.iss if b.remote[1] == 40001 else a.iss, 1), ACK, 65535, b"to b"))
    target = a if a.remote[1] == 40001 else b
    assert target.receive(now=w.now) == b"to b"


def test_backlog_bounds_unaccepted_connections_as_linux():
    """listen(backlog) bounds the accept queue; half-open connections have their own queue."""
    w = Wire()
    w.stack.listen(80, w.now, backlog=2)
    w.handshake(40000)
    w.handshake(40001)
    assert w.send(Segment(40002, 80, 1, 0, SYN, 65535)) == []  # the accept queue is full
    assert w.drops().count("backlog_full") == 1


def test_the_syn_queue_is_bounded_by_max_syn_backlog():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, max_syn_backlog=2, syncookies=0))
    w.stack.listen(80, w.now)
    assert w.send(Segment(40000, 80, 1, 0, SYN, 65535))
    assert w.send(Segment(40001, 80, 1, 0, SYN, 65535))
    assert w.send(Segment(40002, 80, 1, 0, SYN, 65535)) == []  # no SYN cookies: dropped
    assert w.drops().count("syn_queue_full") == 1


def test_passive_rst_in_syn_rcvd_frees_the_slot_and_listener_stays():
    w = Wire()
    listener = w.stack.listen(80, w.now, backlog=1)
    [synack] = w.send(Segment(40000, 80, 100, 0, SYN, 65535))
    assert w.send(Segment(40000, 80, 101, 0, RST, 0)) == []
    assert w.stack.connections() == []
    w.handshake(40001)
    assert listener.accept() is not None


def test_ephemeral_ports_are_distinct_and_in_range():
    w = Wire()
    conns = [w.stack.connect(PEER, 80, w.now) for _ in range(50)]
    ports = {c.local[1] for c in conns}
    assert len(ports) == 50 and all(49152 <= p <= 65535 for p in ports)


def test_listening_twice_on_a_port_is_an_error():
    w = Wire()
    w.stack.listen(80, w.now)
    with pytest.raises(PortInUse):
        w.stack.listen(80, w.now)


def test_bad_checksum_changes_nothing():
    w = Wire()
    w.stack.listen(80, w.now)
    raw = bytearray(build_ip(PEER, ME, 6, build_tcp(Segment(40000, 80, 1, 0, SYN, 65535), PEER, ME)))
    raw[-3] ^= 0x10
    w.stack.receive_packet(bytes(raw), w.now)
    assert w.stack.packets_to_send() == [] and w.stack.connections() == []
    assert w.drops() == ["bad_checksum"]


def test_broken_options_change_nothing():
    w = Wire()
    w.stack.listen(80, w.now)
    tcp = bytearray(build_tcp(Segment(40000, 80, 1, 0, SYN, 65535, options=Options(mss=1460)), None, None))
    tcp[21] = 0  # the MSS option's length byte: 0 is never valid
    from tcpwave.wire.checksum import checksum, pseudo_header_sum

    tcp[16:18] = checksum(bytes(tcp), pseudo_header_sum(PEER, ME, 6, len(tcp))).to_bytes(2, "big")
    w.stack.receive_packet(build_ip(PEER, ME, 6, bytes(tcp)), w.now)
    assert w.stack.packets_to_send() == [] and w.stack.connections() == []
    assert w.drops() == ["bad_option"]


@pytest.mark.parametrize("packet, reason", [
    (b"", "truncated"),
    (b"\x45\x00", "truncated"),
    (b"\x10" * 40, "bad_ip_version"),
    (build_ip(PEER, ipaddress.ip_address("198.51.100.9"), 6, b"x" * 20), "not_our_address"),
    (build_ip(PEER, ME, 17, b"udp?"), "unknown_protocol"),
])
def test_garbage_is_dropped_with_a_reason(packet, reason):
    w = Wire()
    w.stack.receive_packet(packet, w.now)
    assert w.drops() == [reason] and w.stack.packets_to_send() == []


@pytest.mark.parametrize("src, dst", [(PEER, ME), (PEER6, ME6)])
def test_icmp_echo_is_answered(src, dst):
    w = Wire()
    proto = 1 if src.version == 4 else 58
    w.stack.receive_packet(build_ip(src, dst, proto, build_echo_request(src.version, src, dst, 7, 1, b"ping")), 0.0)
    [raw] = w.stack.packets_to_send()
    pkt = parse_ip(raw)
    assert (pkt.src, pkt.dst, pkt.proto) == (dst, src, proto)
    from tcpwave.wire.checksum import checksum, pseudo_header_sum

    assert pkt.payload[0] == (0 if src.version == 4 else 129)
    partial = 0 if src.version == 4 else pseudo_header_sum(dst, src, 58, len(pkt.payload))
    assert checksum(pkt.payload, partial) == 0
    assert bytes(pkt.payload[4:]) == (7).to_bytes(2, "big") + (1).to_bytes(2, "big") + b"ping"


def _active_close_to_time_wait(w: Wire, port=40000):
    listener = w.stack.listen(80, w.now)
    synack = w.handshake(port)
    conn = listener.accept()
    conn.close(w.now)
    [fin] = w.replies()
    assert fin.flags & FIN
    w.send(Segment(port, 80, 5001, seq_add(fin.seq, 1), FIN | ACK, 65535))
    assert conn.state is State.TIME_WAIT
    return conn, synack


def test_time_wait_frees_the_four_tuple_after_two_msl():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, msl=5.0))
    conn, _ = _active_close_to_time_wait(w)
    assert w.stack.next_timer() == 10.0
    w.stack.handle_timer(10.0)
    assert conn.state is State.CLOSED and w.stack.connections() == []


def test_new_syn_with_higher_seq_reopens_from_time_wait():
    w = Wire()
    old, synack = _active_close_to_time_wait(w)
    w.now = 1.0
    [new_synack] = w.send(Segment(40000, 80, 900_000, 0, SYN, 65535))
    assert new_synack.flags == SYN | ACK and new_synack.ack == 900_001
    assert old.state is State.CLOSED
    assert [e for e in w.sink.of_type("state") if e["to"] == "CLOSED"][-1]["why"] == "new SYN reopens the 4-tuple"


def test_old_syn_in_time_wait_gets_an_ack_not_a_new_connection():
    w = Wire()
    old, _ = _active_close_to_time_wait(w)
    [reply] = w.send(Segment(40000, 80, 10, 0, SYN, 65535))  # below RCV.NXT: an old duplicate
    assert reply.flags == ACK
    assert old.state is State.TIME_WAIT


def test_connect_events_reach_the_application():
    w = Wire()
    conn = w.stack.connect(PEER, 80, w.now)
    [syn] = w.replies()
    w.send(Segment(80, conn.local[1], 777, seq_add(syn.seq, 1), SYN | ACK, 65535), src=PEER, dst=ME)
    assert (conn, ev.Connected()) in w.stack.events()


def test_unaccepted_connection_that_times_out_tells_the_application_nothing():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, synack_retries=1))
    w.stack.listen(80, w.now)
    w.send(Segment(40000, 80, 1, 0, SYN, 65535))
    w.now = 100.0
    w.stack.handle_timer(1.0)
    w.stack.handle_timer(w.now)
    assert w.stack.connections() == []
    assert w.stack.events() == []


def test_timers_of_many_connections_fire_in_deadline_order():
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, msl=1.0))
    conns = []
    for i in range(20):
        w.now = i * 0.1
        conns.append(w.stack.connect(PEER, 80 + i, w.now))  # SYNs: retransmit at now + 1 s
    w.replies()
    assert w.stack.next_timer() == 1.0
    conns[0].abort(w.now)  # its timer is gone: the next deadline is the second connection's
    assert w.stack.next_timer() == 1.1
    w.stack.handle_timer(1.55)
    resent = [s.dst_port for s in w.replies()]
    assert resent == [81, 82, 83, 84, 85]  # each due SYN retransmitted once, in deadline order
    assert w.stack.next_timer() == 1.6


def test_syn_fin_to_a_listener_is_dropped_unless_drop_synfin_is_off():
    """As Linux (listen-syn-fin-dropped.pkt): SYN+FIN draws nothing, with a named reason; drop_synfin=False
    (FreeBSD's net.inet.tcp.drop_synfin=0) answers the SYN."""
    w = Wire()
    w.stack.listen(80, w.now)
    assert w.send(Segment(40000, 80, 1, 0, SYN | FIN, 65535)) == []
    assert w.drops() == ["syn_fin"]
    w = Wire(Config(timestamps=False, window_scaling=False, sack=False, drop_synfin=False))
    w.stack.listen(80, w.now)
    (answer,) = w.send(Segment(40000, 80, 1, 0, SYN | FIN, 65535))
    assert answer.flags == SYN | ACK and answer.ack == 2
