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
    any_seq: bool = False  # `...` in place of start:end(len) (a `>` line only): seq and length not checked
    any_len: int | None = None  # `...(N)`: seq not checked, the payload length is N
    ports: tuple[int, int] | None = None  # `sport>dport` written before the flags
    ip: dict = field(default_factory=dict)  # IP fields named in [ ] or ( ): ecn, tos, ttl, flowlabel


@dataclass
class CallEvent(Event):
    name: str = ""
    args: list = field(default_factory=list)
    ret: int | str = 0  # an int, or WILDCARD
    errno: str | None = None


@dataclass(frozen=True)
class Call:
    """A function written as an argument value: htons(8080), inet_addr("192.0.2.1"), sizeof(...)."""

    name: str
    args: tuple


@dataclass
class SkippedEvent(Event):
    kind: str = "shell"  # 'shell' (backticks) or 'code' (%{ }%)
    body: str = ""  # the command or the Python code, without its delimiters
    untimed: bool = False  # written without a time: packetdrill's init (first) or cleanup (last) command


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


def preprocess(lines: list[str], defines: dict[str, str] | None = None) -> list[str]:
    """Keep only the lines `#ifdef NAME` / `#ifndef NAME` / `#else` / `#endif` select, as the C
    preprocessor does (blocks nest; a name counts as defined with any value, `-D NAME` or `-D NAME=1`).
    Directive lines and the lines left out become blank, so that line numbers still hold."""
    names = defines or {}
    out: list[str] = []
    stack: list[tuple[int, bool, bool]] = []  # (line, this branch taken, seen #else)
    for lineno, raw in enumerate(lines, 1):
        m = re.match(r"\s*#\s*(ifdef|ifndef|else|endif)\b\s*(.*?)\s*$", raw)
        if not m:
            out.append(raw if all(taken for _, taken, _ in stack) else "")
            continue
        word, arg = m[1], _drop_line_comment(m[2]).strip()
        if word in ("ifdef", "ifndef"):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", arg):
                raise ScriptError(lineno, f"#{word} needs one name, found {arg!r}")
            stack.append((lineno, (arg in names) == (word == "ifdef"), False))
        elif not stack:
            raise ScriptError(lineno, f"#{word} without #ifdef")
        elif word == "else":
            start, taken, seen_else = stack[-1]
            if seen_else:
                raise ScriptError(lineno, f"a second #else for the #ifdef on line {start}")
            stack[-1] = (start, not taken, True)
        else:
            stack.pop()
        out.append("")
    if stack:
        raise ScriptError(stack[-1][0], "#ifdef without #endif")
    return out


def parse_script(text: str, path: str = "<script>", defines: dict[str, str] | None = None) -> Script:
    lines = preprocess(_strip_comments(text).split("\n"), defines)
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
        untimed = True
        if timed and timed[4].lstrip().startswith(("`", "%{")):  # a time before a shell line or a %{ }% block
            when = _when(timed[1], timed[2], timed[3])
            line = timed[4].lstrip()
            untimed = False
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
            inner = body.strip()[1:-1] if closer == "`" else body.strip()[2:-2]
            events.append(SkippedEvent(lineno, when, f"{body.splitlines()[0]} (lines {lineno}-{body_end})"
                                       if body_end > lineno else body, kind, inner, untimed))
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


AE = 0x100  # the AccECN "AE" bit (RFC 9768), next to CWR in the header
_FLAG_CHARS = set(FLAG_LETTERS) | {"A", "-"} | set("01234567")
_ECN_NAMES = {"no_ecn": 0, "ect1": 1, "ect0": 2, "ce": 3}
_ENCAPSULATION = {"ipv4": "an ipv4 encapsulation prefix", "ipv6": "an ipv6 encapsulation prefix",
                  "gre": "a GRE encapsulation prefix", "mpls": "an MPLS encapsulation prefix"}
_FIELD_RE = re.compile(r"\s*(ack|win|urg)\s+(\d+)")
_SEQ_RE = re.compile(r"\s*(?:(\d+):(\d+)\((\d+)\)|(\.\.\.)(?:\((\d+)\))?)")


def _flags(word: str, lineno: int) -> int:
    """packetdrill's flag letters: S F R P . U, E (ECE) W (CWR) A (AE), or a digit 0-7 for the three
    AccECN bits at once; '-' for none."""
    bad = set(word) - _FLAG_CHARS
    if bad:
        raise ScriptError(lineno, f"invalid TCP flag {sorted(bad)[0]!r} in {word!r} (known: S F R P . U E W A 0-7 -)")
    digits = [c for c in word if c.isdigit()]
    if len(digits) > 1 or (digits and set(word) & set("EWA")):
        raise ScriptError(lineno, f"conflicting TCP flags in {word!r}: an AccECN digit stands for E, W and A")
    flags = 0
    for ch in word:
        if ch in FLAG_LETTERS:
            flags |= FLAG_LETTERS[ch]
        elif ch == "A":
            flags |= AE
        elif ch.isdigit():
            ace = int(ch)
            flags |= (ECE if ace & 1 else 0) | (CWR if ace & 2 else 0) | (AE if ace & 4 else 0)
    return flags


def _ip_info(text: str, lineno: int) -> dict:
    """`[ect0]`, `(tos 0x2)`, `[ce, flowlabel 0x1234]`, `(ttl 64)`: the IP header fields a packet names."""
    info: dict = {}
    for item in (p.strip() for p in text.split(",")):
        words = item.split()
        if len(words) == 1 and words[0].lower() in _ECN_NAMES:
            info["ecn"] = _ECN_NAMES[words[0].lower()]
        elif words == ["ect01"]:
            info["ecn"] = "ect01"
        elif len(words) == 2 and words[0] in ("tos", "flowlabel", "ttl"):
            try:
                info[words[0]] = int(words[1], 0)
            except ValueError:
                raise ScriptError(lineno, f"{words[0]} takes a number, found {words[1]!r}") from None
        else:
            raise ScriptError(lineno, f"cannot read IP field {item!r} (known: no_ecn, ect0, ect1, ce, ect01, "
                                      "tos 0xN, flowlabel 0xN, ttl N)")
    return info


def parse_packet(text: str, lineno: int, when: When) -> PacketEvent:
    """One packet line, in the order packetdrill's grammar has it:
    `< [ip info] [sport>dport] FLAGS start:end(len) [ack N] [win N] [urg N] [<options>]`."""
    direction, rest = text[0], text[1:].strip()
    first = re.split(r"[\s:,]", rest, maxsplit=1)[0] if rest else ""
    if first.lower() in _ENCAPSULATION:
        raise ScriptError(lineno, f"{_ENCAPSULATION[first.lower()]} ({first} ...:) is not supported: "
                                  "tcpwave runs plain IP")
    info: dict = {}
    m = re.match(r"(\[([^\]]*)\]|\(([^)]*)\))\s*", rest)
    if m:
        info = _ip_info(m[2] if m[2] is not None else m[3], lineno)
        rest = rest[m.end():]
    ports = None
    m = re.match(r"(\d+)\s*>\s*(\d+)\s+", rest)
    if m:
        ports = (int(m[1]), int(m[2]))
        rest = rest[m.end():]
    word = rest.split(None, 1)[0] if rest else ""
    if word.lower() in ("udp", "icmp"):
        raise ScriptError(lineno, f"{word} packets are not supported: tcpwave's scripts are TCP only")
    if not word:
        raise ScriptError(lineno, f"cannot read packet {text!r} (want: {direction} FLAGS start:end(len) ...)")
    if re.fullmatch(r"\d+:\d+\(\d+\)", word):
        raise ScriptError(lineno, f"cannot read packet {text!r}: the flags come before {word} "
                                  "('.' for a bare ACK, '-' for none)")
    flags = _flags(word, lineno)
    rest = rest[len(word):]
    m = re.match(r"\s*\[([^\]]*)\]", rest)  # the ECN field after the flags, as older scripts write it
    if m:
        info.update(_ip_info(m[1], lineno))
        rest = rest[m.end():]
    m = _SEQ_RE.match(rest)
    if not m:
        raise ScriptError(lineno, f"cannot read packet {text!r} (want: {direction} FLAGS start:end(len) ...)")
    any_seq = m[4] is not None
    if any_seq and direction == "<":
        raise ScriptError(lineno, "a packet the script sends needs its sequence range, not '...'")
    start, end, length = (0, 0, 0) if any_seq else (int(m[1]), int(m[2]), int(m[3]))
    if (end - start) & 0xFFFFFFFF != length:
        raise ScriptError(lineno, f"{start}:{end}({length}): the length must be end - start")
    ev = PacketEvent(lineno, when, text, inbound=direction == "<", flags=flags, start=start, end=end,
                     any_seq=any_seq, any_len=int(m[5]) if m[5] is not None else None, ports=ports, ip=info)
    rest = rest[m.end():]
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
    if ev.inbound and ev.win is None:
        raise ScriptError(lineno, "a packet the script sends needs 'win N'")
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
            elif words and words[0] in ("md5", "FO", "FOEXP") and len(words) <= 2:
                # TCP-MD5 (kind 19, 16-byte digest), Fast Open (kind 34, RFC 7413) and its experimental
                # form (kind 254, magic 0xF989): read so that scripts load; tcpwave supports neither
                blob = words[1] if len(words) == 2 else ""
                out.append((words[0], bytes.fromhex(blob.removeprefix("0x")) if blob else b""))
            else:
                raise ValueError
        except ValueError:
            raise ScriptError(lineno, f"cannot read option {item!r} (known: mss N, wscale N, sackOK, sack a:b "
                                      "..., TS val X ecr Y, nop, eol, md5 HEX, FO [COOKIE], FOEXP [COOKIE], "
                                      "...)") from None
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
        # {name=value, ...} (a struct; `msg_iov(1)=[...]` names a count too) or {value, ...} (an iovec
        # `{..., 10}`, or another list in braces)
        fields: dict = {}
        items: list = []
        while t.peek() != "}":
            if (t.i + 1 < len(t.toks) and t.toks[t.i + 1] in ("=", "(") and t.peek() not in (WILDCARD, "{", "[")
                    and re.fullmatch(r"[A-Za-z_]\w*", t.peek() or "")):
                key = t.take()
                if t.peek() == "(":
                    t.take("(")
                    count = _values(t, ")")
                    fields[key + "_count"] = count[0] if count else None
                t.take("=")
                fields[key] = _value(t)
            else:
                items.append(_value(t))
            if t.peek() == ",":
                t.take(",")
        t.take("}")
        if items and fields:
            raise ScriptError(t.lineno, "a { } value mixes name=value fields and bare values")
        return items if items else fields
    if tok.startswith('"'):
        return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
    if tok == WILDCARD:
        return WILDCARD
    if t.peek() == "(" and re.fullmatch(r"[A-Za-z_]\w*", tok):  # htons(8080), inet_addr("192.0.2.1")
        t.take("(")
        return Call(tok, tuple(_values(t, ")")))
    parts = [tok]
    while t.peek() == "|":
        t.take("|")
        parts.append(t.take())
    if len(parts) == 1 and re.fullmatch(r"-?\d+|0x[0-9a-fA-F]+", tok):
        return int(tok, 0)
    return tuple(parts) if len(parts) > 1 else tok
