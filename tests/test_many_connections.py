"""Scale over a real TUN device: a Linux client holds 10,000 concurrent connections to
`tcpwave serve echo`, and every one echoes its own bytes. In a namespace the test creates and
removes; the client raises its own file limit."""

import json
import os
import subprocess
import sys
import tempfile

from netns import namespace, needs_netns, wait_for_file

pytestmark = needs_netns

CLIENT = r"""
import json, resource, selectors, socket, sys, time
n = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n + 100), max(hard, n + 100)))
t0 = time.monotonic()
socks = []
for i in range(n):  # all open at once: each stays connected until every one has echoed
    s = socket.create_connection(("192.0.2.2", 7), timeout=20)
    s.sendall(b"%08d" % i)
    socks.append(s)
opened = time.monotonic() - t0
good = 0
for i, s in enumerate(socks):
    s.settimeout(20)
    data = b""
    while len(data) < 8:
        chunk = s.recv(8 - len(data))
        if not chunk:
            break
        data += chunk
    good += data == b"%08d" % i
held = sum(1 for s in socks if s.fileno() >= 0)
for s in socks:
    s.close()
print(json.dumps({"good": good, "held": held, "open_seconds": opened, "seconds": time.monotonic() - t0}))
"""


def test_ten_thousand_concurrent_connections_all_echo():
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp, namespace("tcpwave-many") as ns:
        ready = os.path.join(tmp, "ready")
        server = ns.popen(py, "-m", "tcpwave.cli.main", "serve", "echo", "--ready-file", ready, "--control", "none",
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_file(ready, server)
        r = ns.call(py, "-c", CLIENT, "10000", capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-1500:]
    result = json.loads(r.stdout)
    assert result["held"] == 10_000 and result["good"] == 10_000, result
    print(result)
