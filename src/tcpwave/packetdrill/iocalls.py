"""The I/O system calls beyond read/write: the vector and message forms, poll, ioctl and the names.

They reduce to the descriptor table's own read and write (sendmsg of an iovec of 10 and 5 bytes is a
write of 15), so every error rule of sockets.py holds for them too. poll follows Linux's tcp_poll():
the events it reports are masked by those asked for, except POLLERR and POLLHUP, which always are.
"""

from collections.abc import Callable

from ..core.state import State
from .descriptor import Socket
from .script import WILDCARD

BLOCK = object()
POLL = {"POLLIN": 0x1, "POLLPRI": 0x2, "POLLOUT": 0x4, "POLLERR": 0x8, "POLLHUP": 0x10, "POLLNVAL": 0x20,
        "POLLRDNORM": 0x40, "POLLRDBAND": 0x80, "POLLWRNORM": 0x100, "POLLWRBAND": 0x200, "POLLRDHUP": 0x2000}
_IN = POLL["POLLIN"] | POLL["POLLRDNORM"]
_OUT = POLL["POLLOUT"] | POLL["POLLWRNORM"]
_ALWAYS = POLL["POLLERR"] | POLL["POLLHUP"] | POLL["POLLNVAL"]
_PEER_FIN = frozenset({State.CLOSE_WAIT, State.LAST_ACK, State.CLOSING, State.TIME_WAIT})


class SysError(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class Mismatch(Exception):
    """A call returned something other than the script says (e.g. a getsockopt value)."""


def check_tcp_info(have: dict, value) -> None:
    """getsockopt(fd, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, ...}, ...): each field the script
    gives must equal tcp_info's (names such as TCP_ESTABLISHED stand for their values)."""
    if not isinstance(value, dict):
        return
    from ..core.tcpinfo import constants

    names = constants()
    for field, want in value.items():
        if want == WILDCARD:
            continue
        if field not in have:
            raise Mismatch(f"TCP_INFO has no field {field}")
        want_value = names.get(want, want) if isinstance(want, str) else want
        if have[field] != want_value:
            raise Mismatch(f"getsockopt TCP_INFO {field} is {int(have[field])}, the script expects {want}")


def _mask(value) -> int:
    names = value if isinstance(value, tuple) else (value,)
    out = 0
    for name in names:
        if isinstance(name, int):
            out |= name
        elif name in POLL:
            out |= POLL[name]
        else:
            raise Mismatch(f"{name!r} is not a poll event (known: {', '.join(POLL)})")
    return out


def _mask_text(mask: int) -> str:
    return "|".join(name for name, bit in POLL.items() if mask & bit) or "0"


def _iov_total(iov) -> int:
    """Bytes in an iovec array: [{..., 10}, {..., 5}] (packetdrill) or [{iov_base=..., iov_len=10}]."""
    if iov == WILDCARD or not isinstance(iov, list):
        raise Mismatch("an iovec array is written [{..., LEN}, ...]")
    total = 0
    for item in iov:
        if isinstance(item, list) and item:
            total += int(item[-1])
        elif isinstance(item, dict) and "iov_len" in item:
            total += int(item["iov_len"])
        else:
            raise Mismatch(f"cannot read iovec {item!r} (write {{..., LEN}})")
    return total


def _msg_total(msg) -> int:
    if not isinstance(msg, dict) or "msg_iov" not in msg:
        raise Mismatch("a msghdr is written {msg_name(...)=..., msg_iov(N)=[{..., LEN}], msg_flags=0}")
    return _iov_total(msg["msg_iov"])


class IoCalls:
    """System calls that Sockets gets by inheritance; they use its table and its read/write."""

    table: dict[int, "Socket"]
    clock: Callable[[], float]
    ended: set
    _sock: Callable[..., "Socket"]
    _read: Callable[..., Callable[[], object]]
    _write: Callable[..., Callable[[], object]]
    _pending_error: Callable[["Socket"], str | None]

    # ------------------------------------------------------------ vector and message forms
    def _sendto(self, fd, buf=None, count=0, flags=0, addr=None, addrlen=None):
        return self._write(fd, buf, count, flags)  # TCP ignores the address of a connected socket

    def _recvfrom(self, fd, buf=None, count=0, flags=0, addr=None, addrlen=None):
        return self._read(fd, buf, count, flags)

    def _writev(self, fd, iov=None, iovcnt=None):
        return self._write(fd, None, _iov_total(iov))

    def _readv(self, fd, iov=None, iovcnt=None):
        return self._read(fd, None, _iov_total(iov))

    def _sendmsg(self, fd, msg=None, flags=0):
        return self._write(fd, None, _msg_total(msg), flags)

    def _recvmsg(self, fd, msg=None, flags=0):
        return self._read(fd, None, _msg_total(msg), flags)

    # ------------------------------------------------------------ names
    def _getsockname(self, fd, addr=None, length=None):
        self._sock(fd)
        return lambda: 0

    def _getpeername(self, fd, addr=None, length=None):
        s = self._sock(fd)
        if s.conn is None or s.conn.state in (State.CLOSED, State.SYN_SENT):
            raise SysError("ENOTCONN")
        return lambda: 0

    # ------------------------------------------------------------ ioctl
    def _ioctl(self, fd, request=None, arg=None):
        """FIONREAD/SIOCINQ: bytes ready to read; SIOCOUTQ/TIOCOUTQ: bytes not yet acknowledged;
        SIOCOUTQNSD: bytes not yet sent; FIONBIO: set non-blocking."""
        s = self._sock(fd)
        want = arg[0] if isinstance(arg, list) and arg else arg
        if request == "FIONBIO":
            s.nonblocking = bool(want)
            return lambda: 0
        if s.listener is not None and request in ("FIONREAD", "SIOCINQ", "SIOCOUTQ", "TIOCOUTQ", "SIOCOUTQNSD"):
            raise SysError("EINVAL")  # Linux: not for a listening socket
        conn = s.conn
        if request in ("FIONREAD", "SIOCINQ"):
            have = conn.readable if conn is not None else 0
        elif request in ("SIOCOUTQ", "TIOCOUTQ"):
            have = len(conn.snd.buf) if conn is not None else 0
        elif request == "SIOCOUTQNSD":
            have = conn.snd.unsent if conn is not None else 0
        else:
            raise Mismatch(f"ioctl request {request} is not supported (known: FIONREAD, SIOCINQ, SIOCOUTQ, "
                           "TIOCOUTQ, SIOCOUTQNSD, FIONBIO)")
        if want not in (None, WILDCARD) and have != want:
            raise Mismatch(f"ioctl {request} gave [{have}], the script expects [{want}]")
        return lambda: 0

    # ------------------------------------------------------------ poll
    def _events_of(self, fd: int) -> int:
        """What tcp_poll() would report for a descriptor (before masking)."""
        s = self.table.get(fd)
        if s is None:
            return POLL["POLLNVAL"]
        if s.listener is not None:
            return _IN if s.listener.accept_queue else 0
        conn = s.conn
        if conn is None:
            return _OUT | POLL["POLLHUP"]  # a socket never connected: Linux reports POLLOUT|POLLHUP
        mask = 0
        closed = conn.state is State.CLOSED
        peer_fin = conn in self.ended or conn.state in _PEER_FIN
        if closed and not s.error_reported and conn.close_reason is not None and conn.close_reason.errno:
            mask |= POLL["POLLERR"]
        if closed or (s.shut_wr and (peer_fin or s.shut_rd)):
            mask |= POLL["POLLHUP"]
        if peer_fin or s.shut_rd or closed:
            mask |= _IN | POLL["POLLRDHUP"]
        if conn.state is State.SYN_SENT:
            return mask
        if conn.readable:
            mask |= _IN
        if closed or s.shut_wr or conn.snd.buf.space > 0:
            mask |= _OUT
        return mask

    def _poll(self, fds=None, nfds=None, timeout=0):
        """poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, TIMEOUT_MS): blocks until an event or the
        timeout (a blocking call in the script: `start...end poll(...)`)."""
        if not isinstance(fds, list):
            raise Mismatch("poll takes [{fd=N, events=MASK, revents=MASK}, ...]")
        wanted = [(int(p["fd"]), _mask(p.get("events", 0)), p.get("revents", WILDCARD)) for p in fds]
        deadline = None if int(timeout) < 0 else self.clock() + int(timeout) / 1000

        def attempt() -> object:
            got = [self._events_of(fd) & (events | _ALWAYS) for fd, events, _ in wanted]
            ready = sum(1 for g in got if g)
            if not ready and (deadline is None or self.clock() < deadline - 1e-9):
                return BLOCK
            for (fd, _, want), have in zip(wanted, got, strict=True):
                if want != WILDCARD and _mask(want) != have:
                    raise Mismatch(f"poll: fd {fd} revents {_mask_text(have)}, the script expects "
                                   f"{_mask_text(_mask(want))}")
            return ready

        if deadline is not None:
            attempt.deadline = deadline  # type: ignore[attr-defined]  # the runner wakes the call then
        return attempt
