"""Blind in-window attacks (RFC 5961) over a real TUN device: while Linux sends 10 MB to
`tcpwave serve hash`, an off-path attacker who knows the 4-tuple but not the sequence numbers
injects RSTs, SYNs and data with random sequence numbers. The transfer completes with the right
hash. In a namespace the test creates and removes; bounded in count and time."""

import math
import os
import subprocess
import sys
import tempfile

from netns import RAW_TCP, namespace, needs_netns, wait_for_file

pytestmark = needs_netns

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

ATTACK = RAW_TCP + r"""
import random, sys, time
seconds, rate = float(sys.argv[1]), int(sys.argv[2])
src, dst = socket.inet_aton("192.0.2.1"), socket.inet_aton("192.0.2.2")
rng = random.Random(7)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
t0, sent = time.monotonic(), 0
while time.monotonic() - t0 < seconds and sent < rate * seconds:  # bounded in time and count
    seq, ack = rng.getrandbits(32), rng.getrandbits(32)
    kind = sent % 3
    if kind == 0:
        p = tcp_packet(src, dst, 40123, 5001, seq, 0, 0x04)  # RST
    elif kind == 1:
        p = tcp_packet(src, dst, 40123, 5001, seq, 0, 0x02)  # SYN
    else:
        p = tcp_packet(src, dst, 40123, 5001, seq, ack, 0x18, b"poison" * 20)  # data, a random ACK
    s.sendto(p, ("192.0.2.2", 0))
    sent += 1
    if sent % 20 == 0:
        time.sleep(0.01)
print(sent)
"""


def test_blind_rst_syn_and_data_injection_does_not_break_a_transfer():
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-inject") as ns:
        ready, started = os.path.join(tmp, "ready"), os.path.join(tmp, "started")
        server = ns.popen(py, "-m", "tcpwave.cli.main", "serve", "hash", "--ready-file", ready, "--control", "none",
                          "--no-offload", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_file(ready, server)
        client = ns.popen(py, "-c", CLIENT, str(10_000_000), started, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
        wait_for_file(started, client)
        attack = ns.popen(py, "-c", ATTACK, "4", "2000", stdout=subprocess.PIPE, text=True)
        out, err = client.communicate(timeout=120)
        injected = int(attack.communicate(timeout=30)[0])
    assert injected > 100
    assert out.strip() == "ok", (out, err[-1500:])


def _challenge_acks():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
    import challenge_acks
    return challenge_acks


def test_challenge_acks_under_a_flood_stay_within_the_per_connection_limit():
    """50 idle connections, 4,000 forged RSTs and SYNs a second for 2 s: each connection answers
    at most once per invalid_ratelimit (0.5 s), and does answer (the challenge ACKs exist)."""
    r = _challenge_acks().run(connections=50, rate=4000, seconds=2.0, knobs=[])
    assert r["injected"] > 2000
    assert 50 <= r["acks"] <= 50 * (r["seconds"] / 0.5 + 2)


def test_challenge_acks_under_a_flood_stay_within_the_stack_budget():
    """With the per-connection limit off, 4,000 forged SYNs a second would each draw an ACK: the
    stack's budget (challenge_ack_limit, at most 1.5 x 1000 in any second) holds them back."""
    r = _challenge_acks().run(connections=50, rate=8000, seconds=2.0, knobs=["invalid_ratelimit=0"])
    assert r["injected"] > 8000
    assert 1000 <= r["acks"] <= 1500 * (math.ceil(r["seconds"]) + 1)  # (a flood of 2 s touches 3 seconds)
