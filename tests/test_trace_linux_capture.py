"""`tcpwave trace` on a capture of Linux talking to Linux: tcpdump records a connection between two
kernel sockets in a namespace the test creates (and removes); at three moments the test asks `ss`
for the kernel's own view of both ends. The states tcpwave infers from the capture alone must be
the kernel's states at those moments."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tcpwave.cli.main import main
from tcpwave.views import load

pytestmark = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("ip") and shutil.which("tcpdump") and shutil.which("ss")),
    reason="needs root, iproute2 (ip, ss) and tcpdump (./run test installs them)")

ADDR = "198.51.100.1"
PORT = 5555

# Runs inside the namespace: client and server are both kernel sockets, on the loopback device.
SCRIPT = r"""
import json, socket, subprocess, sys, time

pcap, iface, snap = sys.argv[1], sys.argv[2], sys.argv[3]
dump = subprocess.Popen(["tcpdump", "--immediate-mode", "-i", iface, "-s", snap, "-U", "-n", "-w", pcap,
                         f"tcp port {PORT}"],
                        stderr=subprocess.PIPE, text=True)
try:
    for line in dump.stderr:  # tcpdump says when it is capturing
        if "listening on" in line:
            break
    names = {"ESTAB": "ESTABLISHED", "FIN-WAIT-1": "FIN_WAIT_1", "FIN-WAIT-2": "FIN_WAIT_2",
             "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK", "TIME-WAIT": "TIME_WAIT", "CLOSING": "CLOSING",
             "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RCVD"}

    def ss():
        out = subprocess.run(["ss", "-tanH"], capture_output=True, text=True, check=True).stdout
        seen = {}
        for row in out.splitlines():
            f = row.split()
            if f[0] != "LISTEN" and (f[3].endswith(f":{PORT}") or f[4].endswith(f":{PORT}")):
                seen[f[3]] = names.get(f[0], f[0])
        return seen

    def until(want, limit=10.0):
        deadline = time.monotonic() + limit
        while True:
            seen = ss()
            if want(seen) or time.monotonic() > deadline:
                return {"t": time.time(), "ss": seen}
            time.sleep(0.01)

    lsock = socket.socket()
    lsock.bind((ADDR, PORT))
    lsock.listen()
    client = socket.create_connection((ADDR, PORT))
    server, _ = lsock.accept()
    cport = client.getsockname()[1]
    cname, sname = f"{ADDR}:{cport}", f"{ADDR}:{PORT}"
    client.sendall(b"x" * 20000)
    got = 0
    while got < 20000:
        got += len(server.recv(65536))
    server.sendall(b"y" * 3000)
    got = 0
    while got < 3000:
        got += len(client.recv(65536))
    checks = [until(lambda s: len(s) == 2)]
    client.shutdown(socket.SHUT_WR)  # the first wave: client FIN_WAIT_2, server CLOSE_WAIT
    checks.append(until(lambda s: s.get(cname) == "FIN_WAIT_2" and s.get(sname) == "CLOSE_WAIT"))
    server.close()  # the second: server LAST_ACK then CLOSED, client TIME_WAIT
    checks.append(until(lambda s: s.get(cname) == "TIME_WAIT" and sname not in s))
    print(json.dumps({"client": cname, "server": sname, "checks": checks}))
finally:
    dump.terminate()  # our own child, by PID; with --immediate-mode and -U every packet is written already
    dump.wait(10)
""".replace("{PORT}", str(PORT)).replace("PORT", str(PORT)).replace("ADDR", repr(ADDR))


def run_in_namespace(pcap: str, iface: str, snap: int = 262144) -> dict:
    name = f"tcpwave-lx{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        setup = f"ip link set lo up && ip addr add {ADDR}/32 dev lo"
        subprocess.run(["ip", "netns", "exec", name, "sh", "-c", setup], check=True)
        r = subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", SCRIPT, pcap, iface, str(snap)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _state_at(events: list[dict], host: str, t: float) -> str:
    state = "CLOSED"
    for e in events:
        if e["type"] == "state" and e["host"] == host and e["t"] <= t:
            state = e["to"]
    return state


@pytest.mark.parametrize("iface,snap", [("lo", 262144), ("any", 262144), ("lo", 128)])  # Ethernet framing on lo;
def test_states_inferred_from_a_tcpdump_capture_match_ss(tmp_path, iface, snap, capsys):  # SLL/SLL2 on any;
    pcap = str(tmp_path / "linux.pcap")  # and a header-only capture (tcpdump -s 128)
    run = run_in_namespace(pcap, iface, snap)
    views, skipped = load(pcap)
    assert len(views) == 1 and not skipped.get("truncated")
    v = views[0]
    assert max(e["len"] for e in v.events if e["type"] == "send") > 128  # lengths as on the wire, even with -s 128
    assert {v.left, v.right} == {run["client"], run["server"]}
    expected = [
        {run["client"]: "ESTABLISHED", run["server"]: "ESTABLISHED"},
        {run["client"]: "FIN_WAIT_2", run["server"]: "CLOSE_WAIT"},
        {run["client"]: "TIME_WAIT"},  # the server's socket is gone from ss: CLOSED
    ]
    for check, want in zip(run["checks"], expected, strict=True):
        assert check["ss"] == want, f"the kernel did not get there: {check}"
        for host in (run["client"], run["server"]):
            assert _state_at(v.events, host, check["t"]) == check["ss"].get(host, "CLOSED"), (host, check)
    client_path = [e["to"] for e in v.events if e["type"] == "state" and e["host"] == run["client"]]
    assert client_path == ["SYN_SENT", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]
    # and the command prints it, in seconds since the first packet (as Wireshark), or as times of day
    capsys.readouterr()
    assert main(["trace", pcap, "-f", "ladder"]) == 0
    rows = capsys.readouterr().out.splitlines()[3:]  # after the title, a blank line and the header
    assert rows[0].split()[0] == "0.000000" and "SYN" in rows[1]
    assert main(["trace", pcap, "-f", "ladder", "--absolute"]) == 0
    first = capsys.readouterr().out.splitlines()[3].split()[0]
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{6}", first), first
    assert main(["trace", pcap, "-f", "timeline"]) == 0
