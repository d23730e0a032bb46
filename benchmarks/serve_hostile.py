"""Two of the hostile-peer figures of `tcpwave serve`, over a real TUN device (issue 21):

1. heads: three pipelined `HEAD /bytes/1073741824` in one segment, sent again and again for a few
   seconds, while another client asks for `/` over and over: the server's peak RSS over its idle
   RSS (target: < 50 MB) and the other client's slowest answer (target: < 100 ms).
2. resets: echo connections whose client sends without reading until the server stops reading
   (back-pressure), then resets them all (SO_LINGER 0), in batches: the server's RSS after each
   batch, against its idle RSS (target: back within 20% once they are gone).

    sudo .venv/bin/python benchmarks/serve_hostile.py [--seconds 5] [--connections 2000] [--batch 500]

Root only; everything runs in a network namespace made here and removed at the end, with TEST-NET
addresses. RSS is read from /proc/PID/status. Bounded in count and time.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from netns import namespace, wait_for_file  # noqa: E402

MB = 1 << 20

ATTACK = r"""
import socket, sys, time
stop = time.monotonic() + float(sys.argv[1])
rounds = 0
while time.monotonic() < stop:  # a connection 20 times a second, three HEADs in one segment on each
    time.sleep(0.05)
    s = socket.create_connection(("192.0.2.2", 80), timeout=20)
    s.sendall(b"HEAD /bytes/1073741824 HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
    data = b""
    while data.count(b"\r\n\r\n") < 3:
        data += s.recv(65536)
    s.close()
    rounds += 1
print(rounds)
"""

PROBE = r"""
import json, socket, sys, time
stop = time.monotonic() + float(sys.argv[1])
times = []
probe = socket.create_connection(("192.0.2.2", 80), timeout=20)
while time.monotonic() < stop:  # another client: / again and again, 100 times a second
    t0 = time.monotonic()
    probe.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    page = b""
    while b"</html>" not in page:
        page += probe.recv(65536)
    times.append(time.monotonic() - t0)
    time.sleep(0.01)
times.sort()
print(json.dumps({"probes": len(times), "median": times[len(times) // 2], "max": times[-1]}))
"""

RESETS = r"""
import json, select, socket, struct, sys, time
n = int(sys.argv[1])
socks = []
for _ in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing: the echo backs up
    s.connect(("192.0.2.2", 7))
    s.setblocking(False)
    socks.append(s)
chunk, sent, ended = b"x" * 65536, [0] * n, set()
deadline = time.monotonic() + 60
stalled_since = None
while time.monotonic() < deadline:  # send until no socket takes more for a second: all back-pressured
    progress = False
    for i, s in enumerate(socks):
        if i in ended:
            continue
        try:
            sent[i] += s.send(chunk)
            progress = True
        except BlockingIOError:
            pass
        except OSError:  # the server reset it (its memory budget resets the largest consumers)
            ended.add(i)
    if progress:
        stalled_since = None
    elif stalled_since is None:
        stalled_since = time.monotonic()
    elif time.monotonic() - stalled_since > 1.0:
        break
    if not progress:
        time.sleep(0.01)
open(sys.argv[2], "w").close()
sys.stdin.readline()  # the server's memory is read now
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()  # a RST
print(json.dumps({"sent_mb": sum(sent) / (1 << 20), "reset_by_server": len(ended)}))
"""


def rss(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}


def settle(pid: int, seconds: float = 3.0) -> int:
    """RSS after `seconds` (the server trims its heap at most once a second after connections end)."""
    time.sleep(seconds)
    return rss(pid)["VmRSS"]


def released(pid: int, idle: int, seconds: float = 15.0) -> tuple[int, float]:
    """RSS once within 20% of idle, or after `seconds`; and how long that took."""
    t0 = time.monotonic()
    while (now := rss(pid)["VmRSS"]) > 1.2 * idle and time.monotonic() - t0 < seconds:
        time.sleep(0.1)
    return now, time.monotonic() - t0


def serve(ns, tmp: str, service: str):
    ready = os.path.join(tmp, f"ready-{service}")
    server = ns.popen(sys.executable, "-m", "tcpwave.cli.main", "serve", service, "--ready-file", ready,
                      "--control", "none", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_file(ready, server)
    return server


def heads(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-bheads") as ns:
        server = serve(ns, tmp, "http")
        idle = settle(server.pid)
        probe = ns.popen(sys.executable, "-c", PROBE, str(seconds + 1), stdout=subprocess.PIPE, text=True)
        attack = ns.call(sys.executable, "-c", ATTACK, str(seconds), capture_output=True, text=True,
                         timeout=seconds + 60)
        out, _ = probe.communicate(timeout=60)
        peak = rss(server.pid)["VmHWM"]
        server.terminate()
        server.wait(20)
    assert attack.returncode == 0 and probe.returncode == 0, attack.stderr
    got = json.loads(out)
    print(f"heads: {attack.stdout.strip()} rounds of 3 pipelined HEAD /bytes/1073741824 in {seconds:g} s; "
          f"peak RSS {(peak - idle) / MB:+.1f} MB over idle ({idle / MB:.1f} MB); another client's {got['probes']} "
          f"requests for / took {got['median'] * 1000:.1f} ms median, {got['max'] * 1000:.1f} ms at most")


def resets(connections: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-bresets") as ns:
        server = serve(ns, tmp, "echo")
        idle = settle(server.pid)
        print(f"resets: echo idle RSS {idle / MB:.1f} MB")
        done = 0
        while done < connections:
            n = min(batch, connections - done)
            up = os.path.join(tmp, f"up-{done}")
            client = ns.popen(sys.executable, "-c", RESETS, str(n), up, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
            wait_for_file(up, client, seconds=120)
            held = rss(server.pid)["VmRSS"]
            out, _ = client.communicate("\n", timeout=60)
            done += n
            after, took = released(server.pid, idle)
            got = json.loads(out)
            print(f"  {done} connections: {n} back-pressured ({got['sent_mb']:.0f} MB sent, {got['reset_by_server']} "
                  f"reset by the server meanwhile), server "
                  f"RSS {held / MB:.1f} MB; {took:.1f} s after their resets {after / MB:.1f} MB "
                  f"({(after - idle) / idle * 100:+.0f}% of idle)")
        server.terminate()
        server.wait(20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0, help="heads: how long (default 5)")
    ap.add_argument("--connections", type=int, default=2000, help="resets: how many in all (default 2000)")
    ap.add_argument("--batch", type=int, default=500, help="resets: how many at once (default 500)")
    ap.add_argument("--only", choices=("heads", "resets"), help="run one of the two")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("serve_hostile.py: needs root (a network namespace and a TUN device)")
    if a.only != "resets":
        heads(a.seconds)
    if a.only != "heads":
        resets(a.connections, a.batch)


if __name__ == "__main__":
    main()
