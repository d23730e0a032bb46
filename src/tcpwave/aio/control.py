"""The control socket of a running tcpwave process, read by `tcpwave ss`.

A Unix stream socket (never a network one): a client sends one request line, `connections`, and
reads one JSON document back: {"pid", "host", "addresses", "time", "connections": [...]} with one
snapshot per listener and connection (core/observe.py). By default each process puts its socket in
a per-user directory, so `tcpwave ss` finds every running tcpwave without being told where:
`$TCPWAVE_CONTROL_DIR`, else `$XDG_RUNTIME_DIR/tcpwave` (when that directory is this user's), else
`tcpwave-UID` in the temporary directory. Whatever it is, it must be a real directory (not a
symlink) owned by this user with mode 0700, or it is refused: in a shared /tmp another user could
have made it first.
"""

import asyncio
import json
import os
import socket
import stat
import tempfile
import time

from ..core.observe import stack_snapshot
from . import log, trim

MAX_REQUEST = 256
MAX_REPLY = 64 << 20  # a snapshot of 100k connections is ~60 MB; a peer sending more is not tcpwave


class ControlDirError(ValueError):
    pass


def control_dir() -> str:
    explicit = os.environ.get("TCPWAVE_CONTROL_DIR")
    if explicit:
        return explicit
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    st = _lstat(runtime_dir) if runtime_dir else None
    if runtime_dir and st and stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():  # (not a user's, under sudo)
        return os.path.join(runtime_dir, "tcpwave")
    return os.path.join(tempfile.gettempdir(), f"tcpwave-{os.geteuid()}")


def checked_dir(path: str, create: bool = True) -> str:
    """path, once it is a directory (not a symlink) owned by this user with mode 0700; made so if
    missing and create. Raises ControlDirError saying what is wrong. Checked on an open descriptor
    (O_NOFOLLOW), so what is checked is what is used."""
    made = False
    if create:
        try:
            os.mkdir(path, 0o700)
            made = True
        except FileExistsError:
            pass
        except OSError as e:
            raise ControlDirError(f"cannot make the control directory {path}: {e.strerror}") from e
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        st = _lstat(path)
        what = "a symlink" if st and stat.S_ISLNK(st.st_mode) else "not a directory" if st else e.strerror
        raise ControlDirError(f"refusing the control directory {path}: {what}{_advice()}") from e
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise ControlDirError(f"refusing the control directory {path}: it belongs to uid {st.st_uid}, "
                                  f"not to you (uid {os.geteuid()}){_advice()}")
        if made and stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)  # (the umask took more than group and other bits; ours, by descriptor)
            st = os.fstat(fd)
        if stat.S_IMODE(st.st_mode) != 0o700:
            raise ControlDirError(f"refusing the control directory {path}: mode {stat.S_IMODE(st.st_mode):04o}, "
                                  f"not 0700{_advice()}")
    finally:
        os.close(fd)
    return path


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _advice() -> str:
    return " (remove it, or choose another with $TCPWAVE_CONTROL_DIR; --control none runs without one)"


def default_path(role: str) -> str:
    return os.path.join(checked_dir(control_dir()), f"{role}-{os.getpid()}.sock")


CHUNK = 200  # connections snapshotted between two turns of the loop


def document(runtime, pid: int | None = None, rows: list[dict] | None = None) -> dict:
    stack = runtime.stack
    now = runtime.now()
    doc = {"pid": pid or os.getpid(), "host": stack.host, "addresses": [str(a) for a in stack.addresses],
           "time": round(now, 6), "connections": stack_snapshot(stack, now) if rows is None else rows,
           "memory": stack.memory.snapshot(), "drops": dict(stack.counters), "log": log.LOG.snapshot(),
           "collector": trim.collector()}
    if runtime.worker:
        doc["worker"] = runtime.worker  # "i/N": one of N processes serving the same address
        doc["handed_over"] = stack.forwarded  # packets for another worker's connection, handed to it
    return doc


def bind(path: str) -> socket.socket:
    """A Unix socket bound at path with mode 0600 from the start: set on the socket before bind (which
    makes the file with it), never by path afterwards. A stale socket file there is replaced; any
    other file is left alone."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    st = _lstat(path)
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise ControlDirError(f"{path} exists and is not a socket: not replacing it")
        os.unlink(path)  # a socket left by a process that died; a live one would be ours by name (pid)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.fchmod(sock.fileno(), 0o600)
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    return sock


class _Part:
    """Some of a stack's listeners, connections or TIME_WAIT records, as stack_snapshot reads a stack."""

    def __init__(self, listeners=(), connections=(), time_waits=()):
        self._listeners, self._time_waits = list(listeners), list(time_waits)
        self._connections = [c for c in connections if c.state.value != "CLOSED"]  # (gone since listed)

    def listeners(self) -> list:
        return self._listeners

    def connections(self) -> list:
        return self._connections

    def time_waits(self) -> list:
        return self._time_waits


async def gathered(runtime) -> dict:
    """document(), its rows snapshotted CHUNK at a time with the loop let run between: 3,000
    connections at once held a busy server's loop 0.1-0.5 s, while its TUN queue overflowed."""
    stack = runtime.stack
    rows = stack_snapshot(_Part(listeners=stack.listeners()), runtime.now())
    for kind, items in (("connections", stack.connections()), ("time_waits", stack.time_waits())):
        for i in range(0, len(items), CHUNK):
            await asyncio.sleep(0)
            rows += stack_snapshot(_Part(**{kind: items[i:i + CHUNK]}), runtime.now())
    return document(runtime, rows=rows)


async def encoded(doc: dict) -> bytes:
    """doc as one JSON line, its rows encoded CHUNK at a time with the loop let run between (3,000
    rows in one json.dumps held the loop ~0.2 s)."""
    rows, doc = doc.get("connections", []), {**doc, "connections": ROWS}
    head, _, tail = json.dumps(doc, default=str).partition(json.dumps(ROWS))
    parts = []
    for i in range(0, len(rows), CHUNK):
        await asyncio.sleep(0)
        parts.append(",".join(json.dumps(row, default=str) for row in rows[i:i + CHUNK]))
    return f"{head}[{','.join(parts)}]{tail}\n".encode()


ROWS = "\0rows"  # where encoded() puts the rows (before them, only the pid, host, addresses and time)


async def start_control(runtime, path: str) -> asyncio.AbstractServer:
    """Serve snapshots of runtime's stack on a Unix socket at path (replacing a stale socket file)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            request = line[:MAX_REQUEST].decode("ascii", "replace").strip()
            if request == "connections":
                writer.write(await encoded(await gathered(runtime)))
            else:
                error = {"error": f"unknown request {request!r}; the only one is 'connections'"}
                writer.write(json.dumps(error).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_unix_server(handle, sock=bind(path))


def query(path: str, timeout: float = 5.0) -> object:
    """The JSON document the process listening on path sends (blocking; for `tcpwave ss`), read
    within `timeout` seconds in all (not per read: a peer dripping bytes cannot hold it longer).
    Raises OSError (ConnectionRefusedError: nobody listens, a stale socket), TimeoutError or
    ValueError (too long, or not JSON)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"connections\n")
        chunks, size = [], 0
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                s.settimeout(left)
                chunk = s.recv(65536)
            except TimeoutError:
                raise TimeoutError(f"no complete answer within {timeout:g} s") from None
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_REPLY:
                raise ValueError(f"answer longer than {MAX_REPLY >> 20} MB")
    return json.loads(b"".join(chunks))
