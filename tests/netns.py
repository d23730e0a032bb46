"""Throwaway network namespaces for the tests that need a real kernel: made here, removed at the end
(also on failure), with every process started in them ended by its PID."""

import contextlib
import os
import shutil
import subprocess
import time

import pytest

needs_netns = pytest.mark.skipif(
    not (os.geteuid() == 0 and shutil.which("ip") and os.path.exists("/dev/net/tun")),
    reason="needs root, iproute2 and /dev/net/tun")


class Namespace:
    def __init__(self, name: str):
        self.name = name
        self.run = ["ip", "netns", "exec", name]
        self._procs: list[subprocess.Popen] = []

    def popen(self, *cmd, **kw) -> subprocess.Popen:
        proc = subprocess.Popen([*self.run, *cmd], **kw)
        self._procs.append(proc)
        return proc

    def call(self, *cmd, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self.run, *cmd], **kw)

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def namespace(prefix: str):
    name = f"{prefix}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    ns = Namespace(name)
    try:
        ns.call("ip", "link", "set", "lo", "up", check=True)
        yield ns
    finally:
        ns.stop_all()
        subprocess.run(["ip", "netns", "del", name], check=False)


def run_command(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """subprocess.run(cmd, capture_output=True, text=True, timeout=timeout), whose result also has the
    command's `pid`: tcpwave names the namespaces it makes by its PID, and a test checks that its own
    are gone, not that none is there (another run of the suite may have its own up meanwhile)."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            proc.kill()
            raise
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    done.pid = proc.pid  # type: ignore[attr-defined]
    return done


def namespaces_of(stem: str, pid: int) -> list[str]:
    """The network namespaces named `{stem}{pid}` or `{stem}{pid}-...` (as tcpwave names them)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    names = [line.split()[0] for line in listed.splitlines() if line.strip()]
    return [n for n in names if n == f"{stem}{pid}" or n.startswith(f"{stem}{pid}-")]


def wait_until(condition, proc: subprocess.Popen, seconds: float = 20) -> None:
    """Poll `condition` (a file appearing, a port listening) while `proc` is alive, within a bound."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, f"the process ended early ({proc.returncode})"
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def wait_for_file(path: str, proc: subprocess.Popen, seconds: float = 20) -> None:
    wait_until(lambda: os.path.exists(path), proc, seconds)


# For the raw-socket programs the attack tests run inside a namespace: the Internet checksum and a
# TCP segment builder (checksummed over the pseudo-header), from TEST-NET addresses only.
RAW_TCP = r'''
import socket, struct

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def tcp_packet(src, dst, sport, dport, seq, ack, flags, payload=b"", options=b""):
    """An IPv4 packet with one TCP segment (src, dst: 4-byte addresses)."""
    offset = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, 65535, 0, 0) + options + payload
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, dst) + tcp
'''
