"""Martian addresses (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7, RFC 4291): a segment from an address no
sender can have is dropped with a named reason, before any state or reply; a connection to a
broadcast, multicast or reserved address is refused."""

import errno
import ipaddress

import pytest

from tcpwave.core.config import Config
from tcpwave.core.trace import ListSink, Tracer
from tcpwave.stack import Stack, Unreachable
from tcpwave.wire.icmp import PROTO_ICMP, build_echo_request
from tcpwave.wire.ip import build_ip, parse_ip
from tcpwave.wire.tcp import ACK, SYN, Segment, build_tcp

ME = ipaddress.ip_address("192.0.2.2")
ME6 = ipaddress.ip_address("2001:db8::2")
MARTIANS = [("0.0.0.0", "zero network"), ("0.1.2.3", "zero network"), ("127.0.0.1", "loopback"),
            ("224.0.0.1", "multicast"), ("239.1.1.1", "multicast"), ("255.255.255.255", "limited broadcast"),
            ("240.0.0.1", "class E"), ("192.0.2.255", "subnet broadcast"),
            ("ff02::1", "multicast"), ("::1", "loopback"), ("::", "unspecified")]


def _stack() -> tuple[Stack, ListSink]:
    sink = ListSink()
    stack = Stack([ME, ME6], config=Config(timestamps=False), tracer=Tracer(sink), seed=3,
                  networks=[ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/64")])
    stack.listen(80, 0.0)
    return stack, sink


def _syn(src: str, port: int = 80, flags: int = SYN) -> bytes:
    s = ipaddress.ip_address(src)
    dst = ME if s.version == 4 else ME6
    return build_ip(s, dst, 6, build_tcp(Segment(40000, port, 1000, 0, flags, 65535), s, dst))


@pytest.mark.parametrize("src,why", MARTIANS)
def test_a_syn_from_a_martian_source_gets_nothing_and_makes_nothing(src, why):
    stack, sink = _stack()
    for port in (80, 81):  # the listener and a closed port (no RST either)
        stack.receive_packet(_syn(src, port), 0.0)
    stack.receive_packet(_syn(src, 80, ACK), 0.0)  # nor a SYN cookie's ACK
    assert stack.packets_to_send() == []
    assert stack.connections() == []
    drops = [(e["reason"], e["why"], e["src"]) for e in sink.of_type("drop")]
    assert drops == [("martian_source", why, str(ipaddress.ip_address(src)))] * 3
    assert stack.counters["martian_source"] == 3


def test_an_ordinary_source_still_gets_its_syn_ack():
    stack, _ = _stack()
    for src in ("192.0.2.1", "198.51.100.7", "2001:db8::1"):
        stack.receive_packet(_syn(src), 0.0)
    replies = [parse_ip(p) for p in stack.packets_to_send()]
    assert [str(p.dst) for p in replies] == ["192.0.2.1", "198.51.100.7", "2001:db8::1"]


def test_a_ping_from_a_broadcast_address_is_not_answered():
    stack, sink = _stack()
    bcast = ipaddress.ip_address("192.0.2.255")
    stack.receive_packet(build_ip(bcast, ME, PROTO_ICMP, build_echo_request(4, bcast, ME, 1, 1, b"x")), 0.0)
    assert stack.packets_to_send() == [] and sink.of_type("drop")[0]["reason"] == "martian_source"
    peer = ipaddress.ip_address("192.0.2.1")
    stack.receive_packet(build_ip(peer, ME, PROTO_ICMP, build_echo_request(4, peer, ME, 1, 1, b"x")), 0.0)
    assert len(stack.packets_to_send()) == 1


def test_without_its_networks_a_stack_cannot_tell_a_subnet_broadcast():
    stack = Stack([ME], seed=1)
    stack.listen(80, 0.0)
    stack.receive_packet(_syn("192.0.2.255"), 0.0)
    assert len(stack.packets_to_send()) == 1  # (tcpwave serve passes the device's prefix)


def test_a_stack_on_loopback_takes_loopback_sources():
    stack = Stack(["127.0.0.2"], seed=1)
    stack.listen(80, 0.0)
    lo, me = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("127.0.0.2")
    stack.receive_packet(build_ip(lo, me, 6, build_tcp(Segment(40000, 80, 1, 0, SYN, 65535), lo, me)), 0.0)
    assert len(stack.packets_to_send()) == 1


@pytest.mark.parametrize("dst", ["0.0.0.0", "224.0.0.1", "255.255.255.255", "240.0.0.1", "192.0.2.255", "ff02::1"])
def test_connect_to_a_martian_destination_is_refused(dst):
    stack, _ = _stack()
    with pytest.raises(Unreachable) as e:
        stack.connect(dst, 80, 0.0)
    assert e.value.errno == errno.ENETUNREACH and isinstance(e.value, OSError)
    assert str(ipaddress.ip_address(dst)) in str(e.value)
    assert stack.packets_to_send() == [] and stack.connections() == []
