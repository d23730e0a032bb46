"""`--cc NAME` and `--set KNOB=VALUE`: any Config field from the command line, so that any run can
be reproduced with the settings it had. Shared by every command that runs a stack."""

import argparse
import dataclasses
import types
import typing

from ..core.config import Config

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def add(p, cc: bool = True) -> None:
    if cc:
        p.add_argument("--cc", dest="cc_name", metavar="NAME",
                       help="congestion control: cubic (default), reno, bbr-lite")
    p.add_argument("--set", dest="knobs", action="append", default=[], metavar="KNOB=VALUE",
                   help="set any tcpwave.Config field, e.g. --set rto_min=1 --set sack=off (repeatable; "
                        "`--set help` lists them)")


def fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Config)}


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
    out: dict = {}
    known = fields()
    for item in getattr(args, "knobs", None) or []:
        if item == "help":
            raise argparse.ArgumentTypeError(
                "Config fields: " + ", ".join(f"{n} (default {f.default})" for n, f in known.items()))
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            raise argparse.ArgumentTypeError(f"--set {item}: expected KNOB=VALUE with KNOB one of "
                                             f"{', '.join(known)}")
        out[name] = _convert(name, value.strip())
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
