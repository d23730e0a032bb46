"""The common socket options as Linux applies them to a connection and to the configuration of one
still to be made: shared by the packetdrill runner (options by name) and the blocking socket API
(options by number). SO_LINGER and SO_ERROR belong to the descriptor, so the callers keep them.

Also struct tcp_info as Linux lays it out (include/uapi/linux/tcp.h), for getsockopt(TCP_INFO, n)."""

import dataclasses
import struct
from typing import Any

from .config import Config
from .state import State

KEEPALIVE_KNOBS = {"TCP_KEEPIDLE": "keepalive_idle", "TCP_KEEPINTVL": "keepalive_interval",
                   "TCP_KEEPCNT": "keepalive_count"}
BOOL_OPTIONS = frozenset({"SO_KEEPALIVE", "TCP_NODELAY", "SO_REUSEADDR", "SO_REUSEPORT", "TCP_NOOPT"})
OPTIONS = frozenset({"SO_KEEPALIVE", "SO_REUSEADDR", "SO_REUSEPORT", "SO_RCVBUF", "SO_SNDBUF", "TCP_NODELAY",
                     "TCP_USER_TIMEOUT", "TCP_NOOPT", *KEEPALIVE_KNOBS})


class UnknownOption(KeyError):
    """An option this stack does not implement (ENOPROTOOPT)."""


def set_option(config: Config, conn: Any, name: str, value: int, now: float) -> Config:
    """Set option `name` to `value` on `conn` (a Connection, or None before there is one); returns the
    configuration with the change, for connections still to be made. ValueError: a value Linux refuses
    with EINVAL."""
    changes: dict[str, Any] = {}
    if name in ("SO_REUSEADDR", "SO_REUSEPORT"):
        return config  # the stack lets any socket reuse a port that is free of connections
    if name == "SO_KEEPALIVE":
        changes = {"keepalive": bool(value)}
    elif name in KEEPALIVE_KNOBS:
        if value < 1:
            raise ValueError(f"{name} must be at least 1")
        changes = {KEEPALIVE_KNOBS[name]: value}
    elif name == "TCP_NODELAY":
        changes = {"nodelay": bool(value)}
    elif name == "TCP_NOOPT":  # FreeBSD's: the SYN carries no options, so none is negotiated
        changes = {"noopt": bool(value), **({"window_scaling": False, "timestamps": False, "sack": False}
                                            if value else {})}
    elif name == "TCP_USER_TIMEOUT":
        if value < 0:
            raise ValueError("TCP_USER_TIMEOUT must not be negative")
        changes = {"user_timeout": value / 1000 or None}
    elif name in ("SO_RCVBUF", "SO_SNDBUF"):
        changes = {"recv_buffer" if name == "SO_RCVBUF" else "send_buffer": max(value, 1024)}
    else:
        raise UnknownOption(name)
    config = dataclasses.replace(config, **changes)
    if conn is not None:
        conn.config = dataclasses.replace(conn.config, **changes)
        _apply(conn, name, changes, now)
    return config


def _apply(conn: Any, name: str, changes: dict[str, Any], now: float) -> None:
    if name == "SO_KEEPALIVE":
        conn.set_keepalive(changes["keepalive"], now)
    elif name in KEEPALIVE_KNOBS and conn.keepalive:  # re-armed with the new idle time, as Linux does
        conn.set_keepalive(False, now)
        conn.set_keepalive(True, now)
    elif name == "TCP_NODELAY":
        conn.set_nodelay(changes["nodelay"], now)
    elif name == "TCP_USER_TIMEOUT":
        conn.set_user_timeout(changes["user_timeout"], now)
    elif name in ("SO_RCVBUF", "SO_SNDBUF") and conn.state is not State.CLOSED:  # at any time, as Linux
        size = changes["recv_buffer" if name == "SO_RCVBUF" else "send_buffer"]
        conn.set_buffers(now, **{"recv" if name == "SO_RCVBUF" else "send": size})


def get_option(config: Config, conn: Any, name: str) -> int:
    """The value getsockopt gives for `name` (SO_REUSEADDR/SO_REUSEPORT are the caller's to keep)."""
    cfg = conn.config if conn is not None else config
    if name in ("SO_RCVBUF", "SO_SNDBUF"):
        return int(cfg.recv_buffer if name == "SO_RCVBUF" else cfg.send_buffer)
    if name == "SO_KEEPALIVE":
        return int(conn.keepalive if conn is not None else cfg.keepalive)
    if name == "TCP_NODELAY":
        return int(conn.nodelay if conn is not None else cfg.nodelay)
    if name == "TCP_NOOPT":
        return int(cfg.noopt)
    if name == "TCP_USER_TIMEOUT":
        t = conn.user_timeout if conn is not None else cfg.user_timeout
        return round((t or 0) * 1000)
    if name in KEEPALIVE_KNOBS:
        return int(getattr(cfg, KEEPALIVE_KNOBS[name]))
    raise UnknownOption(name)


# struct tcp_info up to tcpi_snd_wnd (232 bytes, Linux 5.4 and later); fields tcp_info() does not have are 0
_LAYOUT = (("B", "state ca_state retransmits probes backoff options wscale app_limited"),
           ("I", "rto ato snd_mss rcv_mss unacked sacked lost retrans fackets last_data_sent last_ack_sent "
                 "last_data_recv last_ack_recv pmtu rcv_ssthresh rtt rttvar snd_ssthresh snd_cwnd advmss "
                 "reordering rcv_rtt rcv_space total_retrans"),
           ("Q", "pacing_rate max_pacing_rate bytes_acked bytes_received"),
           ("I", "segs_out segs_in notsent_bytes min_rtt data_segs_in data_segs_out"),
           ("Q", "delivery_rate busy_time rwnd_limited sndbuf_limited"),
           ("I", "delivered delivered_ce"),
           ("Q", "bytes_sent bytes_retrans"),
           ("I", "dsack_dups reord_seen rcv_ooopack snd_wnd"))
TCP_INFO_FIELDS = tuple(f"tcpi_{name}" for _, names in _LAYOUT for name in names.split())
TCP_INFO = struct.Struct("=" + "".join(code * len(names.split()) for code, names in _LAYOUT))


def pack_tcp_info(info: dict[str, int]) -> bytes:
    """tcp_info() (core/tcpinfo.py) as the bytes getsockopt(IPPROTO_TCP, TCP_INFO, n) gives on Linux."""
    values = dict(info, tcpi_wscale=info.get("tcpi_snd_wscale", 0) | info.get("tcpi_rcv_wscale", 0) << 4)
    limits = {"B": 0xFF, "I": 0xFFFFFFFF, "Q": (1 << 64) - 1}
    codes = TCP_INFO.format[1:]
    fields = zip(TCP_INFO_FIELDS, codes, strict=True)
    return TCP_INFO.pack(*(min(max(int(values.get(f, 0)), 0), limits[c]) for f, c in fields))


def unpack_tcp_info(data: bytes) -> dict[str, int]:
    """Linux's struct tcp_info bytes (from the kernel or pack_tcp_info) as a dict of tcpi_* fields."""
    data = data[:TCP_INFO.size].ljust(TCP_INFO.size, b"\0")
    info = dict(zip(TCP_INFO_FIELDS, TCP_INFO.unpack(data), strict=True))
    info["tcpi_snd_wscale"], info["tcpi_rcv_wscale"] = info["tcpi_wscale"] & 15, info["tcpi_wscale"] >> 4
    return info
