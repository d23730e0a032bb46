"""A lossy Linux-to-Linux transfer, captured at both ends, with the sending kernel's own counters.

Three namespaces the caller's test creates and removes: a sender, a router and a receiver, joined by
two veth pairs (offloads off, so a capture holds wire-sized segments). The router forwards and, with
iptables' statistic match, drops every Nth data packet from the sender (deterministic: the same
segments every run), behind a tc tbf that queues like a slow link. tcpdump records at the sender's
and the receiver's device; nstat reads TcpExtTCPTimeouts, TcpRetransSegs and friends inside the
sender's namespace (a new namespace starts them at zero, so they are this transfer's alone)."""

import json
import os
import shutil
import subprocess
import sys
import time

SND, RCV = "198.51.100.1", "203.0.113.1"
SND_GW, RCV_GW = "198.51.100.254", "203.0.113.254"
PORT = 5001

TOOLS = ("ip", "tcpdump", "iptables", "tc", "nstat", "ethtool")


def available() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in TOOLS)


SENDER = r"""
import socket, sys
n, chunks = int(sys.argv[1]), int(sys.argv[4])
s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=30)
for _ in range(chunks):  # request/response: each chunk's tail can only be recovered by TLP or the RTO
    s.sendall(b"x" * (n // chunks))
    while b"k" not in s.recv(65536):  # (and whatever the receiver trickles meanwhile)
        pass
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
s.close()
"""

RECEIVER = r"""
import socket, sys, threading
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen()
print("ready", flush=True)
c, _ = l.accept()
c.settimeout(30)
n, chunks, trickle = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
done = threading.Event()
lock = threading.Lock()

def dribble():  # data the other way, 100 bytes every 20 ms: the sender is never silent for long
    while not done.wait(0.02):
        with lock:
            c.sendall(b"t" * 100)

if trickle:
    threading.Thread(target=dribble, daemon=True).start()
got = 0
for _ in range(chunks):
    want = got + n // chunks
    while got < want:
        b = c.recv(65536)
        assert b
        got += len(b)
    with lock:
        c.sendall(b"k")
done.set()
assert not c.recv(1)
c.close()
print(got, flush=True)
"""

COUNTERS = ("TcpExtTCPTimeouts", "TcpRetransSegs", "TcpExtTCPLossProbes", "TcpExtTCPFastRetrans",
            "TcpExtTCPSlowStartRetrans", "TcpOutSegs")


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def _nstat(ns: str) -> dict[str, int]:
    out = subprocess.run(["ip", "netns", "exec", ns, "nstat", "-asz", *COUNTERS], capture_output=True,
                         text=True, check=True).stdout
    got = {c: 0 for c in COUNTERS}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in got:
            got[parts[0]] = int(parts[1])
    return got


def _dump(ns: str, dev: str, path: str) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "--immediate-mode", "-U", "-n", "-i", dev,
                             "-w", path, f"tcp port {PORT}"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # tcpdump says when it is capturing
        if "listening on" in line:
            break
    return proc


def run(tmp: str, nbytes: int = 300_000, chunks: int = 40, every: int = 6, rate: str = "40mbit",
        reorder: bool = False, trickle: bool = False) -> dict:
    """Transfer `nbytes` from sender to receiver in `chunks` request/response rounds, the router dropping
    every `every`th data packet. With `reorder`, nothing is dropped: every `every`th data packet is
    held back instead (an htb class of its own whose tbf runs at 2 Mbit/s), so it arrives after
    later ones. With `trickle`, the receiver also sends 100 bytes every 20 ms the other way, so the
    sender ACKs all along (never silent while its timer runs). Returns the two capture paths, the
    sender's counters and the bytes the receiver read."""
    tag = f"{os.getpid() % 100000}"
    snd, rtr, rcv = f"tws{tag}", f"twr{tag}", f"twc{tag}"
    made: list[str] = []
    procs: list[subprocess.Popen] = []
    try:
        for ns in (snd, rtr, rcv):
            _sh("ip", "netns", "add", ns)
            made.append(ns)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "link", "add", "s0", "netns", snd, "type", "veth", "peer", "name", "r0", "netns", rtr)
        _sh("ip", "link", "add", "c0", "netns", rcv, "type", "veth", "peer", "name", "r1", "netns", rtr)
        for ns, dev, addr in ((snd, "s0", f"{SND}/24"), (rtr, "r0", f"{SND_GW}/24"), (rtr, "r1", f"{RCV_GW}/24"),
                              (rcv, "c0", f"{RCV}/24")):
            _sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            _sh("ip", "-n", ns, "link", "set", dev, "up")
            _sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off")
        _sh("ip", "-n", snd, "route", "add", "default", "via", SND_GW)
        _sh("ip", "-n", rcv, "route", "add", "default", "via", RCV_GW)
        _sh("ip", "netns", "exec", rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        nth = ["-s", SND, "-p", "tcp", "-m", "length", "--length", "100:65535", "-m", "statistic", "--mode", "nth",
               "--every", str(every), "--packet", "0"]
        tc = ["ip", "netns", "exec", rtr, "tc"]
        if reorder:
            _sh("ip", "netns", "exec", rtr, "iptables", "-t", "mangle", "-A", "FORWARD", *nth, "-j", "CLASSIFY",
                "--set-class", "1:10")
            _sh(*tc, "qdisc", "add", "dev", "r1", "root", "handle", "1:", "htb", "default", "20")
            for cls in ("1:10", "1:20"):
                _sh(*tc, "class", "add", "dev", "r1", "parent", "1:", "classid", cls, "htb", "rate", "1gbit")
            _sh(*tc, "qdisc", "add", "dev", "r1", "parent", "1:10", "handle", "10:", "tbf", "rate", "2mbit",
                "burst", "1600", "limit", "200000")
        else:
            _sh("ip", "netns", "exec", rtr, "iptables", "-A", "FORWARD", *nth, "-j", "DROP")
            _sh(*tc, "qdisc", "add", "dev", "r1", "root", "tbf", "rate", rate, "burst", "16kb", "latency", "100ms")
        spcap, rpcap = os.path.join(tmp, "sender.pcap"), os.path.join(tmp, "receiver.pcap")
        procs.append(_dump(snd, "s0", spcap))
        procs.append(_dump(rcv, "c0", rpcap))
        server = subprocess.Popen(["ip", "netns", "exec", rcv, sys.executable, "-c", RECEIVER, RCV, str(PORT),
                                   str(nbytes), str(chunks), "1" if trickle else "0"],
                                  stdout=subprocess.PIPE, text=True)
        procs.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        subprocess.run(["ip", "netns", "exec", snd, sys.executable, "-c", SENDER, str(nbytes), RCV, str(PORT),
                        str(chunks)], check=True, timeout=60)
        got = int(server.stdout.readline())
        server.wait(10)
        counters = _nstat(snd)
        _settle(spcap, rpcap)
        return {"sender_pcap": spcap, "receiver_pcap": rpcap, "counters": counters, "received": got}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()  # tcpdump: our own child, by PID; it writes what it holds and exits
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)


def _settle(*paths: str) -> None:
    """Until each capture holds the sender's last ACK (tcpdump -U writes per packet): bounded polling."""
    deadline = time.monotonic() + 5
    last = None
    while time.monotonic() < deadline:
        sizes = [os.path.getsize(p) for p in paths]
        if sizes == last:
            return
        last = sizes
        time.sleep(0.1)


if __name__ == "__main__":  # a manual run: python tests/lossy_linux.py DIR
    print(json.dumps(run(sys.argv[1], reorder="reorder" in sys.argv[2:]), indent=1))
