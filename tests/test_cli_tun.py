"""`tcpwave fetch` against Linux's own `python -m http.server`, and `tcpwave connect` against a Linux
echo server, each in a network namespace the test creates and removes."""

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("ip") and os.path.exists("/dev/net/tun")),
    reason="needs root, iproute2 and /dev/net/tun")

WAIT_LISTENING = "for i in $(seq 200); do ss -ltnH | grep -q ':{port} ' && break; sleep 0.02; done"


def in_namespace(script: str, timeout: float = 120) -> subprocess.CompletedProcess:
    name = f"tcpwave-cli{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        return subprocess.run(["ip", "netns", "exec", name, "sh", "-c", "ip link set lo up\n" + script],
                              capture_output=True, timeout=timeout)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_fetch_from_linux_http_server(tmp_path):
    body = os.urandom(400_000)
    (tmp_path / "blob.bin").write_bytes(body)
    py = sys.executable
    r = in_namespace(f"""
{py} -m http.server --bind 0.0.0.0 8000 --directory {tmp_path} >/dev/null 2>&1 &
srv=$!
{WAIT_LISTENING.format(port=8000)}
{py} -m tcpwave.cli.main fetch http://192.0.2.1:8000/blob.bin
rc=$?
kill $srv
exit $rc
""")
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert r.stdout == body


def test_fetch_reports_http_errors_in_its_exit_status(tmp_path):
    py = sys.executable
    r = in_namespace(f"""
{py} -m http.server --bind 0.0.0.0 8000 --directory {tmp_path} >/dev/null 2>&1 &
srv=$!
{WAIT_LISTENING.format(port=8000)}
{py} -m tcpwave.cli.main fetch http://192.0.2.1:8000/missing
rc=$?
kill $srv
exit $rc
""")
    assert r.returncode == 22


def test_connect_is_netcat_with_half_close():
    py = sys.executable
    echo = ("import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            "s.bind(('0.0.0.0',7007));s.listen();c,_=s.accept();"
            "[c.sendall(b) for b in iter(lambda:c.recv(65536),b'')];c.close()")
    r = in_namespace(f"""
{py} -c "{echo}" &
srv=$!
{WAIT_LISTENING.format(port=7007)}
printf 'hello over tcpwave\\n' | {py} -m tcpwave.cli.main connect 192.0.2.1 7007
rc=$?
wait $srv
exit $rc
""")
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert r.stdout == b"hello over tcpwave\n"  # sent, half-closed, echoed back, closed


def test_connect_to_a_closed_linux_port_is_refused():
    r = in_namespace(f"{sys.executable} -m tcpwave.cli.main connect 192.0.2.1 9 </dev/null")
    assert r.returncode == 1
    assert b"ConnectionRefusedError" in r.stderr


def test_connect_that_times_out_says_so():
    # Linux drops SYNs to the kernel side's port when a firewall rule says so: nobody answers
    r = in_namespace("iptables -A INPUT -p tcp --dport 9 -j DROP 2>/dev/null || exit 77\n"
                     f"{sys.executable} -m tcpwave.cli.main connect 192.0.2.1 9 --timeout 1.5 --no-offload </dev/null")
    if r.returncode == 77:
        pytest.skip("needs iptables (./run test installs it)")
    assert r.returncode == 1
    line = r.stderr.decode().strip()
    assert line == ("tcpwave connect: TimeoutError: no answer from 192.0.2.1:9 within 1.5 s (--timeout); "
                    "the SYN went unanswered"), line


def test_the_device_queues_what_a_burst_brings_not_just_linuxs_500_packets():
    """A flood's sender can hold a CPU for a time slice while tcpwave waits: the device's queue (one
    ring per queue, each txqueuelen long) must hold more than Linux's TUN default of 500."""
    py = sys.executable
    r = in_namespace(f"{py} -c \"from tcpwave.drivers.tun import TunDevice; d = TunDevice('tcpwq1', '192.0.2.1/24', "
                     f"'192.0.2.2', queues=2); print(open('/sys/class/net/tcpwq1/tx_queue_len').read())\"")
    assert r.returncode == 0, r.stderr.decode()
    assert int(r.stdout) == 1024


def test_a_second_serve_on_a_busy_device_says_so_in_one_line():
    ready = f"/tmp/tcpwave-busy-{os.getpid()}"
    r = in_namespace(f"rm -f {ready}; {sys.executable} -m tcpwave.cli.main serve echo --control none "
                     f"--ready-file {ready} & pid=$!\n"
                     f"for i in $(seq 500); do [ -e {ready} ] && break; sleep 0.02; done; rm -f {ready}\n"
                     f"{sys.executable} -m tcpwave.cli.main serve discard --control none; rc=$?\n"
                     "kill $pid; wait $pid; exit $rc")
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "TUN device tcpw0 is in use by pid " in err and "serve echo" in err and "Traceback" not in err, err
