"""The atheris harness (fuzz/wire_parser.py) runs in CI too, driven by hypothesis instead of
libFuzzer: random and mutated packets never make the parsers or the stack raise."""

import ipaddress
import pathlib
import runpy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tcpwave.wire.ip import build_ip
from tcpwave.wire.tcp import ACK, SYN, Segment, build_tcp

HARNESS = runpy.run_path(str(pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "wire_parser.py"))
one_input = HARNESS["test_one_input"]
A, B = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
SYN_PACKET = build_ip(A, B, 6, build_tcp(Segment(40000, 80, 1, 0, SYN, 65535), A, B))


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.one_of(
    st.binary(max_size=200),
    st.tuples(st.integers(0, len(SYN_PACKET) - 1), st.integers(0, 255)).map(
        lambda t: SYN_PACKET[: t[0]] + bytes([t[1]]) + SYN_PACKET[t[0] + 1:]),  # one byte of a valid SYN changed
    st.integers(0, len(SYN_PACKET)).map(lambda n: SYN_PACKET[:n]),  # a valid SYN cut short
))
def test_the_harness_never_raises(data):
    one_input(data)


def test_the_harness_takes_a_valid_segment():
    one_input(build_ip(A, B, 6, build_tcp(Segment(40001, 80, 7, 0, ACK, 100), A, B)))
