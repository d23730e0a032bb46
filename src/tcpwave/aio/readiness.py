"""A file descriptor that says when a blocking-API socket is ready, for `selectors`, `select` and
`poll`: one end of a socketpair, made readable and writable by the stack's loop as the tcpwave
socket becomes readable (data, end-of-file, an error, a connection to accept) and writable (room in
the send buffer, or an error), and not otherwise. Level-triggered, as a kernel socket's readiness.

Readable: our end has sent the user's end a byte (taken back when no longer readable). Not
writable: the user's end has filled its send buffer toward our end (drained when writable again)."""

import socket


class Readiness:
    def __init__(self) -> None:
        self._user, self._ours = socket.socketpair()
        for s in (self._user, self._ours):
            s.setblocking(False)
        self._user.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1)  # little to fill (the kernel's minimum)
        self._ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        self._readable = False
        self._writable = True

    def fileno(self) -> int:
        return self._user.fileno()

    def set(self, readable: bool, writable: bool) -> None:
        """Make the descriptor's readiness these (called on the stack's loop)."""
        if readable != self._readable:
            self._readable = readable
            if readable:
                self._ours.send(b"r")
            else:
                _drain(self._user)
        if writable != self._writable:
            self._writable = writable
            if writable:
                _drain(self._ours)
            else:
                _fill(self._user)

    def close(self) -> None:
        self._user.close()
        self._ours.close()


def _drain(s: socket.socket) -> None:
    try:
        while s.recv(65536):
            pass
    except BlockingIOError:
        pass


def _fill(s: socket.socket) -> None:
    chunk = bytes(4096)
    try:
        for _ in range(1024):  # bounded: a few KiB fill the minimum buffer
            s.send(chunk)
    except BlockingIOError:
        pass
