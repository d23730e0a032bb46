"""The CLI tells the truth (issue 23, defects 7-11): its own pcaps carry wall-clock times, Ctrl-C
leaves no peer hanging, bad input is one line on stderr (never a traceback), doctor's lines come
from checks it made, and small lies (a 404 body as output, a wedging knob, silence) are gone.
Tests that touch a kernel do it in namespaces they create and remove, with TEST-NET addresses."""

import argparse
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

import pytest
from netns import namespace, needs_netns, wait_until

TCPWAVE = [sys.executable, "-m", "tcpwave.cli.main"]


def _one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    err = r.stderr if isinstance(r.stderr, str) else r.stderr.decode()
    assert r.returncode not in (0, None), (r.returncode, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], err
    return lines[0]


def _listening(ns, port: int) -> bool:
    return f":{port} ".encode() in ns.call("ss", "-ltnH", capture_output=True).stdout


def _pcap_times(path: str) -> list[float]:
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data)[0]
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    times, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from("<IIII", data, off)
        times.append(sec + frac * scale)
        off += 16 + incl
    return times


# ---- 7: wall-clock pcap times -----------------------------------------------------------------

@needs_netns
def test_own_pcaps_carry_wall_clock_times(tmp_path):
    (tmp_path / "x.bin").write_bytes(os.urandom(20_000))
    fetch_pcap, connect_pcap = str(tmp_path / "fetch.pcap"), str(tmp_path / "connect.pcap")
    with namespace("tcpwave-truth-pcap") as ns:
        srv = ns.popen(sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "8000", "--directory",
                       str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _listening(ns, 8000), srv)
        r = ns.call(*TCPWAVE, "fetch", "--pcap", fetch_pcap, "http://192.0.2.1:8000/x.bin", capture_output=True,
                    timeout=60)
        assert r.returncode == 0, r.stderr
        r = ns.call(*TCPWAVE, "connect", "--pcap", connect_pcap, "192.0.2.1", "8000", input=b"GET / HTTP/1.0\r\n\r\n",
                    capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
    now = time.time()
    for path in (fetch_pcap, connect_pcap):
        times = _pcap_times(path)
        assert len(times) >= 5, path
        assert all(abs(t - now) < 60 for t in times), (path, times[:3], now)
        assert times == sorted(times)


# ---- 8: Ctrl-C leaves no peer hanging -------------------------------------------------------------

def _kernel_states(ns, port: int) -> list[str]:
    out = ns.call("ss", "-tanH", capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if f":{port} " in ln + " " and not ln.startswith("LISTEN")]


ECHO_UNTIL_EOF = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                  "s.bind(('0.0.0.0',7009));s.listen();c,_=s.accept();c.sendall(b'hello\\n');"
                  "open(sys.argv[1],'w').close()\n"
                  "while c.recv(100): pass\n"
                  "c.close();import time;time.sleep(30)")


def _interrupt(name: str, peer_script: str, port: int, *command: str, hello: bytes = b""):
    """Run the kernel-side `peer_script` (it creates the file argv[1] once it has served) and tcpwave
    `command` against it; Ctrl-C tcpwave then. Returns tcpwave's exit status, its stderr and the
    states the kernel still has for the port once they stop changing (polled for up to 10 s)."""
    with tempfile.TemporaryDirectory() as tmp, namespace(name) as ns:
        served = os.path.join(tmp, "served")
        peer = ns.popen(sys.executable, "-c", peer_script, served)
        wait_until(lambda: _listening(ns, port), peer)
        proc = ns.popen(*TCPWAVE, *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: os.path.exists(served), proc)
        if hello:
            assert proc.stdout.readline() == hello
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while (left := _kernel_states(ns, port)) and time.monotonic() < deadline:
            time.sleep(0.1)
    return proc.returncode, proc.stderr.read().decode(), left


@needs_netns
def test_ctrl_c_on_connect_closes_both_sides():
    rc, err, left = _interrupt("tcpwave-truth-cc", ECHO_UNTIL_EOF, 7009, "connect", "192.0.2.1", "7009",
                               hello=b"hello\n")
    assert rc == 130 and err.strip() == "tcpwave connect: interrupted", err
    assert left == [], left  # the kernel's socket is gone: our FIN came, its app closed, its FIN was acked


FLOOD_UNTIL_RESET = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                     "s.bind(('0.0.0.0',7010));s.listen();c,_=s.accept();n=0\n"
                     "try:\n"
                     "    while True:\n"
                     "        n+=c.send(b'x'*65536)\n"
                     "        if n>=400000 and n-65536<400000: open(sys.argv[1],'w').close()\n"
                     "except OSError: pass\n"
                     "import time;time.sleep(30)")


@needs_netns
def test_ctrl_c_on_connect_with_data_unread_resets():
    """Nobody reads connect's stdout, the peer keeps sending: Ctrl-C is still heard, and the data
    left unread makes it a reset, as Linux's close() does."""
    rc, err, left = _interrupt("tcpwave-truth-cr", FLOOD_UNTIL_RESET, 7010, "connect", "192.0.2.1", "7010")
    assert rc == 130 and err.strip() == "tcpwave connect: interrupted", err
    assert left == [], left


SLOW_BODY = ("import socket,sys,time;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
             "s.bind(('0.0.0.0',8009));s.listen();c,_=s.accept();c.recv(1000);"
             "c.sendall(b'HTTP/1.1 200 OK\\r\\nContent-Length: 100000000\\r\\n\\r\\n'+b'x'*50000);"
             "open(sys.argv[1],'w').close()\n"
             "try:\n"
             "    while True: c.send(b'x'*1000); time.sleep(0.05)\n"
             "except OSError: pass\n"
             "time.sleep(30)")


@needs_netns
def test_ctrl_c_on_fetch_mid_body_resets():
    rc, err, left = _interrupt("tcpwave-truth-cf", SLOW_BODY, 8009, "fetch", "http://192.0.2.1:8009/")
    assert rc == 130 and "Traceback" not in err, err
    assert left == [], left  # not CLOSE-WAIT sending into a closed stack: reset


# ---- 9: one line, not a traceback ---------------------------------------------------------------

@needs_netns
def test_fetch_errors_are_one_line():
    with namespace("tcpwave-truth-f") as ns:
        ns.call("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv4.ip_forward=1", check=True)
        # a router with no route to TEST-NET-2: it answers ICMP network unreachable
        r = ns.call(*TCPWAVE, "fetch", "--timeout", "20", "http://198.51.100.7/", capture_output=True, timeout=60)
        _one_line_error(r, "unreachable")
        r = ns.call(*TCPWAVE, "fetch", "https://192.0.2.1/", capture_output=True, timeout=60)
        _one_line_error(r, "https")
        r = ns.call(*TCPWAVE, "fetch", "http://localhost:8000/", capture_output=True, timeout=60)
        _one_line_error(r, "localhost", "loopback")
        r = ns.call(*TCPWAVE, "fetch", "http://no-such-host.invalid/", capture_output=True, timeout=60)
        _one_line_error(r, "no-such-host.invalid")


def test_output_paths_are_checked_before_the_run(tmp_path):
    missing = str(tmp_path / "nonexistent" / "x")
    for args in (["demo", "--html", missing + ".html"], ["demo", "--svg", missing + ".svg"],
                 ["demo", "--events", missing + ".jsonl"], ["demo", "--pcap", missing + ".pcap"],
                 ["serve", "echo", "--ready-file", missing], ["watch", "--html", missing, "--", "true"],
                 ["fetch", "--pcap", missing, "http://192.0.2.1/"]):
        r = subprocess.run([*TCPWAVE, *args], capture_output=True, text=True, timeout=60)
        line = _one_line_error(r, missing)
        assert "no directory" in line, line
    assert not (tmp_path / "nonexistent").exists()


def test_doctor_bad_address_is_one_line():
    r = subprocess.run([*TCPWAVE, "doctor", "--addr", "300.1.1.1"], capture_output=True, text=True, timeout=60)
    _one_line_error(r, "300.1.1.1")


# ---- 10: doctor says what it checked ------------------------------------------------------------

@needs_netns
def test_doctor_reports_a_missing_route_and_loopback():
    with namespace("tcpwave-truth-doc") as ns:
        assert ns.call(*TCPWAVE, "tun", "add", "tcpwt0", "--user", "nobody", capture_output=True).returncode == 0
        ns.call("ip", "route", "del", "192.0.2.0/24", "dev", "tcpwt0", check=True)
        r = ns.call(*TCPWAVE, "doctor", "--tun", "tcpwt0", capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        fails = [ln for ln in r.stdout.splitlines() if ln.startswith("FAIL")]
        assert any("no route to 192.0.2.2" in f for f in fails), r.stdout
        assert "ip route add 192.0.2.2 dev tcpwt0" in r.stdout
        if "check the failures above" in r.stdout:
            assert r.stdout.index(fails[0]) < r.stdout.index("check the failures above")
        ns.call("ip", "route", "add", "192.0.2.0/24", "dev", "tcpwt0", check=True)
        r = ns.call(*TCPWAVE, "doctor", "--tun", "tcpwt0", "--addr", "127.0.0.1", capture_output=True, text=True,
                    timeout=60)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert "ip addr del 127.0.0.1" not in r.stdout, r.stdout
        assert "loopback" in r.stdout, r.stdout
        ns.call(*TCPWAVE, "tun", "del", "tcpwt0", capture_output=True)


@needs_netns
def test_doctor_never_points_at_failures_it_did_not_print():
    with namespace("tcpwave-truth-doc2") as ns:
        assert ns.call(*TCPWAVE, "tun", "add", "tcpwt1", "--user", "nobody", capture_output=True).returncode == 0
        ns.call("iptables", "-A", "INPUT", "-i", "tcpwt1", "-p", "tcp", "-j", "DROP", check=True)
        r = ns.call(*TCPWAVE, "doctor", "--tun", "tcpwt1", capture_output=True, text=True, timeout=60)
        ns.call(*TCPWAVE, "tun", "del", "tcpwt1", capture_output=True)
    fails = [ln for ln in r.stdout.splitlines() if ln.startswith("FAIL")]
    assert r.returncode == 1 and len(fails) == 1 and "drew no answer" in fails[0], r.stdout
    assert "failures above" not in r.stdout, r.stdout


# ---- 11: smaller lies ------------------------------------------------------------------------------

@needs_netns
def test_fetch_404_says_so_on_stderr_and_prints_no_body(tmp_path):
    pcap = str(tmp_path / "f.pcap")
    with namespace("tcpwave-truth-404") as ns:
        srv = ns.popen(sys.executable, "-m", "http.server", "--bind", "0.0.0.0", "8000", "--directory",
                       str(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _listening(ns, 8000), srv)
        r = ns.call(*TCPWAVE, "fetch", "http://192.0.2.1:8000/missing", capture_output=True, timeout=60)
        failed = ns.call(*TCPWAVE, "fetch", "--pcap", pcap, "http://192.0.2.1:8001/", capture_output=True,
                         timeout=60)
    assert r.returncode == 22 and r.stdout == b""
    assert _one_line_error(r, "404").startswith("tcpwave fetch: HTTP 404")
    assert failed.returncode == 1
    assert not os.path.exists(pcap) or os.path.getsize(pcap) > 24  # no empty capture left behind


@needs_netns
def test_tun_add_names_and_queues():
    with namespace("tcpwave-truth-tun") as ns:
        r = ns.call(*TCPWAVE, "tun", "add", "a-name-of-16-chr", "--user", "nobody", capture_output=True, text=True)
        _one_line_error(r, "15")
        off = dict(os.environ, TCPWAVE_STEERING="off")  # (else every device `tun add` makes is multi-queue)
        assert ns.call(*TCPWAVE, "tun", "add", "tcpwq0", "--user", "nobody", capture_output=True,
                       env=off).returncode == 0
        assert not int(open_in(ns, "/sys/class/net/tcpwq0/tun_flags"), 16) & 0x100  # single-queue
        r = ns.call(*TCPWAVE, "serve", "echo", "--tun", "tcpwq0", "--workers", "2", "--control", "none",
                    capture_output=True, text=True, timeout=60)
        _one_line_error(r, "single-queue", "--queues")
        ns.call(*TCPWAVE, "tun", "del", "tcpwq0", check=True, capture_output=True)
        r = ns.call(*TCPWAVE, "tun", "add", "tcpwq0", "--user", "nobody", "--queues", "2", capture_output=True,
                    text=True)
        assert r.returncode == 0, r.stderr
        flags = int(open_in(ns, "/sys/class/net/tcpwq0/tun_flags"), 16)
        assert flags & 0x100  # IFF_MULTI_QUEUE
        ns.call(*TCPWAVE, "tun", "del", "tcpwq0", check=True, capture_output=True)


def open_in(ns, path: str) -> str:
    return ns.call("cat", path, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("knob", ["recv_buffer=0", "send_buffer=-1", "mss=10", "syn_retries=1000",
                                  "initial_cwnd_segments=0", "syncookies=3", "keepalive_count=0"])
def test_knobs_out_of_range_are_refused(knob):
    r = subprocess.run([*TCPWAVE, "demo", "lossy", "--set", knob], capture_output=True, text=True, timeout=60)
    line = _one_line_error(r, knob.split("=")[0])
    assert r.returncode == 2 and ".." in line, line  # the range is named


def test_every_numeric_knob_has_a_range_its_default_is_in():
    import dataclasses
    import typing

    from tcpwave.cli.knobs import RANGES
    from tcpwave.core.config import Config

    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if hints[f.name] in (bool, str):
            continue
        assert f.name in RANGES, f.name
        assert f.default is None or RANGES[f.name][0] <= f.default <= RANGES[f.name][1], f.name


def test_knobs_in_range_still_work():
    r = subprocess.run([*TCPWAVE, "demo", "handshake", "--set", "recv_buffer=65536", "--set", "mss=1000"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="watch needs root")
def test_watch_says_when_it_saw_no_connection():
    r = subprocess.run([*TCPWAVE, "watch", "--", sys.executable, "-c", "pass"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "no TCP connections seen" in r.stderr, r.stderr


@needs_netns
def test_serve_leaves_no_ready_file_or_empty_control_dir(tmp_path):
    ready, control = str(tmp_path / "ready"), tmp_path / "ctl"
    env = dict(os.environ, TCPWAVE_CONTROL_DIR=str(control))
    with namespace("tcpwave-truth-left") as ns:
        srv = ns.popen(*TCPWAVE, "serve", "echo", "--ready-file", ready, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)
        wait_until(lambda: os.path.exists(ready), srv)
        assert any(control.iterdir())  # the control socket is there while serve runs
        srv.send_signal(signal.SIGTERM)
        srv.wait(10)
    assert srv.returncode == 0
    assert not os.path.exists(ready)
    assert not control.exists()


# ---- --version and one set of flag names --------------------------------------------------------------

def test_version():
    from tcpwave import __version__

    r = subprocess.run([*TCPWAVE, "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(f"tcpwave {__version__}, ")  # then the build (test_compiled_build)
    assert r.stdout.count("\n") == 1


def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner, subsub in _subparsers(sub):
                    yield f"{name} {inner}", subsub


def test_every_argument_has_help_and_short_flags_mean_one_thing():
    from tcpwave.cli.main import build_parser

    missing, short = [], {}
    for name, p in _subparsers(build_parser()):
        for a in p._actions:
            if isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not a.help:
                missing.append(f"{name} {a.option_strings or a.dest}")
            for s in a.option_strings:
                if len(s) == 2:
                    long = max(a.option_strings, key=len)
                    short.setdefault(s, set()).add(long)
    assert missing == []
    # one meaning per short flag, except where each command mirrors the tool users know it from:
    # fetch -i is curl's --include, ss -i is ss's --info
    mirrors = {"-i": {"--include", "--info"}}
    assert {s: longs for s, longs in short.items() if len(longs) > 1 and mirrors.get(s) != longs} == {}
    assert short["-c"] == {"--conn"}


def test_kernel_side_option_has_a_clear_name_and_keeps_its_old_one():
    from tcpwave.cli.main import build_parser

    parser = build_parser()
    new = parser.parse_args(["fetch", "http://192.0.2.1/", "--kernel", "198.51.100.1/24"])
    old = parser.parse_args(["fetch", "http://192.0.2.1/", "--host", "198.51.100.1/24"])
    assert new.kernel == old.kernel == "198.51.100.1/24"


@pytest.mark.parametrize("flag", [["--seed", "7"], ["--pcap", "x.pcap"], ["--pcapng", "x.pcapng"],
                                  ["--events", "x.jsonl"]])
def test_bench_lossy_refuses_what_it_would_ignore(flag, tmp_path):
    """`bench --lossy` runs on a real path (the kernel's random loss): a seed cannot replay it and it
    writes no capture or event log, so it says so instead of silently ignoring the flag (it did)."""
    r = subprocess.run([*TCPWAVE, "bench", "--lossy", *flag], capture_output=True, text=True, cwd=tmp_path,
                       timeout=60)
    assert r.returncode == 2
    assert flag[0] in _one_line_error(r, "--lossy")
    assert not any(tmp_path.iterdir())  # nothing written, nothing run


def test_a_command_loads_only_its_own_module():
    """`tcpwave serve` imports serve's module (and what that needs), not the lab, bench, sweep and demo
    too: every start of every command paid for all of them, twice the import time."""
    from tcpwave.cli.main import COMMANDS

    program = ("import sys\nfrom tcpwave.cli.main import COMMANDS, build_parser\nbuild_parser(sys.argv[1])\n"
               "print(' '.join(c for c in COMMANDS if f'tcpwave.cli.{c}' in sys.modules))")

    def loaded(command: str) -> list[str]:
        r = subprocess.run([sys.executable, "-c", program, command], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    for command in ("serve", "tun", "packetdrill"):
        assert loaded(command) == [command]
    assert loaded("nonsense") == list(COMMANDS)  # not a command: all of them, for the usage and the choices
    listed = subprocess.run([*TCPWAVE, "--help"], capture_output=True, text=True, timeout=60).stdout
    assert set(COMMANDS) <= {line.split()[0] for line in listed.splitlines() if line.startswith("    ")}
