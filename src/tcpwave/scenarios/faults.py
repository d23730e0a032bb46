"""`tcpwave demo --drop/--delay/--dup SPEC`: a segment named the way the ladder shows it, turned
into a simulator Fault that every host pair of the scenario gets.

SPEC is `HOST:FLAGS#N` (the Nth segment HOST sends with exactly those flags as the ladder prints
them, PSH left out; `#1` if omitted; a lone SYN, FIN or RST also names segments that carry it with
ACK, so `server:FIN` is the server's first FIN,ACK), or a row number of the ladder (`--rows` prints
them), counted in the run without the faults.
"""

import contextlib
import contextvars
import dataclasses
import re
from collections.abc import Callable

from ..sim import Fault
from ..wire.tcp import Segment, flags_text

ACTIONS = {"drop": "drop", "delay": "delay", "dup": "duplicate"}
_SPEC = re.compile(r"(?P<host>[A-Za-z0-9_.-]+):(?P<flags>[A-Za-z,]+)(?:#(?P<n>[1-9][0-9]*))?")
_VALID = {"SYN", "ACK", "FIN", "RST", "URG", "ECE", "CWR"}

FAULTS: contextvars.ContextVar[tuple[Fault, ...]] = contextvars.ContextVar("scenario_faults", default=())


class SpecError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Named:
    host: str
    flags: str  # as the ladder shows them: "ACK", "SYN,ACK", "FIN,ACK"
    n: int  # the nth such segment this host sends
    contained: bool  # a lone SYN/FIN/RST: also segments carrying it with other flags

    def __str__(self) -> str:
        return f"{self.host}:{self.flags}#{self.n}"


def shown_flags(flags: str) -> str:
    """The flags as the ladder prints them (PSH left out)."""
    return ",".join(f for f in flags.split(",") if f and f != "PSH")


def _canonical(flags: str) -> str:
    order = ["SYN", "FIN", "RST", "ACK", "URG", "ECE", "CWR"]  # the order flags_text writes them
    names = {f.strip().upper() for f in flags.split(",") if f.strip()}
    bad = names - _VALID
    if bad or not names:
        raise SpecError(f"unknown flag {', '.join(sorted(bad)) or flags!r}; flags are {', '.join(sorted(_VALID))}")
    return ",".join(sorted(names, key=order.index))


def parse(text: str) -> Named | int:
    """'client:ACK#1' -> Named; '7' -> 7 (a ladder row)."""
    text = text.strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    m = _SPEC.fullmatch(text)
    if m is None:
        raise SpecError(f"{text!r} names no segment: write HOST:FLAGS#N (e.g. client:ACK#1, server:FIN) or a row "
                        "number of the ladder (--rows prints them)")
    flags = _canonical(m["flags"])
    return Named(m["host"], flags, int(m["n"] or 1), flags in ("SYN", "FIN", "RST"))


def matches(named: Named, flags: str) -> bool:
    shown = shown_flags(flags)
    return shown == named.flags or (named.contained and named.flags in shown.split(","))


def name_row(events: list[dict], row: int, hosts: tuple[str, str] = ("client", "server")) -> Named:
    """The segment on a ladder row (rows count the segments sent, from 1), by name."""
    sends = [e for e in events if e["type"] == "send" and e["host"] in hosts]
    if row > len(sends):
        raise SpecError(f"the ladder has {len(sends)} rows; there is no row {row}")
    e = sends[row - 1]
    flags = shown_flags(e["flags"])
    n = sum(1 for s in sends[:row] if s["host"] == e["host"] and shown_flags(s["flags"]) == flags)
    return Named(e["host"], flags, n, False)


def fault(named: Named, action: str, peer: str, delay: float = 0.0) -> Fault:
    def match(seg: Segment) -> bool:
        return matches(named, flags_text(seg.flags))

    return Fault(named.host, peer, match=match, action=ACTIONS[action], skip=named.n - 1, delay=delay)


@contextlib.contextmanager
def injected(faults: list[Fault]):
    """Run scenarios with these faults on their link (each simulator gets fresh copies)."""
    token = FAULTS.set(tuple(faults))
    try:
        yield
    finally:
        FAULTS.reset(token)


def fresh() -> list[Fault]:
    """Copies of the faults in force, with their counts at zero."""
    return [dataclasses.replace(f) for f in FAULTS.get()]


def build(specs: list[tuple[str, str]], run_plain: Callable[[], list[dict]],
          hosts: tuple[str, str] = ("client", "server")) -> tuple[list[Fault], list[str]]:
    """(action, SPEC[=SECONDS]) pairs -> Faults and what each names ('drop client:ACK#1'). Row
    numbers are looked up in the run without faults (`run_plain` gives its events, once)."""
    plain: list[dict] | None = None
    faults, said = [], []
    for action, text in specs:
        delay = 0.0
        if action == "delay":
            spec_text, _, seconds = text.rpartition("=")
            try:
                delay = float(seconds)
            except ValueError:
                spec_text = ""
            if not spec_text or not delay > 0:
                raise SpecError(f"--delay {text!r}: write SPEC=SECONDS, e.g. client:ACK#1=0.5")
            text = spec_text
        named = parse(text)
        if isinstance(named, int):
            if plain is None:
                plain = run_plain()
            named = name_row(plain, named, hosts)
        if named.host not in hosts:
            raise SpecError(f"{named}: no host {named.host!r}; the hosts are {' and '.join(hosts)}")
        peer = hosts[1] if named.host == hosts[0] else hosts[0]
        faults.append(fault(named, action, peer, delay))
        said.append(f"{action} {named}" + (f" by {delay:g} s" if delay else ""))
    return faults, said
