"""setsockopt/getsockopt for the blocking API, by the socket module's numbers: the common options
(core/sockopts.py applies them, as for packetdrill scripts), SO_LINGER, SO_ERROR, SO_TYPE and TCP_INFO
as Linux's struct tcp_info bytes."""

import errno
import socket as _socket
import struct
from typing import Any

from ..core.sockopts import OPTIONS, UnknownOption, get_option, pack_tcp_info, set_option
from ..core.tcpinfo import tcp_info, unconnected_tcp_info

_TCP = _socket.IPPROTO_TCP
NAMES = {(level, getattr(_socket, name)): name for name in sorted(OPTIONS) if hasattr(_socket, name)
         for level in ((_socket.SOL_SOCKET,) if name.startswith("SO_") else (_TCP,))}
NAMES[(_socket.SOL_SOCKET, _socket.SO_LINGER)] = "SO_LINGER"
NAMES[(_socket.SOL_SOCKET, _socket.SO_ERROR)] = "SO_ERROR"
NAMES[(_socket.SOL_SOCKET, _socket.SO_TYPE)] = "SO_TYPE"
if hasattr(_socket, "TCP_INFO"):
    NAMES[(_TCP, _socket.TCP_INFO)] = "TCP_INFO"
_LINGER = struct.Struct("ii")


def option_name(level: int, optname: int) -> str:
    name = NAMES.get((level, optname))
    if name is None:
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")
    return name


def as_int(value: Any) -> int:
    """An option's value as setsockopt takes it: an int, or the bytes of a C int."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return int.from_bytes(bytes(value)[:4].ljust(4, b"\0"), "little", signed=True)
    return int(value)


def linger(value: Any) -> tuple[int, int]:
    """SO_LINGER's struct linger {l_onoff, l_linger}, from bytes (or an int: l_onoff alone)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        onoff, seconds = _LINGER.unpack(bytes(value)[:_LINGER.size].ljust(_LINGER.size, b"\0"))
        return onoff, seconds
    return int(value), 0


def pack_linger(onoff: int, seconds: int) -> bytes:
    return _LINGER.pack(onoff, seconds)


def set_common(config, conn, name: str, value: int, now: float):
    """set_option with the socket module's errors: EINVAL for a value Linux refuses."""
    try:
        return set_option(config, conn, name, value, now)
    except UnknownOption:
        raise OSError(errno.ENOPROTOOPT, "Protocol not available") from None
    except ValueError:
        raise OSError(errno.EINVAL, "Invalid argument") from None


def get_common(config, conn, name: str) -> int:
    try:
        return get_option(config, conn, name)
    except UnknownOption:
        raise OSError(errno.ENOPROTOOPT, "Protocol not available") from None


def tcp_info_bytes(config, conn, now: float) -> bytes:
    """TCP_INFO as Linux's getsockopt gives it (a socket with no connection: Linux's new-socket values)."""
    info = tcp_info(conn, now) if conn is not None else unconnected_tcp_info(config.initial_cwnd_segments,
                                                                              config.rto_initial)
    return pack_tcp_info(info)


def reply(value: int | bytes, buflen: int | None) -> int | bytes:
    """getsockopt's answer: without buflen an int (the first 4 bytes of a struct); with it, bytes."""
    if buflen is None:
        return value if isinstance(value, int) else as_int(value)
    if isinstance(value, int):
        value = value.to_bytes(4, "little", signed=True)
    return value[:buflen]
