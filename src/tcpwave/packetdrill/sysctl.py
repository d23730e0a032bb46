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


# --kernel: FreeBSD's names given their Linux equivalents (the value converted), or None where Linux
# has no such sysctl (docs/packetdrill.md lists both)
def _secs(v: str) -> str:
    return str(max(1, round(int(v) / 1000)))


def _same(v: str) -> str:
    return v


FREEBSD_TO_LINUX: dict[str, list[tuple[str, Callable[[str], str]]] | None] = {
    "net.inet.tcp.rfc1323": [("net.ipv4.tcp_timestamps", _same), ("net.ipv4.tcp_window_scaling", _same)],
    "net.inet.tcp.sack.enable": [("net.ipv4.tcp_sack", _same)],
    "net.inet.tcp.syncookies": [("net.ipv4.tcp_syncookies", _same)],
    "net.inet.tcp.rexmit_min": [("net.ipv4.tcp_rto_min_us", lambda v: str(int(v) * 1000))],
    "net.inet.tcp.keepidle": [("net.ipv4.tcp_keepalive_time", _secs)],
    "net.inet.tcp.keepintvl": [("net.ipv4.tcp_keepalive_intvl", _secs)],
    "net.inet.tcp.keepcnt": [("net.ipv4.tcp_keepalive_probes", _same)],
    "net.inet.tcp.finwait2_timeout": [("net.ipv4.tcp_fin_timeout", _secs)],
    "net.inet.tcp.cc.algorithm": [("net.ipv4.tcp_congestion_control", lambda v: {"newreno": "reno"}.get(v, v))],
    "net.inet.tcp.ecn.enable": [("net.ipv4.tcp_ecn", _same)],
    "net.inet.tcp.minmss": [("net.ipv4.tcp_min_snd_mss", _same)],
    "net.inet.tcp.path_mtu_discovery": [("net.ipv4.ip_no_pmtu_disc", lambda v: str(int(int(v) == 0)))],
    # none on Linux: its behaviour there is fixed, or set another way (a route attribute, a socket option)
    "net.inet.tcp.insecure_rst": None,  # Linux always checks RSTs as RFC 5961
    "net.inet.tcp.insecure_syn": None,  # Linux always answers an in-window SYN with a challenge ACK
    "net.inet.tcp.drop_synfin": None,  # Linux always drops SYN+FIN
    "net.inet.tcp.msl": None,  # Linux's TIME_WAIT is fixed at 60 s
    "net.inet.tcp.delayed_ack": None,  # (the route's quickack, or TCP_QUICKACK)
    "net.inet.tcp.delacktime": None,  # (fixed 40 ms minimum; the route's rto_min does not change it)
    "net.inet.tcp.initcwnd_segments": None,  # (the route's initcwnd)
    "net.inet.tcp.mssdflt": None,
    "net.inet.tcp.blackhole": None,
    "net.inet.tcp.tolerate_missing_ts": None,
    "net.inet.tcp.nolocaltimewait": None,
    "net.inet.tcp.sendspace": None,  # (net.ipv4.tcp_wmem's middle value: three numbers, not one)
    "net.inet.tcp.recvspace": None,  # (net.ipv4.tcp_rmem's)
}
_PAIR = re.compile(r"(net\.inet6?\.[A-Za-z0-9_.]+)=([^\s;&|`]+)")
_EMPTY_SYSCTL = re.compile(r"\bsysctl(?:\s+-[A-Za-z]+)*\s*(?=$|;|&&|\|\||\n)")


def to_linux(command: str) -> tuple[str, list[str]]:
    """A shell line with FreeBSD sysctl settings given their Linux names; the settings that have none
    (left out: a `sysctl` with nothing left to set becomes `true`)."""
    unmapped: list[str] = []

    def linux(m: re.Match) -> str:
        mapped = FREEBSD_TO_LINUX.get(m[1])
        try:
            if mapped:
                return " ".join(f"{name}={convert(m[2])}" for name, convert in mapped)
        except ValueError:
            pass
        unmapped.append(f"{m[1]}={m[2]}")
        return ""

    out = _PAIR.sub(linux, command)
    if out == command:
        return command, []
    return _EMPTY_SYSCTL.sub("true", out), unmapped
