"""Attacks over a real TUN device, in a namespace the test creates and removes: a SYN flood from
spoofed TEST-NET sources while curl fetches from `tcpwave serve http`. Bounded in count and time;
the spoofed sources (198.51.100.0/24) are blackholed inside the namespace, so nothing leaves it."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

pytestmark = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("ip") and os.path.exists("/dev/net/tun") and shutil.which("curl")),
    reason="needs root, iproute2, curl and /dev/net/tun")

FLOOD = r"""
import json, socket, struct, sys, time
rate, seconds, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
dst = socket.inet_aton("192.0.2.2")

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

packets = []
for i in range(4000):  # distinct spoofed sources and ports, TEST-NET-2 only
    src = socket.inet_aton("198.51.100.%d" % (1 + i % 250))
    sport = 1024 + i
    tcp = struct.pack("!HHIIBBHHH", sport, 80, i * 2654435761 & 0xFFFFFFFF, 0, 6 << 4, 0x02, 64240, 0, 0)
    tcp += struct.pack("!BBH", 2, 4, 1460)  # MSS option
    tcp = tcp[:12] + bytes([(6 << 4)]) + tcp[13:]
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, src, dst)
    packets.append(ip + tcp)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
t0 = time.monotonic(); sent = 0
while True:  # bounded: `seconds` long, at most rate * seconds packets
    now = time.monotonic() - t0
    if now >= seconds:
        break
    due = int(now * rate)
    while sent < due:
        s.sendto(packets[sent % len(packets)], ("192.0.2.2", 0))
        sent += 1
        if sent == rate:  # one second of flood is out: the client may start
            open(out + ".started", "w").close()
    time.sleep(0.001)
json.dump({"sent": sent, "seconds": time.monotonic() - t0}, open(out, "w"))
"""


def test_syn_flood_does_not_stop_a_real_client():
    """10,000 spoofed SYN/s for 10 s fill the SYN queue; SYN cookies answer the rest, and curl's 20
    requests to `tcpwave serve http` each complete within 1 s."""
    ns = f"tcpwave-flood-{os.getpid()}"
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        ready, stats = os.path.join(tmp, "ready"), os.path.join(tmp, "flood.json")
        control = os.path.join(tmp, "ctl.sock")
        subprocess.run(["ip", "netns", "add", ns], check=True)
        server = flood = None
        try:
            run = ["ip", "netns", "exec", ns]
            subprocess.run([*run, "ip", "link", "set", "lo", "up"], check=True)
            server = subprocess.Popen([*run, py, "-m", "tcpwave.cli.main", "serve", "http", "--ready-file", ready,
                                       "--control", control], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 20
            while not os.path.exists(ready):
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()[-800:]
                time.sleep(0.02)
            subprocess.run([*run, "ip", "route", "add", "blackhole", "198.51.100.0/24"], check=True)
            flood = subprocess.Popen([*run, py, "-c", FLOOD, "10000", "10", stats])
            deadline = time.monotonic() + 20
            while not os.path.exists(stats + ".started"):  # the flood is under way
                assert flood.poll() is None and time.monotonic() < deadline
                time.sleep(0.02)
            times = []
            for _ in range(20):
                r = subprocess.run([*run, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}",
                                    "--max-time", "5", "http://192.0.2.2/"], capture_output=True, text=True)
                code, took = r.stdout.split()
                times.append((code, float(took)))
            flood.wait(30)
            sent = json.load(open(stats))
        finally:
            for proc in (flood, server):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    proc.wait(10)
            subprocess.run(["ip", "netns", "del", ns], check=False)
    assert sent["sent"] / sent["seconds"] >= 9000  # the flood really ran at about 10,000 SYN/s
    assert all(code == "200" for code, _ in times), times
    assert max(t for _, t in times) <= 1.0, times
    print(f"flood {sent['sent'] / sent['seconds']:.0f} SYN/s; curl times {sorted(t for _, t in times)}")
