"""Shell lines of a script, in virtual time: `sysctl` settings become Config knobs; nothing runs on
the host. Linux `net.ipv4.tcp_*` / `net.core.*` and FreeBSD `net.inet.tcp.*` names, given as
`sysctl [-w|-q|-n] name=value ...` or `echo value > /proc/sys/...`. docs/packetdrill.md has the table.
"""

import re
import shlex
from collections.abc import Callable
from typing import Any


def _on(v: str) -> bool:
    return int(v) != 0


def _ms(v: str) -> float:
    return int(v) / 1000


_CC = {"newreno": "reno", "reno": "reno", "cubic": "cubic", "bbr": "bbr-lite"}

# name -> [(Config field, convert)]
TABLE: dict[str, list[tuple[str, Callable[[str], object]]]] = {
    # Linux
    "net.ipv4.tcp_timestamps": [("timestamps", _on)],
    "net.ipv4.tcp_sack": [("sack", _on)],
    "net.ipv4.tcp_window_scaling": [("window_scaling", _on)],
    "net.ipv4.tcp_syncookies": [("syncookies", int)],
    "net.ipv4.tcp_rfc1337": [("rfc1337", _on)],
    "net.ipv4.tcp_fin_timeout": [("fin_timeout", float)],
    "net.ipv4.tcp_retries2": [("data_retries", int)],
    "net.ipv4.tcp_syn_retries": [("syn_retries", int)],
    "net.ipv4.tcp_syn_linear_timeouts": [("syn_linear_timeouts", int)],
    "net.ipv4.tcp_synack_retries": [("synack_retries", int)],
    "net.ipv4.tcp_keepalive_time": [("keepalive_idle", float)],
    "net.ipv4.tcp_keepalive_intvl": [("keepalive_interval", float)],
    "net.ipv4.tcp_keepalive_probes": [("keepalive_count", int)],
    "net.ipv4.tcp_congestion_control": [("congestion_control", lambda v: _CC[v])],
    "net.ipv4.tcp_rto_min_us": [("rto_min", lambda v: int(v) / 1e6)],
    "net.ipv4.tcp_challenge_ack_limit": [("challenge_ack_limit", int)],
    "net.ipv4.tcp_invalid_ratelimit": [("invalid_ratelimit", _ms)],
    "net.ipv4.tcp_max_syn_backlog": [("max_syn_backlog", int)],
    "net.ipv4.tcp_abort_on_overflow": [("abort_on_overflow", _on)],
    "net.core.somaxconn": [("backlog", int)],
    # FreeBSD
    "net.inet.tcp.rfc1323": [("timestamps", _on), ("window_scaling", _on)],
    "net.inet.tcp.sack.enable": [("sack", _on)],
    "net.inet.tcp.insecure_rst": [("rfc5961", lambda v: not _on(v))],
    "net.inet.tcp.insecure_syn": [("rfc5961", lambda v: not _on(v))],
    "net.inet.tcp.drop_synfin": [("drop_synfin", _on)],
    "net.inet.tcp.syncookies": [("syncookies", int)],
    "net.inet.tcp.msl": [("msl", _ms)],
    "net.inet.tcp.rexmit_min": [("rto_min", _ms)],
    "net.inet.tcp.keepidle": [("keepalive_idle", _ms)],
    "net.inet.tcp.keepintvl": [("keepalive_interval", _ms)],
    "net.inet.tcp.keepcnt": [("keepalive_count", int)],
    "net.inet.tcp.finwait2_timeout": [("fin_timeout", _ms)],
    "net.inet.tcp.cc.algorithm": [("congestion_control", lambda v: _CC[v])],
    "net.inet.tcp.delacktime": [("delayed_ack", _ms)],
    "net.inet.tcp.recvspace": [("recv_buffer", int)],
    "net.inet.tcp.sendspace": [("send_buffer", int)],
    "kern.ipc.maxsockbuf": [("maxsockbuf", int)],
}


def settings(command: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The (name, value) pairs a shell line sets, and the commands in it that are not settings."""
    found: list[tuple[str, str]] = []
    other: list[str] = []
    for part in re.split(r";|&&|\|\||\n", command.strip().strip("`")):
        part = part.strip()
        if not part:
            continue
        try:
            words = shlex.split(part)
        except ValueError:
            other.append(part)
            continue
        if words[0] == "sysctl":
            pairs = [w for w in words[1:] if not w.startswith("-")]
            if pairs and all("=" in w for w in pairs):
                found += [(n.strip(), v.strip()) for n, _, v in (w.partition("=") for w in pairs)]
                continue
        m = re.fullmatch(r"echo\s+(\S+)\s*>\s*/proc/sys/(\S+)", " ".join(words))
        if m:
            found.append((m[2].replace("/", "."), m[1]))
            continue
        other.append(part)
    return found, other


def changes(command: str) -> tuple[dict[str, Any], list[str]]:
    """Config changes for a shell line, and what in it has no meaning here (unknown names, other
    commands)."""
    out: dict[str, Any] = {}
    unknown: list[str] = []
    pairs, other = settings(command)
    for name, value in pairs:
        mapped = TABLE.get(name)
        if mapped is None:
            unknown.append(f"{name}={value}")
            continue
        try:
            for field, convert in mapped:
                out[field] = convert(value)
        except (ValueError, KeyError):
            unknown.append(f"{name}={value}")
    return out, unknown + other


_QDISC = re.compile(r"tc\s+qdisc\s+(add|replace|change|del|delete)\s+dev\s+(\S+)\s+root\b(.*)")


def device_drops(command: str) -> bool | None:
    """What a `tc qdisc ... dev DEV root ...` command does to the test device: True when it leaves no
    room (`limit 0`: every packet the stack sends is dropped, as peers' user-timeout tests use it),
    False when it removes the qdisc or gives it room, None when the command is no such thing."""
    m = _QDISC.fullmatch(" ".join(command.split()))
    if m is None or m[2] == "lo":
        return None
    if m[1] in ("del", "delete"):
        return False
    limit = re.search(r"\blimit\s+(\d+)", m[3])
    return limit is not None and int(limit[1]) == 0
