"""`--cc NAME` and `--set KNOB=VALUE`: any Config field from the command line, so that any run can
be reproduced with the settings it had. Shared by every command that runs a stack."""

import argparse
import dataclasses
import types
import typing

from ..core import profiles
from ..core.config import Config

# The values a knob may take from the command line, inclusive (a value outside wedges or breaks a
# run: recv_buffer=0 opens no window at all). Limits follow Linux's where it has one.
RANGES: dict[str, tuple[float, float]] = {
    "msl": (0.001, 3600), "rto_initial": (0.001, 600), "rto_min": (0.001, 120), "rto_max": (0.001, 3600),
    "clock_granularity": (1e-6, 1), "syn_retries": (0, 127), "syn_linear_timeouts": (0, 127),
    "synack_retries": (0, 255), "data_retries": (0, 255), "mss": (88, 65495),  # (88: Linux's TCP_MIN_MSS)
    "send_buffer": (4096, 1 << 30), "recv_buffer": (4096, 1 << 30),  # (1 GB: the largest scaled window)
    "sws_override": (0.001, 60), "delayed_ack": (0, 0.499), "quickack": (0, 1000),
    "initial_cwnd_segments": (1, 1000), "backlog": (1, 65535), "max_syn_backlog": (1, 1 << 20), "syncookies": (0, 2),
    "keepalive_idle": (1, 32767), "keepalive_interval": (1, 32767), "keepalive_count": (1, 127),  # (Linux's)
    "user_timeout": (0.001, 1e6), "challenge_ack_limit": (0, 1 << 31), "invalid_ratelimit": (0, 60),
    "rst_limit": (0, 1 << 31), "fin_timeout": (0.001, 3600),
    "mem_low": (0, 1 << 40), "mem_pressure": (1 << 20, 1 << 40), "mem_high": (1 << 20, 1 << 40),  # bytes
    "max_connections": (0, 1 << 24),  # (0: no limit)
    "maxsockbuf": (0, 1 << 30),  # bytes (0: scale for recv_buffer)
}
CHOICES = {"option_layout": ("linux", "freebsd")}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def add(p, cc: bool = True) -> None:
    if cc:
        p.add_argument("--cc", dest="cc_name", metavar="NAME",
                       help="congestion control: cubic (default), reno, bbr-lite")
    p.add_argument("--profile", choices=profiles.NAMES, metavar="NAME",
                   help="a stack's choices where the RFCs leave room: linux (the default), freebsd or rfc "
                        "(docs/packetdrill.md lists the knobs each sets; --set wins over it)")
    p.add_argument("--set", dest="knobs", action="append", default=[], metavar="KNOB=VALUE",
                   help="set any tcpwave.Config field, e.g. --set rto_min=1 --set sack=off (repeatable; "
                        "`--set help` lists them)")


def fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Config)}


def _range(name: str) -> str:
    return f", {_num(RANGES[name][0])}..{_num(RANGES[name][1])}" if name in RANGES else ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _convert(name: str, text: str):
    hints = typing.get_type_hints(Config)
    kind = hints[name]
    options = [kind]
    if isinstance(kind, types.UnionType):
        options = list(typing.get_args(kind))
    if type(None) in options and text.lower() in ("none", ""):
        return None
    for t in options:
        if t is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
        elif t in (int, float, str):
            try:
                return t(text)
            except ValueError:
                continue
    names = " or ".join("None" if t is type(None) else getattr(t, "__name__", str(t)) for t in options)
    raise argparse.ArgumentTypeError(f"--set {name}={text}: not a valid {names}")


def changes(args) -> dict:
    """The Config fields the command line sets (--cc and every --set)."""
    profile = getattr(args, "profile", None)
    out: dict = profiles.settings(profile) if profile else {}
    known = fields()
    for item in getattr(args, "knobs", None) or []:
        if item == "help":
            raise argparse.ArgumentTypeError(
                "Config fields: " + ", ".join(f"{n} (default {f.default}{_range(n)})" for n, f in known.items()))
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            raise argparse.ArgumentTypeError(f"--set {item}: expected KNOB=VALUE with KNOB one of "
                                             f"{', '.join(known)}")
        out[name] = _convert(name, value.strip())
        v = out[name]
        if name in CHOICES and v not in CHOICES[name]:
            raise argparse.ArgumentTypeError(f"--set {item}: {name} is one of {', '.join(CHOICES[name])}")
        if name in RANGES and isinstance(v, int | float) and not isinstance(v, bool):
            low, high = RANGES[name]
            if low <= v <= high:
                continue
            raise argparse.ArgumentTypeError(f"--set {item}: {name} must be in {_num(low)}..{_num(high)}")
    cc = getattr(args, "cc_name", None)
    if cc:
        out["congestion_control"] = cc
    if "congestion_control" in out:
        from ..cc import REGISTRY

        if out["congestion_control"] not in REGISTRY:
            raise argparse.ArgumentTypeError(f"unknown congestion control {out['congestion_control']!r}; "
                                             f"known: {', '.join(sorted(REGISTRY))}")
    return out


def config(args, base: Config | None = None) -> Config:
    """A Config with the command line's settings on top of `base` (or the defaults)."""
    try:
        return dataclasses.replace(base or Config(), **changes(args))
    except ValueError as e:  # Config's own checks (delayed_ack range, rto_min > 0, ...)
        raise argparse.ArgumentTypeError(str(e)) from None


def as_args(changes_: dict) -> list[str]:
    """The same settings as command-line words (for a subprocess)."""
    out = []
    for name, value in changes_.items():
        out += ["--set", f"{name}={'none' if value is None else value}"]
    return out
