"""`tcpwave packetdrill --kernel`: the same scripts against the Linux kernel, over TUN, in a network
namespace per script that the run makes and that vanishes with it.

Needs root and /dev/net/tun (CI has both).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun"),
                                reason="--kernel needs root and /dev/net/tun")


def drill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tcpwave.cli.main", "packetdrill", "--kernel", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def drill_ok(*args):
    """A run expected to pass: a failure is retried, up to three runs in all. The kernel's own timers
    and our process run late on a loaded machine (a FIN 93 ms late, a poll() 17 ms late under a load
    of 8 on 2 CPUs); a real difference fails every time."""
    for _ in range(3):
        out = drill(*args)
        if out.returncode == 0:
            break
    return out


def test_a_short_conformance_script_prints_ok_against_linux():
    out = drill_ok("tests/conformance/close-active-four-way.pkt")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines() == ["ok    tests/conformance/close-active-four-way.pkt", "1 passed, 0 failed"]
    assert "tun0" not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout  # left nothing here


def test_a_deliberate_mistake_fails_at_its_line_against_linux(tmp_path):
    script = tmp_path / "wrong.pkt"
    script.write_text("""0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 < S 0:0(0) win 65535 <mss 1000>
+0 > S. 0:0(0) ack 1 <...>
+.1 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
+0 write(4, ..., 10) = 10
+0 > P. 1:11(10) ack 2
""")
    out = drill(str(script))
    assert out.returncode == 1
    assert out.stdout.startswith(f"FAIL  {script}:10: expected '> P. 1:11(10) ack 2'; sent '> P. 1:11(10) ack 1")


def test_calls_and_tcp_info_run_on_real_sockets(tmp_path):
    script = tmp_path / "calls.pkt"
    script.write_text("""--portable
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0 %{ assert tcpi_state == TCP_LISTEN and tcpi_state == TCPI_LISTEN }%
+0 < S 0:0(0) win 65535 <mss 1000>
+0 > S. 0:0(0) ack 1 <...>
+0...0.1 poll([{fd=3, events=POLLIN, revents=POLLIN}], 1, 1000) = 1
+.1 < . 1:1(0) ack 1 win 65535
+0 accept(3, ..., ...) = 4
+0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, tcpi_snd_mss=1000}, [...]) = 0
+0 < P. 1:11(10) ack 1 win 65535
+0 > . 1:1(0) ack 11
+0 ioctl(4, FIONREAD, [10]) = 0
+0 readv(4, [{..., 4}, {..., 6}], 2) = 10
%{
assert tcpi_state == TCP_ESTABLISHED
assert tcpi_snd_mss == 1000
}%
+0 `sysctl -q net.ipv4.tcp_fin_timeout=7`
+0 `test "$(cat /proc/sys/net/ipv4/tcp_fin_timeout)" = 7`
""")
    out = drill_ok("-v", str(script))
    assert out.returncode == 0, out.stdout
    assert "shell ran: sysctl -q net.ipv4.tcp_fin_timeout=7" in out.stdout
    with open("/proc/sys/net/ipv4/tcp_fin_timeout") as f:
        assert f.read().strip() != "7"  # it ran in the script's namespace, not here



def test_tun0_an_init_command_and_freebsd_sysctl_names_as_packetdrill(tmp_path):
    script = tmp_path / "freebsd.pkt"
    script.write_text("""`sysctl -q net.inet.tcp.rfc1323=0 net.inet.tcp.msl=2000`
0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 `test "$(cat /proc/sys/net/ipv4/tcp_timestamps)$(cat /proc/sys/net/ipv4/tcp_window_scaling)" = 00`
+0 `ip link show tun0 && test -n "$PACKETDRILL_PID"`
+0 close(3) = 0
""")
    out = drill("-v", str(script))
    assert out.returncode == 0, out.stdout
    assert "line 1: net.inet.tcp.msl=2000 has no Linux equivalent: not applied" in out.stdout
    assert "shell ran: sysctl -q net.ipv4.tcp_timestamps=0 net.ipv4.tcp_window_scaling=0" in out.stdout
    out = drill("--tun_device=pdx0", str(script))  # another name: tun0 is not there
    assert out.returncode == 1 and f"{script}:4: shell command failed" in out.stdout, out.stdout


def linux_results() -> list[tuple[str, float, str, str]]:
    """docs/linux-results.tsv (written by docs/linux_results.py): script, seconds, default, portable."""
    rows = []
    for line in (ROOT / "docs" / "linux-results.tsv").read_text().splitlines()[1:]:
        name, seconds, rest = line.split("\t", 2)
        default, _, portable = rest.partition(" || ")
        rows.append((name, float(seconds), default, portable))
    return rows


def test_the_docs_table_shows_the_recorded_linux_result_of_every_script():
    docs = (ROOT / "docs" / "packetdrill.md").read_text()
    for name, _, default, portable in linux_results():
        row = next(line for line in docs.splitlines() if f"| `{name}` |" in line)
        want = "ok |" if default == "ok" else "ok with --portable |" if portable == "ok" else "differs"
        assert want in row or "not run" in row, row


def test_every_short_script_linux_passes_passes_on_linux_again():
    """The scripts of up to 15 s that the table marks ok on Linux (in CI: about a minute)."""
    # the longest first: four workers take the next script as one finishes, so a 10 s script started
    # last would keep the run going alone after the others ended
    rows = sorted((r for r in linux_results() if r[1] <= 15), key=lambda r: -r[1])
    for portable in (False, True):
        files = [f"tests/conformance/{name}" for name, _, default, port in rows
                 if (port == "ok" and default != "ok" if portable else default == "ok")]
        assert portable or len(files) >= 50
        if files:
            mode = ["--portable"] if portable else []
            out = drill("-j", "4", *mode, *files)  # (scripts mostly wait: four at once on two CPUs)
            failed = _failed(out.stdout)
            if not failed:
                assert out.returncode == 0, out.stdout[-2000:]
            for _ in range(3):  # the kernel's own timers run a jiffy or two late on a busy machine (a load
                if not failed:  # of 9 on 2 CPUs made segments 12-35 ms late): again, one at a time, up to
                    break  # three times; a real difference fails every time
                again = drill(*mode, *failed)
                failed = _failed(again.stdout)
            assert not failed, "\n".join(line for line in again.stdout.splitlines() if "FAIL" in line)


def _failed(stdout: str) -> list[str]:
    """The scripts a `tcpwave packetdrill` run reports as failed."""
    return [line.split()[1].split(":")[0] for line in stdout.splitlines() if line.startswith("FAIL")]
