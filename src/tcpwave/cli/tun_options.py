"""The options every command that makes its own TUN device shares, and the runtime they build."""

import contextlib
import sys

from ..aio import Runtime, TunLink
from ..drivers.tun import TunDevice
from ..pcap import PcapWriter
from ..stack import Stack
from ..trace import JsonLinesSink, Tracer


SEGMENT_MAX = 65535 - 60 - 60  # the largest TCP payload one IP packet carries, with room for headers


def add(p) -> None:
    p.add_argument("--tun", default="tcpw0", help="TUN device name (default tcpw0)")
    p.add_argument("--addr", default="192.0.2.2", help="tcpwave's address (default 192.0.2.2)")
    p.add_argument("--host", dest="kernel", default="192.0.2.1/24",
                   help="the kernel side, address/prefix (default 192.0.2.1/24)")
    p.add_argument("--mtu", type=int, default=1500)
    p.add_argument("--no-offload", action="store_true",
                   help="packet by packet: no checksum offload, no TSO/GSO super-segments")
    p.add_argument("--events", metavar="FILE", help="write every event as JSON lines")
    p.add_argument("--pcap", metavar="FILE", help="write every packet in and out as pcap (RAW)")


def runtime(args, stack: contextlib.ExitStack, loop) -> Runtime:
    """Create the device (in this namespace) and a Runtime on it; everything closes with `stack`."""
    tracer = Tracer()
    if args.events:
        tracer.add_sink(JsonLinesSink(stack.enter_context(open(args.events, "w", buffering=1))))
    device = stack.enter_context(TunDevice(args.tun, args.kernel, args.addr, mtu=args.mtu,
                                           offload=not args.no_offload))
    if device.offload_error:
        print(f"tcpwave: {device.offload_error}; working packet by packet", file=sys.stderr)
    link = TunLink(device)
    if args.pcap:
        link = Tapped(link, PcapWriter(stack.enter_context(open(args.pcap, "wb"))), loop)
    rt = Runtime(Stack([args.addr], tracer=tracer, host="tcpwave", mtu=args.mtu, checksum_offload=device.offload,
                       segment_max=SEGMENT_MAX if device.offload else 0), link)
    stack.callback(rt.close)
    return rt


class Tapped:
    """A link whose every packet in and out is also written to a pcap."""

    def __init__(self, link, pcap, loop):
        self.link, self.pcap, self.loop, self.t0 = link, pcap, loop, loop.time()

    def attach(self, callback):
        def tap_in(packets, trusted=None):
            for p in packets:
                self.pcap.write(self.loop.time() - self.t0, p)
            callback(packets, trusted)

        self.link.attach(tap_in)

    def detach(self):
        self.link.detach()

    def send(self, packet, gso_size=0, partial=False):
        self.pcap.write(self.loop.time() - self.t0, packet)
        self.link.send(packet, gso_size, partial)
