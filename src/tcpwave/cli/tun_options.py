"""The options every command that makes its own TUN device shares, and the runtime they build."""

import asyncio
import contextlib
import dataclasses
import subprocess
import sys

from ..aio import Runtime, TunLink
from ..drivers.tun import TunDevice, TunError
from ..stack import Stack
from ..trace import Tracer
from ..trace import report_failure as trace_report
from ..views.files import tagged
from ..views.record import open_captures, report_failure
from . import knobs

SEGMENT_MAX = 65535 - 60 - 60  # the largest TCP payload one IP packet carries, with room for headers


def add(p) -> None:
    p.add_argument("--tun", default="tcpw0",
                   help="TUN device name (default tcpw0); one made by `tcpwave tun add` is attached to as it is, "
                        "without root")
    p.add_argument("--addr", default="192.0.2.2", help="tcpwave's address (default 192.0.2.2)")
    p.add_argument("--host", dest="kernel", default="192.0.2.1/24",
                   help="the kernel side, address/prefix (default 192.0.2.1/24)")
    p.add_argument("--mtu", type=int, default=1500)
    p.add_argument("--no-offload", action="store_true",
                   help="packet by packet: no checksum offload, no TSO/GSO super-segments")
    p.add_argument("--events", metavar="FILE", help="write every event as JSON lines")
    p.add_argument("--pcap", metavar="FILE", help="write every packet in and out as pcap (RAW)")
    p.add_argument("--pcapng", metavar="FILE",
                   help="the same as pcapng, each packet commented with the state changes it caused")
    knobs.add(p)


def open_device(args, queues: int = 1) -> TunDevice:
    """The TUN device of the command's options (in this namespace), with `queues` queues."""
    device = TunDevice(args.tun, args.kernel, args.addr, mtu=args.mtu, offload=not args.no_offload, queues=queues)
    if device.offload_error:
        print(f"tcpwave: {device.offload_error}; working packet by packet", file=sys.stderr)
    elif device.offload and firewall_rules([]):
        print(f"tcpwave: {OFFLOAD_WARNING}", file=sys.stderr)
    if device.existing:
        print(f"tcpwave: attached to the existing device {device.name} ({device.kernel} on the kernel side, "
              f"MTU {device.mtu}); its configuration is left as it is", file=sys.stderr)
    return device


def runtime(args, stack: contextlib.ExitStack, loop, device: TunDevice | None = None, queue: int = 0,
            tag: str | None = None) -> Runtime:
    """A Runtime on the device (made here, in this namespace, unless given) or one of its queues;
    everything closes with `stack`. tag: capture files get it in their names (one per worker)."""
    tracer = Tracer()
    files = {"pcap": args.pcap, "pcapng": getattr(args, "pcapng", None), "events": args.events}
    if tag:
        files = {k: v and tagged(v, tag) for k, v in files.items()}
    taps = open_captures(stack, tracer, live=True, **files)
    if device is None:
        device = stack.enter_context(open_device(args))
    port = device.queues[queue]
    tapped = Tapped(TunLink(port), taps) if taps else None
    link = tapped or TunLink(port)
    config = knobs.config(args)
    if getattr(args, "max_connections", None) is not None:
        config = dataclasses.replace(config, max_connections=args.max_connections)
    rt = Runtime(Stack([args.addr], config=config, tracer=tracer, host="tcpwave", mtu=device.mtu,
                       checksum_offload=device.offload, segment_max=SEGMENT_MAX if device.offload else 0), link)
    if tapped is not None:
        tapped.clock = rt.now  # capture times on the event log's clock
        tapped.start_syncing(loop)
    stack.callback(rt.close)  # (runs last: sends what is pending, then stops)
    stack.callback(rt.shut_down)  # (runs first: a FIN for any connection still open)
    return rt


OFFLOAD_WARNING = ("warning: this network namespace has iptables rules, and tcpwave uses offloads: "
                   "the kernel passes it ~64 KB super-segments, so a rule that drops packets drops whole "
                   "super-segments (a 2% drop becomes RTOs). Use --no-offload for per-packet impairments.")


def firewall_rules(prefix: list[str]) -> int:
    """How many iptables/ip6tables rules there are (run under `prefix`, e.g. ip netns exec NAME)."""
    n = 0
    for tool in ("iptables", "ip6tables"):
        try:
            out = subprocess.run([*prefix, tool, "-S"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        n += sum(1 for line in out.splitlines() if line.startswith("-A "))
    return n


def run_command(name: str, main, args, timeout: float | None = None) -> int:
    """Run a command's coroutine until it ends, Ctrl-C or SIGTERM: an interrupt closes what is open
    (FIN) and ends with one line and exit status 130, never a traceback."""
    import signal

    async def guarded() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await asyncio.wait_for(main(args), timeout)
        except asyncio.CancelledError:
            print(f"tcpwave {name}: interrupted", file=sys.stderr)
            return 130

    try:
        return asyncio.run(guarded())
    except TimeoutError as e:
        print(f"tcpwave {name}: TimeoutError: {e or f'gave up after {timeout:g} s (--timeout)'}", file=sys.stderr)
        return 1
    except TunError as e:
        print(f"tcpwave {name}: {e}", file=sys.stderr)
        return 1
    except (ValueError, ConnectionError) as e:
        print(f"tcpwave {name}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def end_child(proc, grace: float) -> None:
    """End a process we started, by its PID: SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Tapped:
    """A link whose every packet in and out also goes to taps: callables (t, packet), optionally with
    a flush() called once the stack has processed an incoming batch and sent what it caused, and a
    sync() that hands what is buffered to the file (at least once a second, see `start_syncing`).

    A tap that raises (a full disk) is disabled (its disable() called, if it has one) and reported
    once (`on_error`); the packets go on to the stack and the device all the same."""

    SYNC_EVERY = 1.0  # seconds

    def __init__(self, link, taps, on_error=None):
        self.link, self.taps = link, list(taps)
        self.clock = lambda: 0.0
        self.on_error = on_error or report_failure
        self._timer = None

    def attach(self, callback):
        def tap_in(packets, trusted=None):
            self._feed(packets)
            callback(packets, trusted)
            self._each("flush")

        self.link.attach(tap_in)

    def detach(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.link.detach()

    def send(self, packet, gso_size=0, partial=False):
        self._feed((packet,))
        self.link.send(packet, gso_size, partial)
        self._each("flush")

    def start_syncing(self, loop) -> None:
        """sync() every tap each SYNC_EVERY seconds while attached: a capture can be read as it grows."""
        def tick():
            self._each("sync")
            self._timer = loop.call_later(self.SYNC_EVERY, tick)

        self._timer = loop.call_later(self.SYNC_EVERY, tick)

    def _feed(self, packets) -> None:
        t = self.clock()
        for tap in self.taps:
            try:
                for p in packets:
                    tap(t, p)
            except Exception as e:  # noqa: BLE001 (a tap's failure never reaches the stack or the device)
                self._disable(tap, e)

    def _each(self, method: str) -> None:
        for tap in self.taps:
            call = getattr(tap, method, None)
            if call is not None:
                try:
                    call()
                except Exception as e:  # noqa: BLE001 (as in _feed)
                    self._disable(tap, e)

    def _disable(self, tap, error: Exception) -> None:
        self.taps = [t for t in self.taps if t is not tap]  # (a loop under way goes on over the old list)
        disable = getattr(tap, "disable", None)
        if disable is not None:
            disable()
        trace_report(self.on_error, tap, error)
