"""Filters for `tcpwave ss` in Linux ss's words: `state established`, `dport = :80`, `sport >= :1024`,
`dst 192.0.2.1`, `src 192.0.2.2:80`, joined by `and`, `or`, `not` and parentheses.

    tcpwave ss state established '( dport = :80 or sport = :80 )'

States as ss names them (established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed,
close-wait, last-ack, listening, closing) or its groups (all, connected, synchronized, bucket, big).
"""

import ipaddress
import re
from collections.abc import Callable

_STATES = {"established": "ESTABLISHED", "syn-sent": "SYN_SENT", "syn-recv": "SYN_RCVD", "fin-wait-1": "FIN_WAIT_1",
           "fin-wait-2": "FIN_WAIT_2", "time-wait": "TIME_WAIT", "closed": "CLOSED", "close-wait": "CLOSE_WAIT",
           "last-ack": "LAST_ACK", "listening": "LISTEN", "listen": "LISTEN", "closing": "CLOSING"}
_GROUPS = {"all": set(_STATES.values()),
           "connected": set(_STATES.values()) - {"LISTEN", "CLOSED"},
           "synchronized": set(_STATES.values()) - {"LISTEN", "CLOSED", "SYN_SENT"},
           "bucket": {"SYN_RCVD", "TIME_WAIT"},
           "big": set(_STATES.values()) - {"SYN_RCVD", "TIME_WAIT"}}
_OPS = {"=": "eq", "==": "eq", "eq": "eq", "!=": "ne", "ne": "ne", "<": "lt", "lt": "lt", ">": "gt", "gt": "gt",
        "<=": "le", "le": "le", ">=": "ge", "ge": "ge"}
_COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
            "gt": lambda a, b: a > b, "le": lambda a, b: a <= b, "ge": lambda a, b: a >= b}

Row = dict
Test = Callable[[Row], bool]


class FilterError(ValueError):
    pass


def _tokens(words: list[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        for part in re.split(r"(\(|\)|!=|<=|>=|==|=|<|>)", w):
            out += part.split()
    return out


def _split(endpoint: str) -> tuple[str, int | None]:
    """'192.0.2.1:80' / '[2001:db8::1]:80' / ':80' / '192.0.2.1' / '*:80' -> (address or '', port)."""
    m = re.fullmatch(r"\[(.*)\](?::(\d+|\*))?|([^:]*|[0-9a-fA-F:]*::[0-9a-fA-F:]*)(?::(\d+|\*))?", endpoint)
    if not m:
        raise FilterError(f"not an address: {endpoint!r}")
    addr = m.group(1) if m.group(1) is not None else m.group(3) or ""
    port = m.group(2) if m.group(1) is not None else m.group(4)
    return ("" if addr == "*" else addr), (None if port in (None, "*") else int(port))


class _Parser:
    def __init__(self, tokens: list[str]):
        self.t, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> str:
        if self.i >= len(self.t):
            raise FilterError("the filter ends too soon")
        self.i += 1
        return self.t[self.i - 1]

    def expr(self) -> Test:
        left = self.term()
        while self.peek() in ("or", "||", ","):
            self.take()
            left = _either(left, self.term())
        return left

    def term(self) -> Test:
        left = self.factor()
        while self.peek() not in (None, ")", "or", "||", ","):
            if self.peek() in ("and", "&&", "&"):
                self.take()
            left = _both(left, self.factor())
        return left

    def factor(self) -> Test:
        word = self.take()
        if word in ("not", "!"):
            inner = self.factor()
            return lambda r: not inner(r)
        if word == "(":
            inner = self.expr()
            if self.take() != ")":
                raise FilterError("a '(' is not closed")
            return inner
        if word in ("dport", "sport", "dst", "src"):
            op = "eq"
            if self.peek() in _OPS:
                op = _OPS[self.take()]
            addr, port = _split(self.take())
            key = "remote" if word in ("dport", "dst") else "local"
            if word in ("dport", "sport"):
                if port is None or addr:
                    raise FilterError(f"{word} takes a port as :N")
                return lambda r: _port(r[key]) is not None and _COMPARE[op](_port(r[key]), port)
            if op not in ("eq", "ne"):
                raise FilterError(f"{word} compares with = or != only")
            want = op == "eq"
            return lambda r: _matches(r[key], addr, port) == want
        raise FilterError(f"unknown filter word {word!r} (dport, sport, dst, src, and, or, not, parentheses)")


def _either(a: Test, b: Test) -> Test:
    return lambda r: a(r) or b(r)


def _both(a: Test, b: Test) -> Test:
    return lambda r: a(r) and b(r)


def _port(endpoint: str) -> int | None:
    try:
        return _split(endpoint)[1]
    except FilterError:
        return None


def _matches(endpoint: str, addr: str, port: int | None) -> bool:
    try:
        have, have_port = _split(endpoint)
    except FilterError:
        return False
    if port is not None and have_port != port:
        return False
    if not addr:
        return True
    try:
        net = ipaddress.ip_network(addr, strict=False)
        return bool(have) and ipaddress.ip_address(have) in net
    except ValueError:
        return have == addr


def parse(words: list[str]) -> tuple[set[str] | None, Test | None]:
    """The states asked for (None: every state) and the expression, from the words after the options.
    Raises FilterError saying what is wrong."""
    states: set[str] | None = None
    words = list(words)
    while len(words) >= 2 and words[0] in ("state", "exclude"):
        kind, name = words.pop(0), words.pop(0).lower()
        chosen = _GROUPS.get(name) or ({_STATES[name]} if name in _STATES else None)
        if chosen is None:
            raise FilterError(f"no state {name!r} (established, syn-sent, ..., or all, connected, synchronized)")
        if kind == "state":
            states = (states or set()) | chosen
        else:
            states = (states if states is not None else set(_GROUPS["all"])) - chosen
    if words and words[0] in ("state", "exclude"):
        raise FilterError(f"{words[0]} needs a state name")
    tokens = _tokens(words)
    if not tokens:
        return states, None
    p = _Parser(tokens)
    test = p.expr()
    if p.peek() is not None:
        raise FilterError(f"unexpected {p.peek()!r}")
    return states, test


def select(rows: list[Row], states: set[str] | None, test: Test | None) -> list[Row]:
    return [r for r in rows if (states is None or r["state"] in states) and (test is None or test(r))]
