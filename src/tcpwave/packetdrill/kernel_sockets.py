"""The system calls of a script made on real Linux sockets (for `tcpwave packetdrill --kernel`).

The same protocol as sockets.py: `start(call)` returns an attempt that gives the result, BLOCK while a
blocking call cannot finish, or raises SysError. Every real socket is non-blocking; a script's
blocking call is retried by the runner until it completes, as a blocked thread would be woken.
Script descriptors map to real ones (packetdrill does the same), so `socket(...) = 3` holds whatever
number the kernel picks.
"""

import errno
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from .iocalls import BLOCK, POLL, Mismatch, SysError, _iov_total, _mask, _mask_text, _msg_total, check_tcp_info
from .script import WILDCARD, CallEvent

TCP_INFO = struct.Struct("=7B1x24I")  # the stable head of struct tcp_info (Linux 2.6)
_INFO_NAMES = ("tcpi_state", "tcpi_ca_state", "tcpi_retransmits", "tcpi_probes", "tcpi_backoff", "tcpi_options",
               "_wscale", "tcpi_rto", "tcpi_ato", "tcpi_snd_mss", "tcpi_rcv_mss", "tcpi_unacked", "tcpi_sacked",
               "tcpi_lost", "tcpi_retrans", "tcpi_fackets", "tcpi_last_data_sent", "tcpi_last_ack_sent",
               "tcpi_last_data_recv", "tcpi_last_ack_recv", "tcpi_pmtu", "tcpi_rcv_ssthresh", "tcpi_rtt",
               "tcpi_rttvar", "tcpi_snd_ssthresh", "tcpi_snd_cwnd", "tcpi_advmss", "tcpi_reordering",
               "tcpi_rcv_rtt", "tcpi_rcv_space", "tcpi_total_retrans")
_TAIL = (("Q", "tcpi_pacing_rate"), ("Q", "tcpi_max_pacing_rate"), ("Q", "tcpi_bytes_acked"),
         ("Q", "tcpi_bytes_received"), ("I", "tcpi_segs_out"), ("I", "tcpi_segs_in"), ("I", "tcpi_notsent_bytes"),
         ("I", "tcpi_min_rtt"), ("I", "tcpi_data_segs_in"), ("I", "tcpi_data_segs_out"),
         ("Q", "tcpi_delivery_rate"), ("Q", "tcpi_busy_time"), ("Q", "tcpi_rwnd_limited"),
         ("Q", "tcpi_sndbuf_limited"), ("I", "tcpi_delivered"), ("I", "tcpi_delivered_ce"), ("Q", "tcpi_bytes_sent"),
         ("Q", "tcpi_bytes_retrans"), ("I", "tcpi_dsack_dups"), ("I", "tcpi_reord_seen"))
_IOCTL = {"FIONREAD": 0x541B, "SIOCINQ": 0x541B, "SIOCOUTQ": 0x5411, "TIOCOUTQ": 0x5411, "SIOCOUTQNSD": 0x894B}
_SOCKOPTS = {"SO_KEEPALIVE": (socket.SOL_SOCKET, socket.SO_KEEPALIVE), "SO_REUSEADDR": (socket.SOL_SOCKET, 2),
             "SO_REUSEPORT": (socket.SOL_SOCKET, 15), "SO_RCVBUF": (socket.SOL_SOCKET, socket.SO_RCVBUF),
             "SO_SNDBUF": (socket.SOL_SOCKET, socket.SO_SNDBUF), "SO_ERROR": (socket.SOL_SOCKET, socket.SO_ERROR),
             "TCP_NODELAY": (socket.IPPROTO_TCP, socket.TCP_NODELAY), "TCP_KEEPIDLE": (socket.IPPROTO_TCP, 4),
             "TCP_KEEPINTVL": (socket.IPPROTO_TCP, 5), "TCP_KEEPCNT": (socket.IPPROTO_TCP, 6),
             "TCP_USER_TIMEOUT": (socket.IPPROTO_TCP, 18), "TCP_MAXSEG": (socket.IPPROTO_TCP, 2),
             "TCP_CORK": (socket.IPPROTO_TCP, 3), "TCP_QUICKACK": (socket.IPPROTO_TCP, 12)}


def parse_tcp_info(raw: bytes) -> dict[str, int]:
    values = TCP_INFO.unpack_from(raw)
    info = dict(zip(_INFO_NAMES, values, strict=True))
    wscale = info.pop("_wscale")
    info["tcpi_snd_wscale"], info["tcpi_rcv_wscale"] = wscale & 0x0F, wscale >> 4
    offset = TCP_INFO.size
    for kind, name in _TAIL:
        size = 8 if kind == "Q" else 4
        if kind == "Q":
            offset = (offset + 7) & ~7
        if offset + size > len(raw):
            break
        info[name] = struct.unpack_from("=" + kind, raw, offset)[0]
        offset += size
    return info


@dataclass
class KSocket:
    fd: int
    sock: socket.socket
    nonblocking: bool = False
    listening: bool = False
    connecting: bool = False


def _errno_name(e: OSError) -> str:
    return errno.errorcode.get(e.errno or 0, "EIO")


class KernelSockets:
    def __init__(self, family: int, local_ip: str, remote_ip: str, *, bind_port: int, connect_port: int,
                 portable: bool):
        self.family = family
        self.local_ip, self.remote_ip = local_ip, remote_ip
        self.bind_port, self.connect_port = bind_port, connect_port
        self.portable = portable
        self.table: dict[int, KSocket] = {}
        self.under_test: KSocket | None = None
        # the socket packetdrill's %{ }% blocks read: the newest made by socket() or accept(); closed,
        # its tcp_info cannot be had (packetdrill: "can't find getsockopt to get TCP info")
        self.newest: KSocket | None = None
        self.newest_closed = False
        self.on_connect: Callable[[tuple[int, int]], None] | None = None

    def close_all(self) -> None:
        for s in self.table.values():
            s.sock.close()
        self.table.clear()

    def start(self, call: CallEvent) -> Callable[[], object]:
        method = getattr(self, "_" + call.name, None)
        if method is None:
            raise Mismatch(f"system call {call.name}() is not supported")
        if call.name == "socket":
            return method(call.ret, *call.args)
        if call.name == "accept":
            return method(call.ret, *call.args)
        return method(*call.args)

    def _sock(self, fd) -> KSocket:
        if fd not in self.table:
            raise SysError("EBADF")
        return self.table[fd]

    def _try(self, s: KSocket, op: Callable[[], object]) -> Callable[[], object]:
        """An attempt: run op; EAGAIN blocks a blocking socket's call and fails a non-blocking one's."""
        def attempt() -> object:
            try:
                return op()
            except (BlockingIOError, InterruptedError):
                if s.nonblocking:
                    raise SysError("EAGAIN") from None
                return BLOCK
            except OSError as e:
                raise SysError(_errno_name(e)) from None
        return attempt

    # ------------------------------------------------------------ set-up
    def _socket(self, want, domain=None, type_=None, proto=None):
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        fd = want if isinstance(want, int) and want >= 0 else sock.fileno()
        self.table[fd] = KSocket(fd, sock)
        self.under_test = self.newest = self.table[fd]
        self.newest_closed = False
        return lambda: fd

    def _bind(self, fd, addr=None, length=None):
        s = self._sock(fd)
        return self._try(s, lambda: s.sock.bind((self.local_ip, self.bind_port)) or 0)

    def _listen(self, fd, backlog=128):
        s = self._sock(fd)
        s.listening = True
        self.under_test = s
        return self._try(s, lambda: s.sock.listen(int(backlog)) or 0)

    def _accept(self, want, fd, addr=None, length=None):
        s = self._sock(fd)

        def op() -> object:
            child, _ = s.sock.accept()
            child.setblocking(False)
            new = want if isinstance(want, int) and want >= 0 else child.fileno()
            self.table[new] = self.newest = KSocket(new, child)
            self.newest_closed = False
            return new
        return self._try(s, op)

    def _connect(self, fd, addr=None, length=None):
        s = self._sock(fd)
        if s.connecting:
            def again() -> object:
                err = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise SysError(errno.errorcode.get(err, "EIO"))
                try:
                    s.sock.getpeername()
                except OSError:
                    raise SysError("EALREADY") from None
                raise SysError("EISCONN")
            return again
        try:
            s.sock.connect((self.remote_ip, self.connect_port))
        except BlockingIOError:
            pass
        except OSError as e:
            raise SysError(_errno_name(e)) from None
        s.connecting = True
        self.under_test = s
        if self.on_connect:
            self.on_connect(s.sock.getsockname()[:2])
        if s.nonblocking:
            raise SysError("EINPROGRESS")

        def attempt() -> object:
            err = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise SysError(errno.errorcode.get(err, "EIO"))
            state = s.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
            if state in (2, 3):  # SYN_SENT, SYN_RECV (a simultaneous open): connect() still waits
                return BLOCK
            return 0
        return attempt

    # ------------------------------------------------------------ data
    def _write(self, fd, buf=None, count=0, flags=0):
        s = self._sock(fd)
        left = [int(count)]
        oob = flags == "MSG_OOB" or (isinstance(flags, tuple) and "MSG_OOB" in flags)

        def op() -> object:
            done = int(count) - left[0]
            try:
                left[0] -= s.sock.send(bytes(left[0]), (socket.MSG_OOB if oob else 0) | socket.MSG_NOSIGNAL)
            except BlockingIOError:
                if done and s.nonblocking:
                    return done
                raise
            if left[0] and not s.nonblocking:
                return BLOCK
            return int(count) - left[0]
        return self._try(s, op)

    _send = _write

    def _sendto(self, fd, buf=None, count=0, flags=0, addr=None, addrlen=None):
        return self._write(fd, buf, count, flags)

    def _writev(self, fd, iov=None, iovcnt=None):
        return self._write(fd, None, _iov_total(iov))

    def _sendmsg(self, fd, msg=None, flags=0):
        return self._write(fd, None, _msg_total(msg), flags)

    def _read(self, fd, buf=None, count=0, flags=0):
        s = self._sock(fd)
        return self._try(s, lambda: len(s.sock.recv(int(count))))

    _recv = _read

    def _recvfrom(self, fd, buf=None, count=0, flags=0, addr=None, addrlen=None):
        return self._read(fd, buf, count, flags)

    def _readv(self, fd, iov=None, iovcnt=None):
        return self._read(fd, None, _iov_total(iov))

    def _recvmsg(self, fd, msg=None, flags=0):
        return self._read(fd, None, _msg_total(msg))

    def _shutdown(self, fd, how="SHUT_WR"):
        s = self._sock(fd)
        value = {"SHUT_RD": socket.SHUT_RD, "SHUT_WR": socket.SHUT_WR, "SHUT_RDWR": socket.SHUT_RDWR}.get(how, how)
        return self._try(s, lambda: s.sock.shutdown(int(value)) or 0)

    def _close(self, fd):
        s = self._sock(fd)
        self.newest_closed = self.newest_closed or s is self.newest
        del self.table[fd]
        s.sock.close()
        return lambda: 0

    def _getsockname(self, fd, addr=None, length=None):
        s = self._sock(fd)
        return self._try(s, lambda: s.sock.getsockname() and 0)

    def _getpeername(self, fd, addr=None, length=None):
        s = self._sock(fd)
        return self._try(s, lambda: s.sock.getpeername() and 0)

    # ------------------------------------------------------------ options and control
    def _fcntl(self, fd, cmd, flags=None):
        s = self._sock(fd)
        if cmd == "F_GETFL":
            return lambda: 0x2 | (0x800 if s.nonblocking else 0)
        if cmd == "F_SETFL":
            names = flags if isinstance(flags, tuple) else (flags,)
            s.nonblocking = "O_NONBLOCK" in names or (isinstance(flags, int) and bool(flags & 0x800))
            return lambda: 0
        raise Mismatch(f"fcntl command {cmd} is not supported")

    def _setsockopt(self, fd, level, name, value, length=None):
        s = self._sock(fd)
        if name == "SO_LINGER":
            if not isinstance(value, dict):
                raise Mismatch("SO_LINGER takes {onoff=N, linger=N}")
            raw = struct.pack("ii", value.get("onoff", value.get("l_onoff", 0)),
                              value.get("linger", value.get("l_linger", 0)))
            return self._try(s, lambda: s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, raw) or 0)
        if name not in _SOCKOPTS:
            raise Mismatch(f"socket option {name} is not supported")
        v = value[0] if isinstance(value, list) and value else value
        if not isinstance(v, int):
            raise Mismatch(f"{name} takes a number, e.g. [1]")
        lvl, opt = _SOCKOPTS[name]
        return self._try(s, lambda: s.sock.setsockopt(lvl, opt, v) or 0)

    def _getsockopt(self, fd, level, name, value, length=None):
        s = self._sock(fd)
        if name == "TCP_INFO":
            check_tcp_info(self.tcp_info(s), value)
            return lambda: 0
        if name == "SO_LINGER":
            onoff, linger = struct.unpack("ii", s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
            have_any: object = {"onoff": onoff, "linger": linger}
            want = {k.removeprefix("l_"): v for k, v in value.items()} if isinstance(value, dict) else value
        elif name in _SOCKOPTS:
            lvl, opt = _SOCKOPTS[name]
            have_any = s.sock.getsockopt(lvl, opt)
            want = value[0] if isinstance(value, list) and value else value
            if name == "SO_ERROR" and isinstance(want, str):
                want = getattr(errno, want, want)
            if name in ("SO_RCVBUF", "SO_SNDBUF") and self.portable:
                return lambda: 0
        else:
            raise Mismatch(f"socket option {name} is not supported")
        if want != WILDCARD and have_any != want:
            raise Mismatch(f"getsockopt {name} gave [{have_any}], the script expects [{want}]")
        return lambda: 0

    def tcp_info(self, s: KSocket) -> dict[str, int]:
        from ..core.tcpinfo import TcpState, linux_state

        info = parse_tcp_info(s.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256))
        info["tcpi_state"] = TcpState(linux_state(info["tcpi_state"]), info["tcpi_state"])
        return info

    def _ioctl(self, fd, request=None, arg=None):
        import fcntl

        s = self._sock(fd)
        want = arg[0] if isinstance(arg, list) and arg else arg
        if request == "FIONBIO":
            s.nonblocking = bool(want)
            return lambda: 0
        if request not in _IOCTL:
            raise Mismatch(f"ioctl request {request} is not supported (known: FIONREAD, SIOCINQ, SIOCOUTQ, "
                           "TIOCOUTQ, SIOCOUTQNSD, FIONBIO)")
        try:
            have = struct.unpack("i", fcntl.ioctl(s.sock.fileno(), _IOCTL[request], b"\0\0\0\0"))[0]
        except OSError as e:
            raise SysError(_errno_name(e)) from None
        if want not in (None, WILDCARD) and have != want:
            raise Mismatch(f"ioctl {request} gave [{have}], the script expects [{want}]")
        return lambda: 0

    def _poll(self, fds=None, nfds=None, timeout=0):
        import select

        if not isinstance(fds, list):
            raise Mismatch("poll takes [{fd=N, events=MASK, revents=MASK}, ...]")
        wanted = [(int(p["fd"]), _mask(p.get("events", 0)), p.get("revents", WILDCARD)) for p in fds]
        clock = self.clock
        deadline = None if int(timeout) < 0 else clock() + int(timeout) / 1000

        def attempt() -> object:
            poller = select.poll()
            for fd, events, _ in wanted:
                if fd in self.table:
                    poller.register(self.table[fd].sock.fileno(), events)
            by_real = {self.table[fd].sock.fileno(): fd for fd, _, _ in wanted if fd in self.table}
            got = {by_real[real]: mask for real, mask in poller.poll(0)}
            ready = [got.get(fd, 0 if fd in self.table else POLL["POLLNVAL"]) for fd, _, _ in wanted]
            if not any(ready) and (deadline is None or clock() < deadline - 1e-9):
                return BLOCK
            for (fd, _, want), have in zip(wanted, ready, strict=True):
                if want != WILDCARD and _mask(want) != have:
                    raise Mismatch(f"poll: fd {fd} revents {_mask_text(have)}, the script expects "
                                   f"{_mask_text(_mask(want))}")
            return sum(1 for r in ready if r)

        if deadline is not None:
            attempt.deadline = deadline  # type: ignore[attr-defined]
        return attempt

    clock: Callable[[], float] = staticmethod(lambda: 0.0)  # type: ignore[assignment]  # set by the runner

