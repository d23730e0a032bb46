"""Coverage-guided fuzzing of the wire parsers and the stack's input path with atheris.

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python fuzz/wire_parser.py -atheris_runs=200000      # or -max_total_time=60

Each input is one packet as it would come off a TUN device. It must either parse or be refused with
a MalformedPacket naming a DropReason; fed to a stack (with a listener and a connection in place),
it must never raise. A crash is written as crash-<hash> in the current directory, as libFuzzer does.
"""

import ipaddress
import sys

from tcpwave.core.config import Config
from tcpwave.core.reasons import DropReason
from tcpwave.stack import Stack
from tcpwave.wire.errors import MalformedPacket
from tcpwave.wire.ip import parse_ip
from tcpwave.wire.tcp import parse_tcp

REASONS = {r.value for r in DropReason}
_stack = Stack(["192.0.2.2", "2001:db8::2"], config=Config(), seed=1)
_stack.listen(80, 0.0)
_stack.connect(ipaddress.ip_address("192.0.2.1"), 8080, 0.0, local_port=40000)
_now = [0.0]


def test_one_input(data: bytes) -> None:
    try:
        pkt = parse_ip(data)
        if pkt.proto == 6:
            parse_tcp(pkt.payload, pkt.src, pkt.dst)
    except MalformedPacket as e:
        assert e.reason in REASONS, e.reason
    _now[0] += 0.001
    _stack.receive_packet(data, _now[0])  # never raises
    _stack.packets_to_send()
    _stack.events()


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
