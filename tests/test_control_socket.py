"""The control directory and socket no other local user can subvert, and a `tcpwave ss` that a
planted fake socket can neither crash, hang nor use to write to the terminal."""

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import types

import pytest
from netns import namespace, needs_netns

from tcpwave.aio import control
from tcpwave.aio.control import ControlDirError, checked_dir, control_dir, query
from tcpwave.cli import ss

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another uid")


def test_the_default_directory_is_under_xdg_runtime_dir_when_set(tmp_path, monkeypatch):
    monkeypatch.delenv("TCPWAVE_CONTROL_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert control_dir() == str(tmp_path / "tcpwave")
    path = control.default_path("serve")
    assert path == str(tmp_path / "tcpwave" / f"serve-{os.getpid()}.sock")
    st = os.lstat(tmp_path / "tcpwave")
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.geteuid()
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert control_dir().endswith(f"tcpwave-{os.geteuid()}")


@as_root
def test_a_directory_owned_by_another_user_is_refused(tmp_path):
    planted = tmp_path / "ctl"
    planted.mkdir(mode=0o700)
    os.chown(planted, 65534, 65534)  # made first by someone else (nobody)
    with pytest.raises(ControlDirError, match="belongs to uid 65534"):
        checked_dir(str(planted))


def test_a_symlink_as_the_directory_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "ctl").symlink_to(real)
    with pytest.raises(ControlDirError, match="a symlink"):
        checked_dir(str(tmp_path / "ctl"))


def test_a_directory_others_may_enter_is_refused(tmp_path):
    loose = tmp_path / "ctl"
    loose.mkdir()
    os.chmod(loose, 0o755)
    with pytest.raises(ControlDirError, match="mode 0755, not 0700"):
        checked_dir(str(loose))


def test_serve_refuses_an_unsafe_control_directory_before_making_a_device(tmp_path, monkeypatch, capsys):
    """(Run in-process up to the refusal: on the old code it would go on to create a TUN device, so the
    device step is replaced by one that fails the test.)"""
    from tcpwave.cli import serve, tun_options

    loose = tmp_path / "ctl"
    loose.mkdir()
    os.chmod(loose, 0o777)
    monkeypatch.setenv("TCPWAVE_CONTROL_DIR", str(loose))
    monkeypatch.setattr(tun_options, "open_device", lambda *a, **k: pytest.fail("made a device"))
    args = types.SimpleNamespace(control=None, workers=2, service="echo", port=None)
    assert serve.run(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("tcpwave serve: refusing the control directory") and "mode 0777" in err


def test_the_socket_is_0600_from_bind_on_with_any_umask_and_never_chmodded_by_path(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "chmod", lambda *a, **k: pytest.fail("chmod by path (follows symlinks)"))
    old = os.umask(0)
    try:
        sock = control.bind(str(tmp_path / "ctl.sock"))
    finally:
        os.umask(old)
    sock.close()
    st = os.lstat(tmp_path / "ctl.sock")
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_a_file_or_symlink_where_the_socket_goes_is_left_alone(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("x")
    os.chmod(victim, 0o644)
    (tmp_path / "ctl.sock").symlink_to(victim)
    with pytest.raises(ControlDirError, match="is not a socket"):
        control.bind(str(tmp_path / "ctl.sock"))
    assert stat.S_IMODE(os.stat(victim).st_mode) == 0o644 and os.path.islink(tmp_path / "ctl.sock")


# ------------------------------------------------------------------ tcpwave ss against planted sockets
GOOD = {"pid": 4242, "host": "tcpwave", "addresses": ["192.0.2.2"], "time": 1.5, "connections": [
    {"state": "LISTEN", "local": "*:80", "remote": "*:*", "recv_q": 0, "send_q": 128, "timers": {}}]}


class Planted:
    """A fake control socket in a thread: answers each client with `reply` (bytes), `gap` seconds
    between its bytes when drip, until stopped."""

    def __init__(self, path: str, reply: bytes, drip: float = 0.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.reply, self.drip = reply, drip
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(256)  # the request line
                if not self.drip:
                    conn.sendall(self.reply)
                    continue
                for i in range(len(self.reply)):  # (bounded: stops with the test)
                    if self.stop.wait(self.drip):
                        break
                    conn.sendall(self.reply[i:i + 1])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def ctl(tmp_path, monkeypatch):
    d = tmp_path / "ctl"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("TCPWAVE_CONTROL_DIR", str(d))
    planted: list[Planted] = []
    yield d, planted
    for p in planted:
        p.close()


def _ss(capsys, *flags: str) -> tuple[int, str, str]:
    args = types.SimpleNamespace(control=None, summary="-s" in flags, info="-i" in flags, watch=None, count=None,
                                 json="--json" in flags)
    rc = ss.run(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_ss_skips_bad_json_and_replies_missing_keys_with_a_note(ctl, capsys):
    d, planted = ctl
    planted.append(Planted(str(d / "a-1.sock"), b"{not json"))
    planted.append(Planted(str(d / "b-2.sock"), json.dumps({"pid": 1, "connections": []}).encode()))
    bad_row = dict(GOOD, connections=[*GOOD["connections"], {"state": "ESTABLISHED", "local": "x"}])
    planted.append(Planted(str(d / "c-3.sock"), json.dumps(bad_row).encode()))
    planted.append(Planted(str(d / "d-4.sock"), b"[" * 100_000))
    rc, out, err = _ss(capsys)
    assert rc == 0 and "Traceback" not in err, err
    assert "a-1.sock: skipped, Expecting property name" in err
    assert "b-2.sock: not a tcpwave answer: the answer has no 'host'" in err
    assert "c-3.sock: skipped: connection 1 has no 'remote'" in err
    assert "d-4.sock: skipped" in err
    assert out.count("# pid") == 1 and "LISTEN" in out and "*:80" in out  # the valid part of c-3 is shown
    rc, out, err = _ss(capsys, "-s")
    assert rc == 0 and "Total: 1 (in 1 tcpwave process)" in out


def test_ss_gives_up_on_a_peer_dripping_one_byte_at_a_time(tmp_path):
    """One byte every 0.3 s keeps each recv from timing out; the deadline is for the whole answer."""
    path = str(tmp_path / "slow.sock")
    slow = Planted(path, json.dumps(GOOD).encode() * 10, drip=0.3)
    try:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
            query(path, timeout=1.0)
        assert time.monotonic() - t0 < 20  # (the drip alone would take ~5 minutes)
    finally:
        slow.close()


def test_ss_never_prints_control_characters_it_was_sent(ctl, capsys):
    d, planted = ctl
    evil = dict(GOOD, host="\x1b]0;pwned\x07\x1b[2J", addresses=["192.0.2.2\x1b[31m"], worker="1/2\x9b",
                connections=[dict(GOOD["connections"][0], state="LISTEN\r\x1b[K", timers={"\x1b[1m": 1.0})])
    planted.append(Planted(str(d / "serve-1.sock"), json.dumps(evil).encode()))
    planted.append(Planted(str(d / "serve-\x1b[5m.sock"), json.dumps({"error": "no\x1b[2J"}).encode()))
    rc, out, err = _ss(capsys)
    assert rc == 0
    for text in (out, err):
        assert not any(ord(ch) < 32 and ch not in "\n\t" or 0x7f <= ord(ch) <= 0x9f for ch in text), repr(text)
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in out and "LISTEN\\r\\x1b[K" in out and "\\x1b[1m:1.000s" in out
    assert "serve-\\x1b[5m.sock" in err and "answered with an error: no\\x1b[2J" in err


def test_ss_skips_stale_sockets_with_a_note_and_exit_0(ctl, capsys):
    d, _ = ctl
    for name in ("serve-111.sock", "serve-222.sock"):  # bound, then the process died (kill -9): no listener
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(d / name))
        s.close()
    rc, out, err = _ss(capsys)
    assert rc == 0 and out == ""
    assert err.count("skipped, nobody is listening") == 2 and "Traceback" not in err


def test_ss_refuses_to_read_a_directory_someone_else_could_have_planted(tmp_path, monkeypatch, capsys):
    loose = tmp_path / "ctl"
    loose.mkdir()
    os.chmod(loose, 0o777)
    monkeypatch.setenv("TCPWAVE_CONTROL_DIR", str(loose))
    rc, _, err = _ss(capsys)
    assert rc == 1 and "refusing the control directory" in err and "mode 0777" in err


@needs_netns
def test_serve_puts_its_socket_in_a_fresh_private_directory(tmp_path):
    """End to end: serve makes the directory 0700 and the socket 0600 (umask 0), and ss reads it."""
    d = tmp_path / "ctl"
    env = dict(os.environ, TCPWAVE_CONTROL_DIR=str(d))
    ready = str(tmp_path / "ready")
    py = sys.executable
    with namespace("tcpwave-ctl") as ns:
        server = ns.popen("sh", "-c", 'umask 0; exec "$@"', "sh", py, "-m", "tcpwave.cli.main", "serve", "echo",
                          "--ready-file", ready, stderr=subprocess.PIPE, text=True, env=env)
        from netns import wait_for_file

        wait_for_file(ready, server)
        socks = list(d.iterdir())
        modes = [stat.S_IMODE(os.lstat(p).st_mode) for p in socks]
        dir_mode = stat.S_IMODE(os.lstat(d).st_mode)  # (serve removes the directory it leaves empty)
        r = subprocess.run([py, "-m", "tcpwave.cli.main", "ss"], capture_output=True, text=True, env=env,
                           timeout=30)
        server.terminate()
        server.communicate(timeout=10)
    assert dir_mode == 0o700 and modes == [0o600], modes
    assert r.returncode == 0 and "LISTEN" in r.stdout, r.stderr


@as_root
def test_another_users_xdg_runtime_dir_is_not_used(tmp_path, monkeypatch):
    """(sudo -E keeps the user's XDG_RUNTIME_DIR: root's sockets do not go there.)"""
    theirs = tmp_path / "run-user-65534"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 65534, 65534)
    monkeypatch.delenv("TCPWAVE_CONTROL_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(theirs))
    assert control_dir().endswith(f"tcpwave-{os.geteuid()}")


def test_root_sees_every_users_running_instance(tmp_path, monkeypatch, capsys):
    """Linux's ss shows root every socket; `tcpwave ss` as root reads every user's control directory
    (/tmp/tcpwave-UID, /run/user/UID/tcpwave) that is what tcpwave makes, and no other."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    monkeypatch.delenv("TCPWAVE_CONTROL_DIR", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    planted = []
    try:
        for uid, mode, pid in ((65534, 0o700, 1111), (65533, 0o755, 2222), (65532, 0o700, 3333)):
            d = tmp_path / f"tcpwave-{uid}"
            d.mkdir()
            planted.append(Planted(str(d / "serve.sock"), json.dumps(dict(GOOD, pid=pid)).encode()))
            os.chown(d, uid if pid != 3333 else 65531, uid)  # 3333's directory is not its name's user's
            os.chmod(d, mode)  # 2222's may be entered by others: not tcpwave's
        rc, out, err = _ss(capsys)
        assert rc == 0 and "# pid 1111" in out, err
        assert "# pid 2222" not in out and "# pid 3333" not in out
    finally:
        for p in planted:
            p.close()


def test_the_document_is_built_a_chunk_at_a_time_letting_the_loop_run_between(tmp_path, monkeypatch):
    """3,000 connections snapshotted in one go held a busy server's loop for up to 0.5 s (its TUN queue
    overflowing meanwhile): the rows are made and encoded CHUNK at a time, and
    other callbacks of the loop run between two chunks. Every connection is in the document still."""
    import asyncio

    from tcpwave.aio import MemoryLink, Runtime, create_server, open_connection
    from tcpwave.aio.services import Echo
    from tcpwave.stack import Stack

    monkeypatch.setattr(control, "CHUNK", 10)
    ticks, seen, encoded = [0], [], []  # turns of the loop; the turns snapshots and encodings were made at
    real = control.stack_snapshot
    monkeypatch.setattr(control, "stack_snapshot", lambda stack, now: seen.append(ticks[0]) or real(stack, now))
    monkeypatch.setattr(control, "json", types.SimpleNamespace(
        dumps=lambda *a, **k: encoded.append(ticks[0]) or json.dumps(*a, **k), loads=json.loads))

    async def main():
        loop = asyncio.get_running_loop()
        a, b = MemoryLink.pair(delay=0.0005)
        client, server = Runtime(Stack(["192.0.2.1"], seed=1), a), Runtime(Stack(["192.0.2.2"], seed=2), b)
        await create_server(Echo, "192.0.2.2", 7, runtime=server)
        writers = [(await open_connection("192.0.2.2", 7, runtime=client))[1] for _ in range(45)]
        ctl = await control.start_control(server, str(tmp_path / "ctl.sock"))
        going = [True]

        def tick():
            ticks[0] += 1
            if going[0]:
                loop.call_soon(tick)

        tick()
        doc = await loop.run_in_executor(None, query, str(tmp_path / "ctl.sock"))
        going[0] = False
        ctl.close()
        for w in writers:
            w.transport.abort()
        client.close()
        server.close()
        return doc

    doc = asyncio.run(main())
    assert sum(1 for c in doc["connections"] if c["state"] == "ESTABLISHED") == 45
    assert len(seen) >= 6 and len(set(seen)) == len(seen), seen  # (listeners, then 5 chunks of 10 or fewer)
    assert len(set(encoded)) >= 6, encoded  # (the rest of the document, then the rows 10 at a time)
