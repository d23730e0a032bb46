"""`tcpwave serve SERVICE`: a tcpwave server on a TUN device created in the current namespace."""

import asyncio
import contextlib
import functools
import os
import sys

from ..aio import control, create_server, httpd, services, start_server, trim, workers
from ..drivers.tun import TunError
from ..views.files import tagged
from . import tun_options


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve echo, discard, hash, source or http on a TUN device",
                       description="Create a TUN device in this network namespace and run a tcpwave server "
                                   "on it, until interrupted. Needs root (CAP_NET_ADMIN).")
    p.add_argument("service", choices=("echo", "discard", "hash", "source", "http"),
                   help="what to serve: echo, discard, hash (SHA-256 of what came), source (bytes), http")
    p.add_argument("--port", type=int, help="default: 7 echo, 9 discard, 19 source, 80 http")
    tun_options.add(p)
    p.add_argument("--bytes", type=int, default=1_000_000, help="source: bytes to send (default 1000000)")
    p.add_argument("--dir", help="http: serve files from this directory instead of the built-in page")
    limits = httpd.Limits()
    p.add_argument("--header-max", type=int, default=limits.header_max, metavar="BYTES",
                   help=f"http: the largest request head, request line and header fields (default "
                        f"{limits.header_max}; a larger one is answered 431)")
    p.add_argument("--header-timeout", type=float, default=limits.header_timeout, metavar="SECONDS",
                   help=f"http: a request head must arrive within this time (default {limits.header_timeout:g}; "
                        f"else 408)")
    p.add_argument("--idle-timeout", type=float, default=limits.idle_timeout, metavar="SECONDS",
                   help=f"close a connection on which nothing moves for this long (http: no request), reset one "
                        f"whose client takes nothing of what it was sent for this long (default "
                        f"{limits.idle_timeout:g}; 'inf' for never)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="N processes, each with its own stack on one queue of a multi-queue TUN device; the "
                        "kernel spreads connections over them by flow, steered by port where an eBPF program may "
                        "be loaded ($TCPWAVE_STEERING=off: never), else with packets for another worker's "
                        "port handed to it (default 1)")
    p.add_argument("--max-connections", type=int, metavar="N",
                   help="drop SYNs while N connections are open (per worker; TIME_WAIT not counted); the "
                        "stack's memory budget applies besides (--set mem_high=BYTES)")
    p.add_argument("--backlog", type=int, default=4096, metavar="N",
                   help="the listen backlog: connections established and not yet accepted (default 4096, Linux's "
                        "net.core.somaxconn; one batch read from the device can complete hundreds of handshakes)")
    p.add_argument("--ready-file", metavar="FILE", help="create FILE once listening (for scripts)")
    p.add_argument("--control", metavar="SOCKET",
                   help="the Unix control socket `tcpwave ss` reads (default: serve-PID.sock in the per-user "
                        "control directory); 'none' for no control socket")
    p.set_defaults(func=run)


DEFAULT_PORTS = {"echo": 7, "discard": 9, "hash": 5001, "source": 19, "http": 80}


def run(args) -> int:
    try:
        if args.control is None:  # the default directory: refused now, before any device or worker, if unsafe
            control.checked_dir(control.control_dir())
        if min(args.header_max, args.header_timeout, args.idle_timeout) <= 0:
            raise ValueError("--header-max, --header-timeout and --idle-timeout must be positive")
        if args.workers > 1:
            return _serve_workers(args)
        if args.backlog < 1:
            raise ValueError(f"--backlog must be at least 1, not {args.backlog}")
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, not {args.workers}")
        return asyncio.run(_serve(args))
    except (TunError, ValueError) as e:
        print(f"tcpwave serve: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _serve_workers(args) -> int:
    """N worker processes on N queues of one device; this process waits, and stops them on a signal."""
    device = tun_options.open_device(args, queues=args.workers, steer=workers.steering_wanted())
    port = args.port or DEFAULT_PORTS[args.service]
    steering = workers.steer(device)

    def ready() -> None:
        print(f"tcpwave: {args.service} on {args.addr}:{port} via {args.tun} (kernel side {args.kernel}), "
              f"{args.workers} workers; {steering}", file=sys.stderr, flush=True)
        if args.ready_file:
            open(args.ready_file, "w").close()

    try:
        status, closed, handed = workers.run(args.workers, device, lambda w: asyncio.run(_serve(args, w, device)),
                                             ready)
    finally:
        if args.ready_file:
            _remove(args.ready_file)
    print(f"tcpwave serve: stopped; {args.workers} workers, {closed} open connection(s) closed, "
          f"{handed} packet(s) handed over between workers", file=sys.stderr, flush=True)
    return status


async def _serve(args, worker: "workers.Worker | None" = None, device=None) -> int:
    service = {"echo": services.Echo, "discard": services.Discard, "hash": services.HashSink}.get(args.service)
    protocol = functools.partial(service, args.idle_timeout) if service is not None else None
    limits = httpd.Limits(args.header_max, args.header_timeout, args.idle_timeout)
    handler = {"source": services.source(args.bytes), "http": httpd.http(args.dir, limits)}.get(args.service)
    port = args.port or DEFAULT_PORTS[args.service]
    with contextlib.ExitStack() as stack:
        loop = asyncio.get_running_loop()
        tag = f"w{worker.index + 1}" if worker is not None else None
        lanes = ""
        if device is None:  # one process: its device, with a lane for new connections where it may steer
            device = stack.enter_context(tun_options.open_device(args, steer=workers.steering_wanted()))
            lanes = "; new connections' first packets on a lane read first (eBPF)" if device.lanes else ""
        runtime = tun_options.runtime(args, stack, loop, device=device, queue=worker.index if worker else 0,
                                      tag=tag)
        if worker is not None:
            worker.attach(runtime)
        if protocol is not None:
            server = await create_server(protocol, args.addr, port, runtime=runtime, backlog=args.backlog)
        else:
            server = await start_server(services.reporting(handler), args.addr, port, runtime=runtime,
                                        limit=limits.header_max, backlog=args.backlog)
        if args.control != "none":
            path = tagged(args.control, tag) if args.control and tag else args.control or control.default_path("serve")
            ctl = await control.start_control(runtime, path)
            stack.callback(_remove, path)
            stack.callback(ctl.close)
        trim.serving()  # (up: what start-up made is never collected again)
        stopping = asyncio.Event()
        for sig in workers.STOP_SIGNALS:  # (SIGHUP too: a closed terminal ends it as SIGTERM does)
            loop.add_signal_handler(sig, stopping.set)
        if worker is not None:
            worker.ready()
        else:
            print(f"tcpwave: {args.service} on {args.addr}:{port} via {args.tun} (kernel side {args.kernel}){lanes}",
                  file=sys.stderr, flush=True)
            if args.ready_file:
                open(args.ready_file, "w").close()
                stack.callback(_remove, args.ready_file)
        await stopping.wait()
        server.close()
        closed = await shut_down(runtime)
        if worker is not None:
            worker.report(closed)  # the parent prints the one line
        else:
            print(f"tcpwave serve: stopped; {closed} open connection(s) closed", file=sys.stderr, flush=True)
    return 0


async def shut_down(runtime, grace: float = 0.5) -> int:
    """Close every open connection (FIN), give the FINs a moment, reset what is left (RST), and
    cancel the handlers quietly: a signal ends the process in well under 2 s with one line."""
    loop = asyncio.get_running_loop()
    closed = runtime.shut_down()
    deadline = loop.time() + grace
    while loop.time() < deadline and any(c.state.value not in ("CLOSED", "TIME_WAIT", "LISTEN")
                                         for c in runtime.connections()):
        await asyncio.sleep(0.05)  # (bounded: the peers' FINs and ACKs arrive meanwhile)
    runtime.shut_down(abort=True)
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return closed


def _remove(path: str) -> None:
    """Remove a file this process made (control socket, ready-file), and the per-user control
    directory with it when nothing else is left there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    if os.path.dirname(os.path.abspath(path)) == os.path.abspath(control.control_dir()):
        with contextlib.suppress(OSError):  # (not empty: another process's socket is there)
            os.rmdir(control.control_dir())

