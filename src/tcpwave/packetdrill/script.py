"""Read a packetdrill-format script into header flags and a timeline of events.

Only reading happens here: no stack, no clock. Every event keeps its line number
and source text so that the runner can point at the line that failed.
"""

import re
from dataclasses import dataclass, field

from ..wire.tcp import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG

FLAG_LETTERS = {"S": SYN, "F": FIN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR}
FLAG_ORDER = "SFRPUEW."  # how flags are written back
WILDCARD = "..."


class ScriptError(Exception):
    """The script cannot be read; `line` is where."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class When:
    """An event's time. kind: 'abs', 'rel' (to the previous event) or 'any' (`*`).
    end: the far end of a range `a~b`; block_end: the return time of a blocking call `a...b`.
    With a relative start, both ends are offsets from the same base as the start."""

    kind: str
    start: float = 0.0
    end: float | None = None
    block_end: float | None = None


@dataclass
class Event:
    line: int
    when: When
    text: str


@dataclass
class PacketEvent(Event):
    inbound: bool = True
    flags: int = 0
    start: int = 0
    end: int = 0
    ack: int | None = None
    win: int | None = None
    urg: int | None = None
    options: list | str | None = None  # None: no options; WILDCARD; or [(name, *values), ...]


@dataclass
class CallEvent(Event):
    name: str = ""
    args: list = field(default_factory=list)
    ret: int | str = 0  # an int, or WILDCARD
    errno: str | None = None


@dataclass
class SkippedEvent(Event):
    kind: str = "shell"  # 'shell' (backticks) or 'code' (%{ }%)


@dataclass
class Script:
    path: str
    flags: dict[str, str]
    flag_lines: dict[str, int]
    events: list[Event]


# ------------------------------------------------------------------ lines
def _strip_comments(text: str) -> str:
    """Remove /* */ comments (keeping line breaks) so that line numbers still hold."""
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)


def parse_script(text: str, path: str = "<script>") -> Script:
    lines = _strip_comments(text).split("\n")
    flags: dict[str, str] = {}
    flag_lines: dict[str, int] = {}
    events: list[Event] = []
    i = 0
    while i < len(lines):
        lineno, raw = i + 1, lines[i]
        i += 1
        line = _drop_line_comment(raw).strip()
        if not line:
            continue
        if line.startswith("--"):
            name, _, value = line[2:].partition("=")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
                raise ScriptError(lineno, f"bad flag {line!r}")
            flags[name] = value if _ else "true"
            flag_lines[name] = lineno
            continue
        timed = _TIME_RE.match(line)
        when = When("rel")
        if timed and timed[4].lstrip().startswith(("`", "%{")):  # a time before a shell line or a %{ }% block
            when = _when(timed[1], timed[2], timed[3])
            line = timed[4].lstrip()
        if line.startswith("`") or line.startswith("%{"):
            closer = "`" if line.startswith("`") else "}%"
            body, body_end = line, lineno
            while not (body.rstrip().endswith(closer) and len(body.strip()) > len(closer)):
                if i >= len(lines):
                    raise ScriptError(lineno, f"unterminated {'shell command' if closer == '`' else '%{ block'}")
                body += "\n" + lines[i]
                i += 1
                body_end = i
            kind = "shell" if closer == "`" else "code"
            events.append(SkippedEvent(lineno, when, f"{body.splitlines()[0]} (lines {lineno}-{body_end})"
                                       if body_end > lineno else body, kind))
            continue
        events.append(parse_event(line, lineno))
    return Script(path, flags, flag_lines, events)


def _drop_line_comment(line: str) -> str:
    if line.lstrip().startswith("#") and not line.lstrip().startswith("#!"):
        return ""
    pos = line.find("//")
    return line if pos < 0 else line[:pos]


# ------------------------------------------------------------------ events
_NUM = r"\d*\.?\d+"
_TIME_RE = re.compile(rf"^(\*|\+?{_NUM})(?:~(\+?{_NUM}))?(?:\.\.\.(\+?{_NUM}))?\s+(.*)$")


def parse_event(line: str, lineno: int) -> Event:
    m = _TIME_RE.match(line)
    if not m:
        raise ScriptError(lineno, f"expected a time, then a packet or a call: {line!r}")
    start, range_end, block_end, rest = m.groups()
    when = _when(start, range_end, block_end)
    rest = rest.strip()
    if rest[:1] in "<>" and rest[1:2].isspace():
        return parse_packet(rest, lineno, when)
    return parse_call(rest, lineno, when)


def _when(start: str, range_end: str | None, block_end: str | None) -> When:
    def value(s: str | None) -> float | None:
        return None if s is None else float(s.lstrip("+"))

    if start == "*":
        return When("any")
    kind = "rel" if start.startswith("+") else "abs"
    return When(kind, value(start) or 0.0, value(range_end), value(block_end))


_PACKET_RE = re.compile(
    r"^(?P<dir>[<>])\s+(?P<flags>[SFRPUEW.\-]+)\s+(?:\[[^\]]*\]\s+)?"
    r"(?P<start>\d+):(?P<end>\d+)\((?P<len>\d+)\)(?P<rest>.*)$"
)
_FIELD_RE = re.compile(r"\s*(ack|win|urg)\s+(\d+)")


def parse_packet(text: str, lineno: int, when: When) -> PacketEvent:
    m = _PACKET_RE.match(text)
    if not m:
        raise ScriptError(lineno, f"cannot read packet {text!r} (want: < FLAGS start:end(len) ...)")
    flags = 0
    for ch in m["flags"]:
        if ch != "-":
            flags |= FLAG_LETTERS[ch]
    start, end, length = int(m["start"]), int(m["end"]), int(m["len"])
    if (end - start) & 0xFFFFFFFF != length:
        raise ScriptError(lineno, f"{start}:{end}({length}): the length must be end - start")
    ev = PacketEvent(lineno, when, text, inbound=m["dir"] == "<", flags=flags, start=start, end=end)
    rest = m["rest"]
    while True:
        f = _FIELD_RE.match(rest)
        if not f:
            break
        setattr(ev, f[1], int(f[2]))
        rest = rest[f.end():]
    rest = rest.strip()
    if rest.startswith("<"):
        if not rest.endswith(">"):
            raise ScriptError(lineno, f"options must end with '>': {rest!r}")
        ev.options = parse_options(rest[1:-1], lineno)
        rest = ""
    if rest:
        raise ScriptError(lineno, f"cannot read {rest!r} in a packet (known: ack N, win N, urg N, <options>)")
    if ev.flags & ACK and ev.ack is None and ev.inbound:
        raise ScriptError(lineno, "a packet with the ACK flag needs 'ack N'")
    return ev


def parse_options(text: str, lineno: int) -> list | str:
    text = text.strip()
    if text == WILDCARD:
        return WILDCARD
    out: list[tuple] = []
    for item in (p.strip() for p in text.split(",")):
        words = item.split()
        try:
            if words in (["nop"], ["eol"], ["sackOK"]):
                out.append((words[0],))
            elif len(words) == 2 and words[0] in ("mss", "wscale"):
                out.append((words[0], int(words[1])))
            elif words and words[0] == "sack":
                blocks = [tuple(int(x) for x in w.split(":")) for w in words[1:]]
                if not blocks or any(len(b) != 2 for b in blocks):
                    raise ValueError
                out.append(("sack", *blocks))
            elif len(words) == 5 and words[0] == "TS" and words[1] == "val" and words[3] == "ecr":
                out.append(("TS", int(words[2]), int(words[4])))
            else:
                raise ValueError
        except ValueError:
            raise ScriptError(lineno, f"cannot read option {item!r} (known: mss N, wscale N, sackOK, "
                                      "sack a:b ..., TS val X ecr Y, nop, eol, ...)") from None
    return out


# ------------------------------------------------------------------ calls
_TOKEN_RE = re.compile(r'\s*(\.\.\.|0x[0-9a-fA-F]+|-?\d+|[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*"|[][{}()=,|])')


def _tokens(text: str, lineno: int) -> list[str]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ScriptError(lineno, f"cannot read {text[pos:]!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


class _Tokens:
    def __init__(self, toks: list[str], lineno: int):
        self.toks, self.i, self.lineno = toks, 0, lineno

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise ScriptError(self.lineno, f"expected {want or 'more'}, found {tok or 'end of line'!r}")
        self.i += 1
        return tok


def parse_call(text: str, lineno: int, when: When) -> CallEvent:
    # "= -1 EAGAIN (Resource temporarily unavailable)", "= 0x02 (flags O_RDWR)": the note is for humans
    text = re.sub(r"(=\s*(?:-?0x[0-9a-fA-F]+|-?\d+|\.\.\.)(?:\s+E[A-Z0-9]+)?)\s*\(.*\)\s*$", r"\1", text)
    t = _Tokens(_tokens(text, lineno), lineno)
    name = t.take()
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or t.peek() != "(":
        raise ScriptError(lineno, f"expected a packet ('<' or '>') or a system call, found {text!r}")
    t.take("(")
    args = _values(t, ")")
    t.take("=")
    tok = t.take()
    ret: int | str = WILDCARD
    if tok != WILDCARD:
        try:
            ret = int(tok, 0)
        except ValueError:
            raise ScriptError(lineno, f"a return value must be a number or ..., found {tok!r}") from None
    errno_name = t.take() if t.peek() is not None else None
    if errno_name is not None and not re.fullmatch(r"E[A-Z0-9]+", errno_name):
        raise ScriptError(lineno, f"expected an errno name after the return value, found {errno_name!r}")
    if t.peek() is not None:
        raise ScriptError(lineno, f"unexpected {t.peek()!r} after the return value")
    return CallEvent(lineno, when, text, name=name, args=args, ret=ret, errno=errno_name)


def _values(t: _Tokens, close: str) -> list:
    """Comma-separated values up to and including the `close` token."""
    items = []
    if t.peek() != close:
        items.append(_value(t))
        while t.peek() == ",":
            t.take(",")
            items.append(_value(t))
    t.take(close)
    return items


def _value(t: _Tokens):
    """One argument: ..., a number, NAME or NAME|NAME, [values], {name=value, ...} or "string"."""
    tok = t.take()
    if tok == "[":
        return _values(t, "]")
    if tok == "{":
        fields = {}
        while t.peek() != "}":
            key = t.take()
            t.take("=")
            fields[key] = _value(t)
            if t.peek() == ",":
                t.take(",")
        t.take("}")
        return fields
    if tok.startswith('"'):
        return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
    if tok == WILDCARD:
        return WILDCARD
    parts = [tok]
    while t.peek() == "|":
        t.take("|")
        parts.append(t.take())
    if len(parts) == 1 and re.fullmatch(r"-?\d+|0x[0-9a-fA-F]+", tok):
        return int(tok, 0)
    return tuple(parts) if len(parts) > 1 else tok
