"""The eBPF steering program of multi-queue TUN devices (drivers/steering.py): the bytecode, run by
the kernel on test packets (BPF_PROG_TEST_RUN), returns what its Python model `queue_for` says, for
random port pairs over IPv4 and IPv6, and 0 for what has no ports to go by."""

import os
import random
import struct

import pytest

from tcpwave.drivers import steering
from tcpwave.stack import EPHEMERAL
from tcpwave.wire.tcp import ACK, FIN, PSH, RST, SYN

V4 = (bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))
V6 = (bytes.fromhex("20010db8000000000000000000000001"), bytes.fromhex("20010db8000000000000000000000002"))


def tcp(sport: int, dport: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, SYN, 65535, 0, 0)


def ipv4(payload: bytes, proto: int = 6, fragment: int = 0, options: bytes = b"") -> bytes:
    ihl = 5 + len(options) // 4
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), 0, fragment, 64, proto, 0,
                       *V4) + options + payload


def ipv6(payload: bytes, next_header: int = 6) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 64, *V6) + payload


def ipv4_reversed(payload: bytes) -> bytes:
    """One of our IPv4 packets (from 192.0.2.2 to 192.0.2.1), as an ICMP error quotes it."""
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 6, 0, V4[1], V4[0]) + payload


def icmp_error(quoted: bytes, version: int) -> bytes:
    """A "fragmentation needed" / "packet too big" from the kernel side, quoting one of our packets."""
    if version == 4:
        return ipv4(struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + quoted, proto=1)
    return ipv6(struct.pack("!BBHI", 2, 0, 0, 1400) + quoted, next_header=58)


def ipv6_reversed(payload: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), 6, 64, V6[1], V6[0]) + payload


def test_an_icmp_error_goes_where_the_packets_of_the_connection_it_quotes_go():
    rng = random.Random(5)
    for _ in range(300):
        ours, peer = rng.choice([rng.choice(EPHEMERAL), rng.randrange(1, 1024)]), rng.randrange(1, 65536)
        inbound = steering.queue_for(ipv4(tcp(peer, ours)), EPHEMERAL)
        assert steering.queue_for(icmp_error(ipv4_reversed(tcp(ours, peer)), 4), EPHEMERAL) == inbound
        assert steering.queue_for(icmp_error(ipv6_reversed(tcp(ours, peer)), 6), EPHEMERAL) == inbound


def test_the_rule_sends_a_connection_we_opened_to_its_port_and_spreads_the_others():
    ours = EPHEMERAL.start + 7
    assert steering.queue_for(ipv4(tcp(80, ours)), EPHEMERAL) == 7  # its place in the range
    assert steering.queue_for(ipv6(tcp(80, ours)), EPHEMERAL) == 7
    # to a listener: the client's port decides, mixed, so that Linux's even ports use every queue
    even = [steering.queue_for(ipv4(tcp(port, 7)), EPHEMERAL) % 2 for port in range(32768, 33768, 2)]
    assert 200 < sum(even) < 300  # of 500 even ports (a plain port % 2 would give 0)
    assert steering.queue_for(ipv4(tcp(40000, 7)), EPHEMERAL) == steering.queue_for(ipv6(tcp(40000, 7)), EPHEMERAL)
    for packet in (ipv4(tcp(1, 2), proto=17), ipv4(tcp(1, 2), fragment=100), ipv6(tcp(1, 2), next_header=0),
                   b"\x45" + bytes(10), b"", b"\x10" + bytes(40)):
        assert steering.queue_for(packet, EPHEMERAL) == 0


@pytest.fixture(scope="module")
def program():
    try:
        fd = steering.load(EPHEMERAL)
    except steering.BpfError as e:
        pytest.skip(f"cannot load BPF programs here: {e}")
    yield fd
    os.close(fd)


def test_the_program_chooses_as_its_model_for_random_ports(program):
    rng = random.Random(28)
    checked = 0
    for _ in range(1500):
        sport, dport = rng.randrange(65536), rng.randrange(65536)
        if rng.random() < 0.3:
            dport = rng.choice(EPHEMERAL)
        for packet in (ipv4(tcp(sport, dport)), ipv6(tcp(sport, dport)),
                       ipv4(tcp(sport, dport), options=b"\x01\x01\x01\x00"),  # (a longer IPv4 header)
                       icmp_error(ipv4_reversed(tcp(sport, dport)), 4), icmp_error(ipv6_reversed(tcp(sport, dport)), 6),
                       icmp_error(ipv4_reversed(tcp(sport, dport))[:24], 4)):  # (quoting too little: 0)
            want = steering.queue_for(packet, EPHEMERAL)
            assert steering.run_on(program, packet) == want, (packet.hex(), want)
            checked += 1
    assert checked == 9000


def test_the_program_answers_zero_where_its_model_does(program):
    packets = [ipv4(tcp(5000, 6000), proto=17), ipv4(tcp(5000, 6000), proto=1), ipv4(tcp(5000, 60000), fragment=3),
               ipv6(tcp(5000, 60000), next_header=17), ipv6(tcp(5000, 60000), next_header=0),
               ipv4(b"\x13\x88"), ipv6(b""), b"\x20" + bytes(59)]
    for packet in packets:
        assert steering.queue_for(packet, EPHEMERAL) == 0
        assert steering.run_on(program, packet) == 0, packet.hex()
    # a first fragment carries the ports: it goes where the rest of its flow goes
    first = ipv4(tcp(5000, 60000), fragment=0x2000)
    assert steering.run_on(program, first) == steering.queue_for(first, EPHEMERAL) == 60000 - EPHEMERAL.start


def tcp_flags(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 65535, 0, 0)


def ipv4_from(src: bytes, payload: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 6, 0, src, V4[1]) + payload


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_with_lanes_a_new_flows_first_packets_go_to_the_lane_beside_its_traffic_queue(workers):
    """Lanes: queues in pairs, 2i for worker i's traffic and 2i + 1 its lane; the kernel takes the
    program's value modulo 2N. A SYN without ACK, and the next FIRST_PACKETS packets of its flow,
    go to the lane beside the flow's traffic queue (worker (the plain rule mod N)'s, for any N);
    the rest, and every flow that began without a SYN seen, to the traffic queue."""
    rng = random.Random(workers)
    n = 2 * workers
    for _ in range(200):
        sport, dport = rng.randrange(1, 65536), rng.choice([7, 80, rng.choice(EPHEMERAL)])
        for build in (ipv4, ipv6):
            flows: dict = {}
            traffic = steering.queue_for(build(tcp_flags(sport, dport, ACK)), EPHEMERAL, True, flows) % n
            assert traffic == 2 * (steering.queue_for(build(tcp_flags(sport, dport, ACK)), EPHEMERAL) % workers)
            assert steering.queue_for(build(tcp_flags(sport, dport, SYN)), EPHEMERAL, True, flows) % n == traffic + 1
            then = [steering.queue_for(build(tcp_flags(sport, dport, f)), EPHEMERAL, True, flows) % n
                    for f in (ACK, PSH | ACK, ACK, FIN | ACK, ACK, RST)]
            assert then == [traffic + 1] * steering.FIRST_PACKETS + [traffic] * (6 - steering.FIRST_PACKETS)
    assert steering.queue_for(ipv4(tcp_flags(1, 2, SYN), proto=17), EPHEMERAL, True) == 0  # (UDP: no flags)


def test_the_program_with_lanes_chooses_as_its_model():
    """The program and its model, on flows that begin (or not) with a SYN, interleaved, from random
    sources and ports, over IPv4 and IPv6, and ICMP errors; the program's map against the model's dict."""
    try:
        fd = steering.load(EPHEMERAL, lanes=True)
    except steering.BpfError as e:
        pytest.skip(f"cannot load BPF programs here: {e}")
    rng = random.Random(101)
    flows: dict = {}
    try:
        seen = set()
        for _ in range(3000):
            sport = rng.randrange(40)  # (few ports, few sources: flows meet again, SYN or not)
            dport = rng.choice([80, rng.choice(EPHEMERAL)])
            src = bytes([198, 51, 100, rng.randrange(4)])
            flags = rng.choice([SYN, SYN | ACK, ACK, ACK, PSH | ACK, FIN | ACK, RST, SYN | FIN])
            segment = tcp_flags(sport, dport, flags)
            packet = rng.choice([ipv4_from(src, segment), ipv6(segment), ipv4(segment, options=b"\x01\x01\x01\x00"),
                                 ipv4(segment)[:33],  # (a TCP header cut before its flags: 0)
                                 icmp_error(ipv4_reversed(segment), 4), icmp_error(ipv6_reversed(segment), 6)])
            want = steering.queue_for(packet, EPHEMERAL, True, flows)
            assert steering.run_on(fd, packet) == want, (packet.hex(), want)
            seen.add(want % 6)
        assert seen == set(range(6))  # with 3 workers: every traffic queue and every lane chosen
        assert sum(1 for v in flows.values() if v == 0) > 10  # flows that used up their first packets
    finally:
        os.close(fd)


@pytest.mark.parametrize("workers", [1, 2, 3, 5, 6])
def test_the_kernels_choice_sends_each_port_to_its_owner_for_any_number_of_workers(workers):
    """The kernel keeps the program's answer in 16 bits, then takes it modulo the queues (tun.c:
    `u16 ret ... return ret % numqueues`). Modelled so, a reply to our port p reaches the worker
    that owns p (stack.port_owner: the stack picks its ports by the same rule), on its traffic queue,
    with lanes (2N queues) and without (N), for every ephemeral port and any N."""
    from tcpwave.stack import port_owner

    def kernel(value: int, queues: int) -> int:
        return (value & 0xFFFF) % queues

    for port in EPHEMERAL:
        reply = ipv4(tcp_flags(80, port, ACK))
        assert kernel(steering.queue_for(reply, EPHEMERAL), workers) == port_owner(port, workers)
        assert kernel(steering.queue_for(reply, EPHEMERAL, True), 2 * workers) == 2 * port_owner(port, workers)
    for sport in range(1, 65536, 7):  # to a listener: a SYN on the lane beside its flow's traffic queue
        flows: dict = {}
        syn = kernel(steering.queue_for(ipv4(tcp_flags(sport, 80, SYN)), EPHEMERAL, True, flows), 2 * workers)
        rest = kernel(steering.queue_for(ipv4(tcp_flags(sport, 80, ACK)), EPHEMERAL, True, {}), 2 * workers)
        assert syn == rest + 1 and rest % 2 == 0
