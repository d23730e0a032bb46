"""Blind in-window attacks (RFC 5961) over a real TUN device: while Linux sends 10 MB to
`tcpwave serve hash`, an off-path attacker who knows the 4-tuple but not the sequence numbers
injects RSTs, SYNs and data with random sequence numbers. The transfer completes with the right
hash. In a namespace the test creates and removes; bounded in count and time."""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

pytestmark = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("ip") and os.path.exists("/dev/net/tun")),
    reason="needs root, iproute2 and /dev/net/tun")

CLIENT = r"""
import hashlib, socket, sys
n, ready = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.bind(("192.0.2.1", 40123))  # a port the attacker knows: only the sequence numbers are secret
s.connect(("192.0.2.2", 5001))
open(ready, "w").close()
block = bytes(range(256)) * 4096
h = hashlib.sha256(); sent = 0
while sent < n:
    chunk = block[: min(len(block), n - sent)]
    s.sendall(chunk); h.update(chunk); sent += len(chunk)
s.shutdown(socket.SHUT_WR)
answer = b"".join(iter(lambda: s.recv(4096), b""))
print("ok" if answer.decode() == h.hexdigest() else "MISMATCH " + answer.decode())
"""

ATTACK = r"""
import random, socket, struct, sys, time
seconds, rate = float(sys.argv[1]), int(sys.argv[2])
src, dst = socket.inet_aton("192.0.2.1"), socket.inet_aton("192.0.2.2")
rng = random.Random(7)

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def packet(flags, seq, ack, payload=b""):
    tcp = struct.pack("!HHIIBBHHH", 40123, 5001, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst) + tcp

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
t0, sent = time.monotonic(), 0
while time.monotonic() - t0 < seconds and sent < rate * seconds:  # bounded in time and count
    kind = sent % 3
    seq, ack = rng.getrandbits(32), rng.getrandbits(32)
    if kind == 0:
        p = packet(0x04, seq, 0)  # RST
    elif kind == 1:
        p = packet(0x02, seq, 0)  # SYN
    else:
        p = packet(0x18, seq, ack, b"poison" * 20)  # data with a random ACK
    s.sendto(p, ("192.0.2.2", 0))
    sent += 1
    if sent % 20 == 0:
        time.sleep(0.01)
print(sent)
"""


def test_blind_rst_syn_and_data_injection_does_not_break_a_transfer():
    ns = f"tcpwave-inject-{os.getpid()}"
    py = sys.executable
    subprocess.run(["ip", "netns", "add", ns], check=True)
    server = client = attack = None
    try:
        run = ["ip", "netns", "exec", ns]
        subprocess.run([*run, "ip", "link", "set", "lo", "up"], check=True)
        with tempfile.TemporaryDirectory() as tmp:
            ready, started = os.path.join(tmp, "ready"), os.path.join(tmp, "started")
            server = subprocess.Popen([*run, py, "-m", "tcpwave.cli.main", "serve", "hash", "--ready-file", ready,
                                       "--control", "none", "--no-offload"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 20
            while not os.path.exists(ready):
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            client = subprocess.Popen([*run, py, "-c", CLIENT, str(10_000_000), started], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            while not os.path.exists(started):
                assert client.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            attack = subprocess.Popen([*run, py, "-c", ATTACK, "4", "2000"], stdout=subprocess.PIPE, text=True)
            out, err = client.communicate(timeout=120)
            injected = int(attack.communicate(timeout=30)[0])
    finally:
        for proc in (attack, client, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert injected > 100
    assert out.strip() == "ok", (out, err[-1500:])
