"""A BSD-socket descriptor table on a tcpwave Stack, for the system calls of a script.

Each call is started with `start(event)`, which returns an attempt function: calling
it returns the call's result, or BLOCK while a blocking call cannot finish yet, or
raises SysError(errno name). The runner retries a blocked attempt as time passes.
Errors follow Linux: a failure is reported once (by the call that meets it or by
SO_ERROR), after which reads see end-of-file and writes see EPIPE.
"""

import errno
from collections.abc import Callable

from ..core import events as ev
from ..core.connection import Connection
from ..core.errors import StateError
from ..core.sockopts import UnknownOption, get_option, set_option
from ..core.state import State
from ..core.tcpinfo import tcp_info, unconnected_tcp_info
from ..stack import PortInUse, Stack
from .descriptor import Socket
from .iocalls import BLOCK, IoCalls, Mismatch, SysError, check_tcp_info
from .script import WILDCARD, CallEvent

O_RDWR, O_NONBLOCK = 0x2, 0x800
_RECEIVED_FIN = frozenset({State.CLOSE_WAIT, State.LAST_ACK, State.CLOSING, State.TIME_WAIT})


def errno_value(v) -> int:
    if isinstance(v, int):
        return v
    if isinstance(v, str) and hasattr(errno, v):
        return getattr(errno, v)
    raise Mismatch(f"{v!r} is not an errno value")


class Sockets(IoCalls):
    def __init__(self, stack: Stack, clock: Callable[[], float], remote_ip, *, bind_port: int,
                 connect_port: int, portable: bool):
        self.stack = stack
        self.clock = clock
        self.remote_ip = remote_ip
        self.bind_port = bind_port
        self.connect_port = connect_port
        self.portable = portable
        self.table: dict[int, Socket] = {}
        self.ended: set[Connection] = set()  # connections whose peer's FIN has reached the application
        self.reset_in_close_wait: set[Connection] = set()  # connections a RST ended in CLOSE_WAIT
        self._close_wait: set[Connection] = set()  # those in CLOSE_WAIT when the last packet arrived
        self.on_connect: Callable[[Connection], None] | None = None  # tells the runner the 4-tuple
        self.under_test: Connection | None = None  # the newest connection or listening TCB (for tcp_info)

    def before_arrival(self) -> None:
        """Called before a packet goes in: a RST it carries is told apart by the state it meets."""
        self._close_wait = {s.conn for s in self.table.values() if s.conn is not None
                            and s.conn.state is State.CLOSE_WAIT}

    def note_events(self, events) -> None:
        for conn, event in events:
            if isinstance(event, ev.EndOfStream):
                self.ended.add(conn)
            elif isinstance(event, ev.Closed) and conn in self._close_wait:
                self.reset_in_close_wait.add(conn)

    # ------------------------------------------------------------ dispatch
    def start(self, call: CallEvent) -> Callable[[], object]:
        method = getattr(self, "_" + call.name, None)
        if method is None:
            raise Mismatch(f"system call {call.name}() is not supported")
        return method(*call.args)

    def _sock(self, fd) -> Socket:
        if fd not in self.table:
            raise SysError("EBADF")
        return self.table[fd]

    def _new_fd(self) -> int:
        fd = 3
        while fd in self.table:
            fd += 1
        return fd

    def _pending_error(self, s: Socket) -> str | None:
        """The errno of a connection the peer or the network ended, once."""
        c = s.conn
        if c is None or s.error_reported or c.state is not State.CLOSED:
            return None
        code = c.close_reason.errno if c.close_reason is not None else None
        name = errno.errorcode.get(code) if code else None
        if name:
            s.error_reported = True
            if name == "ECONNRESET" and c in self.reset_in_close_wait and c.config.close_wait_reset_epipe:
                name = "EPIPE"  # reset in CLOSE_WAIT: Linux reports EPIPE (in LAST_ACK, ECONNRESET); FreeBSD not
        return name

    @staticmethod
    def _done(value) -> Callable[[], object]:
        return lambda: value

    # ------------------------------------------------------------ set-up
    def _socket(self, domain=None, type_=None, proto=None):
        fd = self._new_fd()
        self.table[fd] = Socket(fd, self.stack.config)
        self.under_test = None  # later packets belong to this new socket
        return self._done(fd)

    def _bind(self, fd, addr=None, length=None):
        self._sock(fd).port = self.bind_port
        return self._done(0)

    def _listen(self, fd, backlog=128):
        s = self._sock(fd)
        if s.conn is not None:
            raise SysError("EINVAL")
        try:
            s.listener = self.stack.listen(s.port or self.bind_port, self.clock(), backlog=max(1, int(backlog)),
                                           config=s.config)
        except PortInUse:
            raise SysError("EADDRINUSE") from None
        self.under_test = s.listener.tcb
        return self._done(0)

    def _accept(self, fd, addr=None, length=None):
        s = self._sock(fd)
        if s.listener is None:
            raise SysError("EINVAL")

        def attempt():
            conn = s.listener.accept()
            if conn is None:
                if s.nonblocking:
                    raise SysError("EAGAIN")
                return BLOCK
            new = self._new_fd()
            self.table[new] = Socket(new, s.config, conn=conn)
            return new
        return attempt

    def _connect(self, fd, addr=None, length=None):
        s = self._sock(fd)
        if s.listener is not None:
            raise SysError("EISCONN")
        if s.conn is not None:
            if s.conn.state is State.SYN_SENT:
                raise SysError("EALREADY")
            if s.conn.state is State.CLOSED:
                raise SysError(self._pending_error(s) or "ECONNABORTED")
            raise SysError("EISCONN")
        s.conn = self.stack.connect(self.remote_ip, self.connect_port, self.clock(), config=s.config,
                                    local_port=s.port)
        self.under_test = s.conn
        if self.on_connect:
            self.on_connect(s.conn)
        if s.nonblocking:
            raise SysError("EINPROGRESS")

        def attempt():
            if s.conn.state in (State.SYN_SENT, State.SYN_RCVD):
                return BLOCK
            if s.conn.state is State.CLOSED:
                raise SysError(self._pending_error(s) or "ECONNABORTED")
            return 0
        return attempt

    # ------------------------------------------------------------ data
    def _connected(self, s: Socket) -> Connection:
        if s.conn is None:
            raise SysError("ENOTCONN")
        return s.conn

    def _write(self, fd, buf=None, count=0, flags=0):
        s = self._sock(fd)
        conn = self._connected(s)
        urgent = flags == "MSG_OOB" or (isinstance(flags, tuple) and "MSG_OOB" in flags)
        left = [int(count)]

        def attempt():
            if s.shut_wr:
                raise SysError("EPIPE")
            if conn.state is State.CLOSED:
                raise SysError(self._pending_error(s) or "EPIPE")
            if conn.state in (State.SYN_SENT, State.SYN_RCVD):
                if s.nonblocking:
                    raise SysError("EAGAIN")
                return BLOCK
            try:
                left[0] -= conn.send(bytes(left[0]), self.clock(), urgent=urgent)
            except StateError:
                raise SysError("EPIPE") from None
            done = int(count) - left[0]
            if not left[0] or (s.nonblocking and done):
                return done
            if s.nonblocking:
                raise SysError("EAGAIN")
            return BLOCK
        return attempt

    _send = _write

    def _read(self, fd, buf=None, count=0, flags=0):
        s = self._sock(fd)
        conn = self._connected(s)

        def attempt():
            try:
                data = conn.receive(int(count), now=self.clock())
            except (ConnectionError, TimeoutError):
                data = b""
            if data:
                return len(data)
            if s.shut_rd:  # as Linux: data queued before or after shutdown(SHUT_RD) is still read, then 0
                return 0
            if conn in self.ended:  # end-of-file wins over a later error, as in Linux
                return 0
            err = self._pending_error(s)
            if err:
                raise SysError(err)
            if conn.state in _RECEIVED_FIN or conn.state is State.CLOSED:
                return 0
            if s.nonblocking:
                raise SysError("EAGAIN")
            return BLOCK
        return attempt

    _recv = _read

    def _shutdown(self, fd, how="SHUT_WR"):
        s = self._sock(fd)
        conn = self._connected(s)
        if conn.state is State.CLOSED:
            raise SysError("ENOTCONN")
        if how in ("SHUT_RD", "SHUT_RDWR", 0, 2):
            s.shut_rd = True
        if how in ("SHUT_WR", "SHUT_RDWR", 1, 2):
            s.shut_wr = True
            conn.shutdown(self.clock())
        return self._done(0)

    def _close(self, fd):
        s = self._sock(fd)
        del self.table[fd]
        now = self.clock()
        if s.listener is not None:
            s.listener.close(now)
        elif s.conn is not None and s.conn.state is not State.CLOSED:
            if s.linger_zero:
                s.conn.abort(now, why="close() with SO_LINGER 0")
            else:
                s.conn.close(now)
        return self._done(0)

    # ------------------------------------------------------------ options
    def _fcntl(self, fd, cmd, flags=None):
        s = self._sock(fd)
        if cmd == "F_GETFL":
            return self._done(O_RDWR | (O_NONBLOCK if s.nonblocking else 0))
        if cmd == "F_SETFL":
            names = flags if isinstance(flags, tuple) else (flags,)
            s.nonblocking = "O_NONBLOCK" in names or (isinstance(flags, int) and bool(flags & O_NONBLOCK))
            return self._done(0)
        raise Mismatch(f"fcntl command {cmd} is not supported")

    def _setsockopt(self, fd, level, name, value, length=None):
        s = self._sock(fd)
        now = self.clock()
        if name == "SO_LINGER":
            if not isinstance(value, dict):
                raise Mismatch("SO_LINGER takes {onoff=N, linger=N}")
            onoff = value.get("onoff", value.get("l_onoff", 0))
            linger = value.get("linger", value.get("l_linger", 0))
            s.linger_zero = bool(onoff) and linger == 0
            return self._done(0)
        v = value[0] if isinstance(value, list) and value else value
        if not isinstance(v, int):
            raise Mismatch(f"{name} takes a number, e.g. [1]")
        try:
            s.config = set_option(s.config, s.conn, name, v, now)
        except UnknownOption:
            raise Mismatch(f"socket option {name} is not supported") from None
        except ValueError:
            raise SysError("EINVAL") from None
        return self._done(0)

    def _getsockopt(self, fd, level, name, value, length=None):
        s = self._sock(fd)
        want = value[0] if isinstance(value, list) and value else value
        if name == "SO_ERROR":
            have = errno_value(self._pending_error(s) or 0)
            want = errno_value(want) if want != WILDCARD else have
        elif name == "SO_LINGER":
            have = {"onoff": int(s.linger_zero), "linger": 0}
            if isinstance(want, dict):
                want = {k.removeprefix("l_"): v for k, v in want.items()}
        elif name in ("SO_RCVBUF", "SO_SNDBUF") and self.portable:
            return self._done(0)  # buffer sizes differ legitimately between implementations
        elif name == "TCP_INFO":
            return self._done(self._check_tcp_info(s, value))
        else:
            try:
                have = get_option(s.config, s.conn, name)
            except UnknownOption:
                raise Mismatch(f"socket option {name} is not supported") from None
        if want != WILDCARD and have != want:
            raise Mismatch(f"getsockopt {name} gave [{have}], the script expects [{want}]")
        return self._done(0)

    def _check_tcp_info(self, s: Socket, value) -> int:
        """getsockopt(fd, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, ...}, ...): each field given must
        equal tcp_info's, taken now."""
        conn = s.conn if s.conn is not None else (s.listener.tcb if s.listener is not None else None)
        if conn is None:
            check_tcp_info(unconnected_tcp_info(s.config.initial_cwnd_segments, s.config.rto_initial), value)
            return 0
        check_tcp_info(tcp_info(conn, self.clock()), value)
        return 0
