"""The options every command that makes its own TUN device shares, and the runtime they build."""

import asyncio
import contextlib
import dataclasses
import ipaddress
import socket
import subprocess
import sys
import time

from ..aio import Runtime, TunLink, log
from ..core.trace import Tracer
from ..drivers.taps import Tapped
from ..drivers.tun import SEGMENT_MAX, TunDevice, TunError
from ..stack import EPHEMERAL, Stack
from ..views.files import tagged
from ..views.record import open_captures
from . import knobs


def add(p) -> None:
    p.add_argument("--tun", default="tcpw0",
                   help="TUN device name (default tcpw0); one made by `tcpwave tun add` is attached to as it is, "
                        "without root")
    p.add_argument("--addr", default="192.0.2.2", help="tcpwave's address (default 192.0.2.2)")
    p.add_argument("--kernel", "--host", dest="kernel", default="192.0.2.1/24", metavar="ADDR/PREFIX",
                   help="the kernel side of the TUN device, address/prefix (default 192.0.2.1/24); --host is "
                        "the old name")
    p.add_argument("--mtu", type=int, default=1500, help="the TUN device's MTU (default 1500)")
    p.add_argument("--no-offload", action="store_true",
                   help="packet by packet: no checksum offload, no TSO/GSO super-segments")
    p.add_argument("--events", metavar="FILE", help="write every event as JSON lines")
    p.add_argument("--pcap", metavar="FILE", help="write every packet in and out as pcap (RAW)")
    p.add_argument("--pcapng", metavar="FILE",
                   help="the same as pcapng, each packet commented with the state changes it caused")
    knobs.add(p)


def open_device(args, queues: int = 1, steer: bool = False) -> TunDevice:
    """The TUN device of the command's options (in this namespace), with `queues` queues; with
    `steer`, one made here is steered by port with a lane beside each queue (drivers/tun.py)."""
    device = TunDevice(args.tun, args.kernel, args.addr, mtu=args.mtu, offload=not args.no_offload, queues=queues,
                       steer=EPHEMERAL if steer else None, lanes=steer)
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
    taps = open_captures(stack, tracer, live=True, on_error=log.sink_failed, **files)
    if device is None:
        device = stack.enter_context(open_device(args))
    port, lane = device.queues[queue], device.lane(queue)
    tapped = Tapped(TunLink(port, lane=lane), taps, on_error=log.sink_failed) if taps else None
    link = tapped or TunLink(port, lane=lane)
    config = knobs.config(args)
    if getattr(args, "max_connections", None) is not None:
        config = dataclasses.replace(config, max_connections=args.max_connections)
    rt = Runtime(Stack([args.addr], config=config, tracer=tracer, host="tcpwave", mtu=device.mtu,
                       checksum_offload=device.offload, segment_max=SEGMENT_MAX if device.offload else 0,
                       networks=[device.kernel.network]), link)
    if tapped is not None:  # capture times on the wall clock, to merge with a tcpdump of the same run:
        # the event log's clock plus the moment it started (a pcapng's comments match events by it)
        epoch = time.time() - rt.now()
        tapped.clock = lambda: rt.now() + epoch
        for tap in taps:
            if hasattr(tap, "epoch"):
                tap.epoch = epoch
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
        print(f"tcpwave {name}: TimeoutError: {str(e) or f'gave up after {timeout:g} s (--timeout)'}", file=sys.stderr)
        return 1
    except TunError as e:
        print(f"tcpwave {name}: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # our own checks: the sentence says it
        print(f"tcpwave {name}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # (our stdout's reader went away: main ends quietly)
    except OSError as e:  # refused, reset, unreachable (ICMP), a file: one line, never a traceback
        print(f"tcpwave {name}: {type(e).__name__}: {e.strerror or e}", file=sys.stderr)
        return 1


async def hang_up(runtime, writer, unread: bool, grace: float = 1.0) -> None:
    """End a client's connection on an interrupt as Linux's close() does: with data left unread, a
    RST; otherwise a FIN, and up to `grace` seconds for the peer's FIN to be acknowledged (so that the
    peer is not left in LAST-ACK once we are gone)."""
    if unread:
        writer.transport.abort()
        return
    writer.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while loop.time() < deadline and any(c.state.value not in ("CLOSED", "TIME_WAIT", "LISTEN")
                                         for c in runtime.connections()):
        await asyncio.sleep(0.02)  # (bounded: the peer's FIN and ACK arrive meanwhile)


def resolve(host: str, ours: str) -> str:
    """The address to connect to for `host`: a literal as it is, a name through the system's resolver
    (hosts file, DNS), preferring the family of our own address `ours`. A loopback address is refused
    with a sentence: tcpwave reaches only what lies behind its TUN device."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise ValueError(f"cannot resolve {host}: {getattr(e, 'strerror', None) or e}") from None
        found = [ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos]
        version = ipaddress.ip_address(ours).version
        addr = next((a for a in found if a.version == version), found[0])
    if addr.is_loopback:
        raise ValueError(f"{host} is {addr}, a loopback address of this host: tcpwave reaches only addresses "
                         "through its TUN device (the kernel side, 192.0.2.1 by default, or beyond it)")
    return str(addr)


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
