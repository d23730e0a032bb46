"""`tcpwave serve SERVICE`: a tcpwave server on a TUN device created in the current namespace."""

import asyncio
import contextlib
import signal
import sys

from ..aio import Runtime, TunLink, services, start_server
from ..drivers.tun import TunDevice, TunError
from ..pcap import PcapWriter
from ..stack import Stack
from ..trace import JsonLinesSink, Tracer


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve echo, discard, source or http on a TUN device",
                       description="Create a TUN device in this network namespace and run a tcpwave server "
                                   "on it, until interrupted. Needs root (CAP_NET_ADMIN).")
    p.add_argument("service", choices=("echo", "discard", "source", "http"))
    p.add_argument("--port", type=int, help="default: 7 echo, 9 discard, 19 source, 80 http")
    p.add_argument("--tun", default="tcpw0", help="TUN device name (default tcpw0)")
    p.add_argument("--addr", default="192.0.2.2", help="tcpwave's address (default 192.0.2.2)")
    p.add_argument("--host", default="192.0.2.1/24", help="the kernel side, address/prefix (default 192.0.2.1/24)")
    p.add_argument("--mtu", type=int, default=1500)
    p.add_argument("--bytes", type=int, default=1_000_000, help="source: bytes to send (default 1000000)")
    p.add_argument("--dir", help="http: serve files from this directory instead of the built-in page")
    p.add_argument("--events", metavar="FILE", help="write every event as JSON lines")
    p.add_argument("--pcap", metavar="FILE", help="write every packet in and out as pcap (RAW)")
    p.add_argument("--ready-file", metavar="FILE", help="create FILE once listening (for scripts)")
    p.set_defaults(func=run)


DEFAULT_PORTS = {"echo": 7, "discard": 9, "source": 19, "http": 80}


def run(args) -> int:
    try:
        return asyncio.run(_serve(args))
    except (TunError, ValueError) as e:
        print(f"tcpwave serve: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


async def _serve(args) -> int:
    handler = {"echo": services.echo, "discard": services.discard, "source": services.source(args.bytes),
               "http": services.http(args.dir)}[args.service]
    port = args.port or DEFAULT_PORTS[args.service]
    with contextlib.ExitStack() as stack:
        tracer = Tracer()
        if args.events:
            tracer.add_sink(JsonLinesSink(stack.enter_context(open(args.events, "w", buffering=1))))
        device = stack.enter_context(TunDevice(args.tun, args.host, args.addr, mtu=args.mtu))
        link = TunLink(device)
        loop = asyncio.get_running_loop()
        if args.pcap:
            link = _tapped(link, PcapWriter(stack.enter_context(open(args.pcap, "wb"))), loop)
        runtime = Runtime(Stack([args.addr], tracer=tracer, host="tcpwave", mtu=args.mtu), link)
        server = await start_server(handler, args.addr, port, runtime=runtime)
        stopping = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        print(f"tcpwave: {args.service} on {args.addr}:{port} via {args.tun} (kernel side {args.host})",
              file=sys.stderr, flush=True)
        if args.ready_file:
            open(args.ready_file, "w").close()
        await stopping.wait()
        server.close()
        runtime.close()
    return 0


def _tapped(link, pcap, loop):
    """Wrap a link so that every packet in and out is also written to `pcap`."""
    t0 = loop.time()

    class Tapped:
        def attach(self, callback):
            def tap_in(packets):
                for p in packets:
                    pcap.write(loop.time() - t0, p)
                callback(packets)
            link.attach(tap_in)

        def detach(self):
            link.detach()

        def send(self, packet):
            pcap.write(loop.time() - t0, packet)
            link.send(packet)

    return Tapped()
