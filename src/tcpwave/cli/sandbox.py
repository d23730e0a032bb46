"""`tcpwave sandbox [--serve SERVICE] -- COMMAND ...`: a throwaway network namespace with tcpwave in it.

Creates a namespace, runs `tcpwave serve` there on a TUN device, runs COMMAND in the same namespace
(so `curl http://192.0.2.2/` reaches tcpwave through the real kernel), then stops the server and
removes the namespace, also when something fails. Needs root.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

from . import knobs
from .tun_options import OFFLOAD_WARNING, end_child, firewall_rules


def add_parser(sub) -> None:
    p = sub.add_parser("sandbox", help="run tcpwave and a command in a throwaway network namespace",
                       description=__doc__.splitlines()[2].strip())
    p.add_argument("--serve", default="http", choices=("echo", "discard", "hash", "source", "http"),
                   help="the service tcpwave runs (default http)")
    p.add_argument("--port", type=int, help="its port (default: 7 echo, 9 discard, 5001 hash, 19 source, 80 http)")
    p.add_argument("--bytes", type=int, help="source: bytes to send")
    p.add_argument("--dir", help="http: serve files from this directory")
    p.add_argument("--events", metavar="FILE", help="tcpwave's event log (JSON lines)")
    p.add_argument("--pcap", metavar="FILE", help="tcpwave's packets, in and out (pcap)")
    p.add_argument("--pcapng", metavar="FILE", help="the same as pcapng with a state-change comment per packet")
    p.add_argument("--control", metavar="SOCKET", help="tcpwave's control socket for `tcpwave ss` (default: "
                   "serve-PID.sock in the per-user control directory, where `tcpwave ss` looks)")
    p.add_argument("--mtu", type=int, help="the TUN device's MTU (default 1500)")
    p.add_argument("--no-offload", action="store_true",
                   help="packet by packet, no TSO/GSO super-segments: needed for per-packet impairments "
                        "(iptables statistic drops) to mean what they say")
    knobs.add(p)
    p.add_argument("command", nargs="*", help="the command to run (after --)")
    p.set_defaults(func=run)


def run(args) -> int:
    if os.geteuid() != 0:
        print("tcpwave sandbox: needs root to create a network namespace and a TUN device", file=sys.stderr)
        return 1
    if not args.command:
        print("tcpwave sandbox: give a command after --, e.g. -- curl -s http://192.0.2.2/", file=sys.stderr)
        return 2
    def interrupted(signum, frame):
        raise KeyboardInterrupt  # SIGTERM as Ctrl-C: the cleanup below runs either way

    signal.signal(signal.SIGTERM, interrupted)
    stopped = [False]
    name = f"tcpwave-sbx-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    server = None
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            ready = os.path.join(tmp, "ready")
            serve = [sys.executable, "-m", "tcpwave.cli.main", "serve", args.serve, "--ready-file", ready]
            for flag, value in (("--port", args.port), ("--bytes", args.bytes), ("--dir", args.dir),
                                ("--events", args.events), ("--pcap", args.pcap),
                                ("--pcapng", args.pcapng), ("--control", args.control), ("--mtu", args.mtu)):
                if value is not None:
                    serve += [flag, str(value)]
            if args.no_offload:
                serve.append("--no-offload")
            serve += knobs.as_args(knobs.changes(args))
            server = subprocess.Popen(["ip", "netns", "exec", name, *serve])
            deadline = time.monotonic() + 20
            while not os.path.exists(ready):
                if server.poll() is not None or time.monotonic() > deadline:
                    print("tcpwave sandbox: the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.02)
            rc = subprocess.run(["ip", "netns", "exec", name, *args.command]).returncode
            if not args.no_offload and firewall_rules(["ip", "netns", "exec", name]):
                print(f"tcpwave sandbox: {OFFLOAD_WARNING}", file=sys.stderr)
            return rc
    except KeyboardInterrupt:
        stopped[0] = True
        return 130
    finally:
        if server is not None:
            end_child(server, 10)
        subprocess.run(["ip", "netns", "del", name], check=False)
        if stopped[0]:
            print("tcpwave sandbox: interrupted; namespace removed", file=sys.stderr)
