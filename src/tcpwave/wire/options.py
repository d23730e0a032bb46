"""TCP options: EOL, NOP, MSS, window scale, SACK-permitted, SACK, timestamps.

Unknown kinds with a sane length are skipped (and remembered); a zero or
overrunning length makes the whole segment malformed (RFC 9293 §3.1, MUST-64).
"""

import struct
from dataclasses import dataclass, field
from typing import Final

from .errors import MalformedPacket

EOL: Final = 0
NOP: Final = 1
MSS: Final = 2
WSCALE: Final = 3
SACK_PERMITTED: Final = 4
SACK: Final = 5
TIMESTAMPS: Final = 8
MAX_WSCALE: Final = 14  # RFC 7323 §2.3


@dataclass(slots=True, unsafe_hash=True)
class Options:  # never changed once made (not frozen: a frozen dataclass is slower to make, per segment)
    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    sack: tuple[tuple[int, int], ...] = ()
    ts: tuple[int, int] | None = None  # (TSval, TSecr)
    unknown: tuple[int, ...] = ()
    bsd: bool = field(default=False, compare=False)  # FreeBSD's layout (build_options); not what they say

    def __init__(self, mss: int | None = None, wscale: int | None = None, sack_permitted: bool = False,
                 sack: tuple[tuple[int, int], ...] = (), ts: tuple[int, int] | None = None,
                 unknown: tuple[int, ...] = (), bsd: bool = False) -> None:
        # (an __init__ of its own: mypyc compiles it; the one @dataclass writes runs as Python, per packet)
        self.mss, self.wscale, self.sack_permitted, self.sack = mss, wscale, sack_permitted, sack
        self.ts, self.unknown, self.bsd = ts, unknown, bsd

    def __bool__(self) -> bool:
        return bool(
            self.mss is not None or self.wscale is not None or self.sack_permitted or self.sack or self.ts
        )


NO_OPTIONS: Final = Options()
_FIXED_LEN: Final = {MSS: 4, WSCALE: 3, SACK_PERMITTED: 2, TIMESTAMPS: 10}
# The options of nearly every segment after the handshake: NOP, NOP, timestamps (Linux's layout)
_MSS_ONLY: Final = struct.Struct("!BBH")
_TS_ONLY: Final = struct.Struct("!4sII")
_TS_ONLY_HEAD: Final = bytes((NOP, NOP, TIMESTAMPS, 10))


def parse_options(raw: bytes | memoryview) -> Options:
    if not raw:
        return NO_OPTIONS
    if len(raw) == 12 and raw[:4] == _TS_ONLY_HEAD:  # the common case, in one step
        _, tsval, tsecr = _TS_ONLY.unpack_from(raw)
        return Options(None, None, False, (), (tsval, tsecr))
    mss = wscale = ts = None
    sack_permitted = False
    sack: tuple[tuple[int, int], ...] = ()
    unknown = []
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == EOL:
            break
        if kind == NOP:
            i += 1
            continue
        if i + 1 >= n:
            raise MalformedPacket("bad_option", f"kind {kind} has no length byte")
        length = raw[i + 1]
        if length < 2 or i + length > n:
            raise MalformedPacket("bad_option", f"kind {kind} length {length}")
        want = _FIXED_LEN.get(kind)
        if want is not None and length != want:
            raise MalformedPacket("bad_option", f"kind {kind} length {length}, expected {want}")
        if kind == MSS:
            mss = (raw[i + 2] << 8) | raw[i + 3]
        elif kind == WSCALE:
            wscale = min(raw[i + 2], MAX_WSCALE)
        elif kind == SACK_PERMITTED:
            sack_permitted = True
        elif kind == TIMESTAMPS:
            b = bytes(raw[i + 2 : i + 10])
            ts = (int.from_bytes(b[:4], "big"), int.from_bytes(b[4:], "big"))
        elif kind == SACK:
            if (length - 2) % 8:
                raise MalformedPacket("bad_option", f"SACK length {length}")
            b = bytes(raw[i + 2 : i + length])
            sack = tuple(
                (int.from_bytes(b[j : j + 4], "big"), int.from_bytes(b[j + 4 : j + 8], "big"))
                for j in range(0, len(b), 8)
            )
        else:
            unknown.append(kind)
        i += length
    return Options(mss, wscale, sack_permitted, sack, ts, tuple(unknown))


def build_options(opts: Options) -> bytes:
    """Encode options, NOP-aligned the way most stacks lay them out, padded to 4 bytes."""
    if not opts:
        return b""
    if opts.bsd:
        return _build_bsd(opts)
    if opts.mss is None and opts.wscale is None and not opts.sack_permitted and not opts.sack and opts.ts:
        return _TS_ONLY.pack(_TS_ONLY_HEAD, *opts.ts)  # the common case, in one step
    if opts.mss is not None and opts.wscale is None and not opts.sack_permitted and opts.ts is None \
            and not opts.sack:
        return _MSS_ONLY.pack(MSS, 4, opts.mss)  # a SYN,ACK to a SYN without options (a flood's)
    out = bytearray()
    if opts.mss is not None:
        out += bytes((MSS, 4)) + opts.mss.to_bytes(2, "big")
    if opts.sack_permitted and opts.ts is not None:
        out += bytes((SACK_PERMITTED, 2))
    elif opts.sack_permitted:
        out += bytes((NOP, NOP, SACK_PERMITTED, 2))
    if opts.ts is not None:
        if not opts.sack_permitted:
            out += bytes((NOP, NOP))
        out += bytes((TIMESTAMPS, 10)) + opts.ts[0].to_bytes(4, "big") + opts.ts[1].to_bytes(4, "big")
    if opts.wscale is not None:
        out += bytes((NOP, WSCALE, 3, opts.wscale))
    if opts.sack:
        out += bytes((NOP, NOP, SACK, 2 + 8 * len(opts.sack)))
        for left, right in opts.sack:
            out += left.to_bytes(4, "big") + right.to_bytes(4, "big")
    if len(out) % 4:
        out += bytes(4 - len(out) % 4)
    if len(out) > 40:
        raise ValueError(f"TCP options too long ({len(out)} bytes)")
    return bytes(out)


def _build_bsd(opts: Options) -> bytes:
    """FreeBSD's layout (its tcp_addoptions(): MSS, NOP + window scale, SACK-permitted on an even
    offset, timestamps and SACK blocks NOP-aligned to 4n + 2, EOLs to the end of the last word):
    `<mss 1460,nop,wscale 6,sackOK,TS val 1 ecr 0>`, `<mss 1460,sackOK,eol,eol>`."""
    out = bytearray()
    if opts.mss is not None:
        out += bytes((MSS, 4)) + opts.mss.to_bytes(2, "big")
    if opts.wscale is not None:
        out += bytes((NOP, WSCALE, 3, opts.wscale))
    if opts.sack_permitted:
        out += bytes((NOP,)) * (len(out) % 2)
        out += bytes((SACK_PERMITTED, 2))
    if opts.ts is not None:
        out += bytes((NOP,)) * ((2 - len(out)) % 4)
        out += bytes((TIMESTAMPS, 10)) + opts.ts[0].to_bytes(4, "big") + opts.ts[1].to_bytes(4, "big")
    if opts.sack:
        out += bytes((NOP,)) * ((2 - len(out)) % 4)
        out += bytes((SACK, 2 + 8 * len(opts.sack)))
        for left, right in opts.sack:
            out += left.to_bytes(4, "big") + right.to_bytes(4, "big")
    out += bytes(-len(out) % 4)  # EOL (0) padding
    if len(out) > 40:
        raise ValueError(f"TCP options too long ({len(out)} bytes)")
    return bytes(out)


def describe_options(opts: Options) -> str:
    """tcpdump-like text: 'mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7'."""
    parts = []
    if opts.mss is not None:
        parts.append(f"mss {opts.mss}")
    if opts.sack_permitted:
        parts.append("sackOK")
    if opts.ts is not None:
        parts.append(f"TS val {opts.ts[0]} ecr {opts.ts[1]}")
    if opts.wscale is not None:
        parts.append(f"wscale {opts.wscale}")
    if opts.sack:
        parts.append("sack " + " ".join(f"{a}:{b}" for a, b in opts.sack))
    return ",".join(parts)
