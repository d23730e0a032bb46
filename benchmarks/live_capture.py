"""Which live capture keeps up: tcpwave's TPACKET_V3 ring (views/ring.py) or `tcpdump -w -` read
through a pipe, each capturing a curl download over a veth at MTU 1500 with offloads off (so every
packet is a wire-sized one), in two network namespaces made and removed here (TEST-NET-1).

    sudo python3 benchmarks/live_capture.py [MB]

Prints, per engine: packets captured, drops the kernel counted, packets tcpdump (with a 64 MB
buffer, in immediate mode, on the same interface, as the reference) saw, and the engine's CPU seconds."""

import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from tcpwave.views.capture import read_capture  # noqa: E402

A, B = f"twcapA{os.getpid()}", f"twcapB{os.getpid()}"
RING_ENGINE = r"""
import sys, select, signal, resource
sys.path.insert(0, sys.argv[2])
from tcpwave.views.ring import Ring
stop = []
signal.signal(signal.SIGINT, lambda *a: stop.append(1))
r = Ring(sys.argv[1]); got = 0
print("ready", flush=True)
while not stop:
    select.select([r], [], [], 0.2)
    p = r.read(); got += len(p); r.stats()
p = r.read(); got += len(p); r.stats()
u = resource.getrusage(resource.RUSAGE_SELF)
print(got, r.drops, u.ru_utime + u.ru_stime, flush=True)
"""
PIPE_ENGINE = r"""
import sys, signal, struct, subprocess, resource
td = subprocess.Popen(["tcpdump", "-i", sys.argv[1], "-B", "65536", "-w", "-", "-U", "--time-stamp-precision=nano",
                       "ip or ip6"],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
signal.signal(signal.SIGINT, lambda *a: td.send_signal(signal.SIGINT))
f = td.stdout
f.read(24); print("ready", flush=True)
got = 0
while True:
    h = f.read(16)
    if len(h) < 16:
        break
    sec, nsec, incl, orig = struct.unpack("<IIII", h)
    f.read(incl); got += 1
err = td.stderr.read().decode()
drops = int(err.split(" packets dropped by kernel")[0].split()[-1])
u = resource.getrusage(resource.RUSAGE_SELF); td.wait(); c = resource.getrusage(resource.RUSAGE_CHILDREN)
print(got, drops, u.ru_utime + u.ru_stime + c.ru_utime + c.ru_stime, flush=True)
"""


def sh(*cmd, ns=None, check=True):
    return subprocess.run((["ip", "netns", "exec", ns] if ns else []) + list(cmd), check=check, capture_output=True)


def setup():
    for ns in (A, B):
        sh("ip", "netns", "add", ns)
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    sh("ip", "link", "add", "twA", "netns", A, "type", "veth", "peer", "name", "twB", "netns", B)
    for ns, dev, addr in ((A, "twA", "192.0.2.1/24"), (B, "twB", "192.0.2.2/24")):
        sh("ip", "addr", "add", addr, "dev", dev, ns=ns)
        sh("ip", "link", "set", dev, "mtu", "1500", "up", ns=ns)
        sh("ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", ns=ns)


def run(engine: str, mb: int, directory: str) -> tuple[int, int, float, int, int]:
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    prog = RING_ENGINE if engine == "ring" else PIPE_ENGINE
    ref = subprocess.Popen(["ip", "netns", "exec", A, "tcpdump", "--immediate-mode", "-i", "twA", "-B", "65536", "-w",
                            os.path.join(directory, "ref.pcap"), "ip or ip6"], stderr=subprocess.PIPE, text=True)
    ref.stderr.readline()
    eng = subprocess.Popen(["ip", "netns", "exec", A, sys.executable, "-c", prog, "twA", src], stdout=subprocess.PIPE,
                           text=True)
    eng.stdout.readline()
    srv = subprocess.Popen(["ip", "netns", "exec", A, sys.executable, "-m", "http.server", "8000", "--bind",
                            "192.0.2.1", "--directory", directory],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sh("curl", "-s", "--retry", "50", "--retry-connrefused", "--retry-delay", "0", "-o", "/dev/null",
           "http://192.0.2.1:8000/big.bin", ns=B)
    finally:
        srv.send_signal(signal.SIGINT)
        srv.wait()
    time.sleep(0.2)
    eng.send_signal(signal.SIGINT)
    got, drops, cpu = eng.stdout.readline().split()
    eng.wait()
    ref.send_signal(signal.SIGINT)
    ref_drops = int(ref.communicate()[1].split(" packets dropped by kernel")[0].split()[-1])
    return int(got), int(drops), float(cpu), len(read_capture(os.path.join(directory, "ref.pcap"))), ref_drops


def main() -> None:
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    setup()
    try:
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "big.bin"), "wb") as f:
                f.truncate(mb << 20)
            for engine in sys.argv[2:] or ("ring", "pipe"):
                got, drops, cpu, ref, ref_drops = run(engine, mb, d)
                print(f"{engine:5} {mb} MB: captured {got}, kernel dropped {drops}; tcpdump -B 65536 beside it saw "
                      f"{ref}, dropped {ref_drops}; CPU {cpu:.2f} s")
    finally:
        for ns in (A, B):
            sh("ip", "netns", "del", ns, check=False)


if __name__ == "__main__":
    main()
