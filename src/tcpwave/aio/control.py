"""The control socket of a running tcpwave process, read by `tcpwave ss`.

A Unix stream socket (never a network one): a client sends one request line, `connections`, and
reads one JSON document back: {"pid", "host", "addresses", "time", "connections": [...]} with one
snapshot per listener and connection (core/observe.py). By default each process puts its socket in
a per-user directory, so `tcpwave ss` finds every running tcpwave without being told where.
"""

import asyncio
import json
import os
import tempfile

from ..core.observe import stack_snapshot
from . import log

MAX_REQUEST = 256


def control_dir() -> str:
    return os.environ.get("TCPWAVE_CONTROL_DIR") or os.path.join(tempfile.gettempdir(), f"tcpwave-{os.getuid()}")


def default_path(role: str) -> str:
    return os.path.join(control_dir(), f"{role}-{os.getpid()}.sock")


def document(runtime, pid: int | None = None) -> dict:
    stack = runtime.stack
    now = runtime.now()
    doc = {"pid": pid or os.getpid(), "host": stack.host, "addresses": [str(a) for a in stack.addresses],
           "time": round(now, 6), "connections": stack_snapshot(stack, now),
           "memory": stack.memory.snapshot(), "drops": dict(stack.counters), "log": log.LOG.snapshot()}
    if runtime.worker:
        doc["worker"] = runtime.worker  # "i/N": one of N processes serving the same address
    return doc


async def start_control(runtime, path: str) -> asyncio.AbstractServer:
    """Serve snapshots of runtime's stack on a Unix socket at path (replacing a stale socket file)."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)  # a socket left by a process that died; a live one would be ours by name (pid)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            request = line[:MAX_REQUEST].decode("ascii", "replace").strip()
            if request == "connections":
                reply = document(runtime)
            else:
                reply = {"error": f"unknown request {request!r}; the only one is 'connections'"}
            writer.write(json.dumps(reply, default=str).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_unix_server(handle, path)
    os.chmod(path, 0o600)
    return server


def query(path: str, timeout: float = 5.0) -> dict:
    """The snapshot document of the process listening on path (blocking; for `tcpwave ss`)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"connections\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return json.loads(b"".join(chunks))
