"""Packets of a script: build the ones it injects, read and judge the ones the stack sends.

Sequence spaces follow packetdrill: numbers in `<` lines are the script's own (the
remote's) and go on the wire as written; numbers that refer to the stack's space
(ACK fields and SACK blocks of `<` lines, seq of `>` lines, TS val of `>` lines and
TS ecr of `<` lines) are relative to the stack's ISN / first TS val, learned from
the first packet that shows them.
"""

import struct
from dataclasses import dataclass, field

from ..wire.checksum import checksum, ones_complement_sum, pseudo_header_sum
from ..wire.ip import build_ip, parse_ip
from ..wire.seq import MASK
from ..wire.tcp import ACK, HEADER_LEN, PROTO_TCP, SYN
from .script import AE, FLAG_LETTERS, FLAG_ORDER, WILDCARD, PacketEvent

_HDR = struct.Struct("!HHIIBBHHH")
_PRESENCE_CHECKED = ("mss", "wscale", "sackOK")  # what --portable still compares


@dataclass
class Spaces:
    """What the runner has learned about the stack's numbering."""

    isn: int | None = None  # the stack's ISN (script seq 0)
    ts_base: int | None = None  # the stack's TS val that the script calls 0
    ts_slack: int = 0  # TS val may differ by this much (the timing tolerance, in ms)


@dataclass
class Sent:
    """A packet the stack sent, decoded."""

    time: float
    src_port: int
    dst_port: int
    flags: int
    seq: int
    ack: int
    win: int
    urg: int
    length: int
    options: list = field(default_factory=list)
    ecn: int = 0  # the IP header's ECN bits


def _encode_option(opt: tuple, spaces: Spaces) -> bytes:
    name = opt[0]
    if name == "nop":
        return b"\x01"
    if name == "eol":
        return b"\x00"
    if name == "sackOK":
        return b"\x04\x02"
    if name == "mss":
        return struct.pack("!BBH", 2, 4, opt[1])
    if name == "wscale":
        return struct.pack("!BBB", 3, 3, opt[1])
    if name == "TS":
        ecr = (opt[2] + spaces.ts_base) & MASK if spaces.ts_base is not None else opt[2] & MASK
        return struct.pack("!BBII", 8, 10, opt[1] & MASK, ecr)
    if name == "md5":
        digest = opt[1].ljust(16, b"\0")[:16]
        return bytes((19, 18)) + digest
    if name == "FO":
        return bytes((34, 2 + len(opt[1]))) + opt[1]
    if name == "FOEXP":
        return bytes((254, 4 + len(opt[1]))) + b"\xf9\x89" + opt[1]
    if name == "sack":
        isn = spaces.isn or 0
        body = b"".join(struct.pack("!II", (a + isn) & MASK, (b + isn) & MASK) for a, b in opt[1:])
        return bytes((5, 2 + len(body))) + body
    raise ValueError(name)


def build_inbound(ev: PacketEvent, src, dst, sport: int, dport: int, spaces: Spaces) -> bytes:
    """The IP packet a `<` line describes, with a correct checksum."""
    opts = b"".join(_encode_option(o, spaces) for o in ev.options) if isinstance(ev.options, list) else b""
    if len(opts) % 4:
        opts += bytes(4 - len(opts) % 4)
    # the ACK field is in tcpwave's space when the ACK flag is set; without it, it goes as written
    ack = ((ev.ack or 0) + (spaces.isn or 0)) & MASK if ev.flags & ACK else (ev.ack or 0) & MASK
    hlen = HEADER_LEN + len(opts)
    payload = bytes(ev.end - ev.start & MASK)
    if ev.ports is not None:
        sport, dport = ev.ports
    header = bytearray(_HDR.pack(sport, dport, ev.start & MASK, ack, (hlen // 4) << 4 | (ev.flags >> 8) & 1,
                                 ev.flags & 0xFF, ev.win if ev.win is not None else 65535, 0, ev.urg or 0)) + opts
    pseudo = pseudo_header_sum(src, dst, PROTO_TCP, hlen + len(payload))
    header[16:18] = checksum(payload, ones_complement_sum(header, pseudo)).to_bytes(2, "big")
    packet = build_ip(src, dst, PROTO_TCP, bytes(header) + payload, ttl=ev.ip.get("ttl", 64))
    return _with_tos(packet, ev.ip) if ev.ip.keys() & {"ecn", "tos", "flowlabel"} else packet


def _with_tos(packet: bytes, ip: dict) -> bytes:
    """Set the TOS / traffic class (and IPv6 flow label) a `<` line names."""
    tos = ip.get("tos", 0)
    if isinstance(ip.get("ecn"), int):
        tos = tos & ~3 | ip["ecn"]
    elif ip.get("ecn") == "ect01":
        tos = tos & ~3 | 2
    b = bytearray(packet)
    if b[0] >> 4 == 4:
        b[1] = tos
        b[10:12] = b"\0\0"
        b[10:12] = checksum(b[:20]).to_bytes(2, "big")
    else:
        word = 6 << 28 | tos << 20 | ip.get("flowlabel", 0) & 0xFFFFF
        b[0:4] = word.to_bytes(4, "big")
    return bytes(b)


def decode_outbound(raw: bytes, now: float) -> Sent | None:
    """A packet from the stack; None if it is not TCP."""
    pkt = parse_ip(raw)
    if pkt.proto != PROTO_TCP:
        return None
    data = pkt.payload
    sport, dport, seq, ack, off, flags, win, _csum, urg = _HDR.unpack_from(data)
    hlen = (off >> 4) * 4
    ecn = raw[1] & 3 if raw[0] >> 4 == 4 else raw[1] >> 4 & 3
    return Sent(now, sport, dport, flags | (off & 1) << 8, seq, ack, win, urg, len(data) - hlen,
                _raw_options(bytes(data[HEADER_LEN:hlen])), ecn)


def _raw_options(raw: bytes) -> list:
    """Options in wire order, NOPs and EOL included, as (name, *values) tuples."""
    out: list[tuple] = []
    i = 0
    while i < len(raw):
        kind = raw[i]
        if kind == 0:  # EOL, and the padding after it: one "eol" per byte, as packetdrill compares bytes
            out += [("eol",)] * (len(raw) - i)
            break
        if kind == 1:
            out.append(("nop",))
            i += 1
            continue
        length = raw[i + 1]
        body = raw[i + 2 : i + length]
        if kind == 2:
            out.append(("mss", int.from_bytes(body, "big")))
        elif kind == 3:
            out.append(("wscale", body[0]))
        elif kind == 4:
            out.append(("sackOK",))
        elif kind == 8:
            out.append(("TS", int.from_bytes(body[:4], "big"), int.from_bytes(body[4:], "big")))
        elif kind == 19:
            out.append(("md5", bytes(body)))
        elif kind == 34:
            out.append(("FO", bytes(body)))
        elif kind == 254 and body[:2] == b"\xf9\x89":
            out.append(("FOEXP", bytes(body[2:])))
        elif kind == 5:
            out.append(("sack", *[(int.from_bytes(body[j:j + 4], "big"), int.from_bytes(body[j + 4:j + 8], "big"))
                                  for j in range(0, len(body), 8)]))
        else:
            out.append((f"kind{kind}",))
        i += length
    return out


def learn(sent: Sent, spaces: Spaces) -> None:
    """The stack's first SYN (or SYN,ACK) fixes its ISN; its first TS val fixes the TS base."""
    if spaces.isn is None and sent.flags & SYN:
        spaces.isn = sent.seq
    for opt in sent.options:
        if opt[0] == "TS" and spaces.ts_base is None:
            spaces.ts_base = opt[1]


def relative(sent: Sent, spaces: Spaces) -> tuple[int, list]:
    """(seq, options) of a sent packet in the script's terms."""
    seq = (sent.seq - (spaces.isn or 0)) & MASK
    opts = []
    for o in sent.options:
        if o[0] == "TS":
            o = ("TS", (o[1] - (spaces.ts_base or 0)) & MASK, o[2])
        opts.append(o)
    return seq, opts


def flags_letters(flags: int) -> str:
    text = "".join(ch for ch in FLAG_ORDER if flags & FLAG_LETTERS[ch]) + ("A" if flags & AE else "")
    return text or "-"


def options_text(opts) -> str:
    if opts == WILDCARD:
        return "<...>"
    parts = []
    for o in opts:
        if o[0] == "TS":
            parts.append(f"TS val {o[1]} ecr {o[2]}")
        elif o[0] == "sack":
            parts.append("sack " + " ".join(f"{a}:{b}" for a, b in o[1:]))
        elif o[0] in ("md5", "FO", "FOEXP"):
            parts.append(f"{o[0]} {o[1].hex()}".rstrip())
        else:
            parts.append(" ".join(str(x) for x in o))
    return "<" + ",".join(parts) + ">"


def describe(sent: Sent, spaces: Spaces) -> str:
    """The sent packet as a `>` line would write it."""
    seq, opts = relative(sent, spaces)
    text = f"> {flags_letters(sent.flags)} {seq}:{(seq + sent.length) & MASK}({sent.length})"
    if sent.flags & ACK:
        text += f" ack {sent.ack}"
    text += f" win {sent.win}"
    if sent.urg:
        text += f" urg {sent.urg}"
    if opts:
        text += " " + options_text(opts)
    return text


def mismatches(ev: PacketEvent, sent: Sent, spaces: Spaces, portable: bool) -> list[str]:
    """What differs between a `>` line and the packet sent; [] when they match."""
    out = []
    if ev.flags != sent.flags:
        out.append(f"flags {flags_letters(sent.flags)} != {flags_letters(ev.flags)}")
    seq, opts = relative(sent, spaces)
    if not ev.any_seq and seq != ev.start & MASK:
        out.append(f"seq {seq} != {ev.start}")
    if not ev.any_seq and sent.length != (ev.end - ev.start) & MASK:
        out.append(f"length {sent.length} != {(ev.end - ev.start) & MASK}")
    if ev.any_len is not None and sent.length != ev.any_len:
        out.append(f"length {sent.length} != {ev.any_len}")
    if ev.ack is not None and sent.ack != ev.ack & MASK:
        out.append(f"ack {sent.ack} != {ev.ack}")
    if ev.ports is not None and (sent.src_port, sent.dst_port) != ev.ports:
        out.append(f"ports {sent.src_port}>{sent.dst_port} != {ev.ports[0]}>{ev.ports[1]}")
    want_ecn = ev.ip.get("ecn")
    if isinstance(want_ecn, int) and sent.ecn != want_ecn:
        out.append(f"IP ECN field {sent.ecn} != {want_ecn}")
    elif want_ecn == "ect01" and sent.ecn not in (1, 2):
        out.append(f"IP ECN field {sent.ecn} is not ECT(0) or ECT(1)")
    if ev.win is not None and not portable and sent.win != ev.win:
        out.append(f"win {sent.win} != {ev.win}")
    if ev.urg is not None and sent.urg != ev.urg:
        out.append(f"urg {sent.urg} != {ev.urg}")
    if ev.options != WILDCARD:
        want = ev.options or []
        if portable:
            have_names = {o[0] for o in opts}
            want_names = {o[0] for o in want}
            for name in _PRESENCE_CHECKED:
                if (name in have_names) != (name in want_names):
                    out.append(f"option {name} {'present' if name in have_names else 'missing'}")
        elif isinstance(want, list) and not _options_equal(want, opts, spaces.ts_slack):
            out.append(f"options {options_text(opts)} != {options_text(want)}")
    return out


def _options_equal(want: list, have: list, ts_slack: int) -> bool:
    if len(want) != len(have):
        return False
    for w, h in zip(want, have, strict=True):
        if w[0] == "TS" and h[0] == "TS":
            if abs(((h[1] - w[1] + (1 << 31)) & MASK) - (1 << 31)) > ts_slack or h[2] != w[2] & MASK:
                return False
        elif w != h:
            return False
    return True
