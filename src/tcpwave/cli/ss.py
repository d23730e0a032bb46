"""`tcpwave ss`: the connections of running tcpwave processes, like Linux's `ss -tanio`."""

import glob
import json
import os
import re
import stat
import sys
import tempfile
import time

from ..aio.control import ControlDirError, checked_dir, control_dir, query

_TIMER_SHORT = {"retransmit": "rtx", "persist": "persist", "time_wait": "timewait", "delayed_ack": "delack",
                "sws_override": "sws", "keepalive": "keepalive", "user_timeout": "usertimeout"}


def add_parser(sub) -> None:
    p = sub.add_parser("ss", help="list the connections of running tcpwave processes (like ss -tani)",
                       description="Ask running tcpwave processes (serve, sandbox) over their control sockets for "
                                   "their connections: state, queues, SND.UNA/NXT/WND, RCV.NXT/WND, cwnd, ssthresh, "
                                   "SRTT, RTO and armed timers with the time left. Root sees every user's.")
    p.add_argument("--control", metavar="SOCKET", action="append",
                   help="a control socket (default: every one in $TCPWAVE_CONTROL_DIR or the per-user directory)")
    p.add_argument("-s", "--summary", action="store_true", help="print counts per state")
    p.add_argument("-i", "--info", action="store_true",
                   help="a second line per connection with the counters Linux's ss -i shows: bytes sent, "
                        "retransmitted, acked and received, segments, retrans (in flight/total), lost, sacked, "
                        "delivery rate, busy time")
    p.add_argument("--watch", nargs="?", type=float, const=1.0, metavar="SECONDS",
                   help="refresh every SECONDS (default 1) until interrupted or --count is reached")
    p.add_argument("--count", type=int, metavar="N", help="with --watch: stop after N refreshes")
    p.add_argument("--json", action="store_true", help="print the raw snapshots as JSON")
    p.add_argument("filter", nargs="*", metavar="FILTER",
                   help="as Linux ss: `state established` (or syn-sent, ..., all, connected, synchronized; "
                        "`exclude STATE`), then an expression of `dport = :80`, `sport >= :1024`, `dst ADDR[/LEN]`, "
                        "`src ADDR[:PORT]`, joined by and, or, not and parentheses")
    p.set_defaults(func=run)


def _sockets(args) -> list[str]:
    if args.control:
        return args.control
    paths = []
    if os.path.lexists(control_dir()):
        paths = sorted(glob.glob(os.path.join(glob.escape(checked_dir(control_dir(), create=False)), "*.sock")))
    if os.geteuid() == 0 and not os.environ.get("TCPWAVE_CONTROL_DIR"):  # root sees every user's instances
        for d in other_users_dirs():
            if os.path.realpath(d) != os.path.realpath(control_dir()):
                paths += sorted(glob.glob(os.path.join(glob.escape(d), "*.sock")))
    return paths


def other_users_dirs(tmp: str | None = None, run: str = "/run/user") -> list[str]:
    """Every user's control directory that is what tcpwave makes (a real directory with mode 0700,
    owned by the user its name or place says): /tmp/tcpwave-UID and /run/user/UID/tcpwave."""
    tmp = tmp or tempfile.gettempdir()
    found = []
    for path in glob.glob(os.path.join(glob.escape(tmp), "tcpwave-[0-9]*")) + \
            glob.glob(os.path.join(glob.escape(run), "[0-9]*", "tcpwave")):
        owner = os.path.basename(path)[len("tcpwave-"):] if path.startswith(tmp) else \
            os.path.basename(os.path.dirname(path))
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if owner.isdigit() and stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 \
                and st.st_uid == int(owner):
            found.append(path)
    return sorted(found)


# What a reply must hold to be shown: key -> the types its value may have (None: may be null).
_NUM = (int, float)
DOC_SCHEMA = {"pid": (int,), "host": (str,), "addresses": (list,), "time": _NUM, "connections": (list,)}
ROW_SCHEMA = {"state": (str,), "local": (str,), "remote": (str,), "recv_q": (int,), "send_q": (int,),
              "timers": (dict,)}
ROW_OPTIONAL = {**dict.fromkeys(("snd_una", "snd_nxt", "snd_wnd", "rcv_nxt", "rcv_wnd", "cwnd", "ssthresh"), (int,)),
                **dict.fromkeys(("srtt", "rto"), _NUM)}
INFO_SCHEMA = {**dict.fromkeys(("bytes_sent", "bytes_retrans", "bytes_acked", "bytes_received", "segs_out",
                                "segs_in", "retrans", "retransmissions", "lost", "sacked", "delivery_rate"), (int,)),
               "busy_time": _NUM}
# The rest of Linux's ss -i line (newer tcpwave processes send them; each is checked when present)
INFO_OPTIONAL = {**dict.fromkeys(("mss", "snd_wscale", "rcv_wscale", "pacing_rate", "notsent"), (int,)),
                 **dict.fromkeys(("rttvar", "ato", "min_rtt", "lastsnd", "lastrcv", "lastack"), _NUM),
                 **dict.fromkeys(("cc", "ca_state"), (str,))}
# Terminal controls (C0, DEL, C1) and the bidirectional overrides: never printed as they came
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """text with every control character shown as an escape (\\x1b), never sent to the terminal."""
    return _CONTROLS.sub(lambda m: ascii(m.group())[1:-1], text)


def _type_problem(obj: dict, schema: dict, where: str, optional: bool = False) -> str | None:
    for key, types in schema.items():
        if key not in obj:
            if optional:
                continue
            return f"{where} has no {key!r}"
        v = obj[key]
        if not (isinstance(v, types) and not isinstance(v, bool) or (optional and v is None)):
            return f"{where}'s {key!r} is a {type(v).__name__}"
    return None


def validate(doc) -> tuple[dict | None, list[str]]:
    """A reply as `render` needs it, every string cleaned of control characters, or None; and notes on
    what was left out (a connection row that does not fit is skipped, the rest is shown)."""
    if not isinstance(doc, dict):
        return None, [f"the answer is a {type(doc).__name__}, not an object"]
    if "error" in doc and isinstance(doc["error"], str):
        return None, [f"answered with an error: {clean(doc['error'])}"]
    problem = _type_problem(doc, DOC_SCHEMA, "the answer")
    if problem is None and not all(isinstance(a, str) for a in doc["addresses"]):
        problem = "the answer's 'addresses' are not all strings"
    if problem is None and "worker" in doc and not isinstance(doc["worker"], str):
        problem = "the answer's 'worker' is not a string"
    if problem is not None:
        return None, [f"not a tcpwave answer: {problem}"]
    out = {"pid": doc["pid"], "host": clean(doc["host"]), "addresses": [clean(a) for a in doc["addresses"]],
           "time": doc["time"], "connections": []}
    if "worker" in doc:
        out["worker"] = clean(doc["worker"])
    if isinstance(doc.get("handed_over"), int) and not isinstance(doc["handed_over"], bool):
        out["handed_over"] = doc["handed_over"]
    notes = []
    for i, row in enumerate(doc["connections"]):
        problem = (f"connection {i} is not an object" if not isinstance(row, dict) else
                   _type_problem(row, ROW_SCHEMA, f"connection {i}")
                   or _type_problem(row, ROW_OPTIONAL, f"connection {i}", optional=True))
        timers = row.get("timers") if isinstance(row, dict) else None
        if problem is None and timers is not None and not all(isinstance(v, _NUM) and not isinstance(v, bool)
                                                              for v in timers.values()):
            problem = f"connection {i}'s timers are not all numbers"
        if problem is not None:
            notes.append(f"skipped: {problem}")
            continue
        row = {k: clean(v) if isinstance(v, str) else v for k, v in row.items()}
        row["timers"] = {clean(str(k)): v for k, v in row["timers"].items()}
        if _type_problem(row, INFO_SCHEMA, "") is not None:  # no ss -i counters: shown without them
            for key in INFO_SCHEMA:
                row.pop(key, None)
        for key, types in INFO_OPTIONAL.items():
            if key in row and _type_problem({key: row[key]}, {key: types}, "", optional=True) is not None:
                row.pop(key)
        if not isinstance(row.get("app_limited"), bool):
            row.pop("app_limited", None)
        out["connections"].append(row)
    return out, notes


def collect(paths: list[str]) -> tuple[list[dict], list[str], int]:
    """The answers of the control sockets at paths, notes on those skipped, and how many of those were
    stale (nobody listening: left by a process that was killed)."""
    docs, problems, stale = [], [], 0
    for path in paths:
        name = clean(path)
        try:
            raw = query(path)
        except (ConnectionRefusedError, FileNotFoundError):
            stale += 1
            problems.append(f"{name}: skipped, nobody is listening (left by a process that was killed?)")
            continue
        except TimeoutError as e:
            problems.append(f"{name}: skipped, {e or 'timed out'}")
            continue
        except (OSError, ValueError, RecursionError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
            problems.append(f"{name}: skipped, {clean(why)}")
            continue
        doc, notes = validate(raw)
        problems += [f"{name}: {n}" for n in notes]
        if doc is not None:
            docs.append(doc)
    return docs, problems, stale


def render(docs: list[dict], summary: bool = False, info: bool = False) -> str:
    if summary:
        counts: dict[str, int] = {}
        for d in docs:
            for c in d["connections"]:
                counts[c["state"]] = counts.get(c["state"], 0) + 1
        total = sum(counts.values())
        lines = [f"Total: {total} (in {len(docs)} tcpwave process{'es' if len(docs) != 1 else ''})"]
        lines += [f"  {state:<12} {n}" for state, n in sorted(counts.items())]
        lines += [_memory(d) for d in docs if isinstance(d.get("memory"), dict)]
        return "\n".join(lines)
    head = (f"{'State':<12} {'Recv-Q':>7} {'Send-Q':>7} {'Local':<22} {'Peer':<22} "
            f"{'snd_una':>10} {'snd_nxt':>10} {'snd_wnd':>8} {'rcv_nxt':>10} {'rcv_wnd':>8} "
            f"{'cwnd':>7} {'ssthresh':>8} {'srtt':>8} {'rto':>7}  timers")
    lines = []
    for d in docs:
        worker = f" worker {d['worker']}" if d.get("worker") else ""
        if "handed_over" in d:
            worker += f", {d['handed_over']} packet(s) handed over"
        lines.append(f"# pid {d['pid']} ({d['host']}{worker}, {', '.join(d['addresses'])}), up {d['time']:.1f} s")
        lines.append(head)
        for c in d["connections"]:
            lines.append(_row(c))
            if info and "bytes_acked" in c:
                lines.append(_info(c))
    return "\n".join(lines)


def _memory(d: dict) -> str:
    """One process's memory budget and what it refused or reclaimed (core/memory.py)."""
    m, drops = d["memory"], d.get("drops") or {}
    mib = 1 << 20
    return (f"memory pid {d.get('pid')}: {m.get('used', 0) / mib:.1f} MiB ({m.get('level')}; peak "
            f"{m.get('peak', 0) / mib:.1f}, marks {m.get('low', 0) / mib:.0f}/{m.get('pressure', 0) / mib:.0f}/"
            f"{m.get('high', 0) / mib:.0f} MiB); refused {m.get('refused_connections', 0)} "
            f"(+{drops.get('max_connections', 0)} over max-connections), reset {m.get('reset_connections', 0)}, "
            f"dropped {m.get('dropped_segments', 0)} segments, pruned {m.get('pruned_bytes', 0)} bytes")


def _bw(bits: float) -> str:
    """A rate as Linux's ss prints one (sprint_bw)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if bits > scale:
            return f"{bits / scale:.1f}{unit}bps"
    return f"{bits:g}bps"


def _ms(seconds) -> str:
    return f"{seconds * 1000:.3f}".rstrip("0").rstrip(".")


def _info(c: dict) -> str:
    """The ss -i line as Linux prints it: its names, its order, its units (times in ms, cwnd and
    ssthresh in segments, rates in bits per second), and tcpwave's congestion state after it."""
    mss = c.get("mss") or 1
    parts = []
    if "cc" in c:
        parts.append(f"{c['cc']} wscale:{c['snd_wscale']},{c['rcv_wscale']}")
    if c.get("rto") is not None:
        parts.append(f"rto:{round(c['rto'] * 1000)}")
    if c.get("srtt") is not None:
        parts.append(f"rtt:{_ms(c['srtt'])}/{_ms(c.get('rttvar') or 0)}")
    if c.get("ato"):
        parts.append(f"ato:{round(c['ato'] * 1000)}")
    parts.append(f"mss:{mss}")
    if c.get("cwnd") is not None:
        parts.append(f"cwnd:{max(1, c['cwnd'] // mss)}")
    if c.get("ssthresh") is not None:
        parts.append(f"ssthresh:{c['ssthresh'] // mss}")
    parts.append(f"bytes_sent:{c['bytes_sent']} bytes_retrans:{c['bytes_retrans']} bytes_acked:{c['bytes_acked']} "
                 f"bytes_received:{c['bytes_received']} segs_out:{c['segs_out']} segs_in:{c['segs_in']}")
    if c.get("srtt") and c.get("cwnd"):
        parts.append(f"send {_bw(c['cwnd'] * 8 / c['srtt'])}")
    for key in ("lastsnd", "lastrcv", "lastack"):
        if key in c:
            parts.append(f"{key}:{round(c[key] * 1000)}")
    if c.get("pacing_rate"):
        parts.append(f"pacing_rate {_bw(c['pacing_rate'])}")
    parts.append(f"delivery_rate {_bw(c['delivery_rate'])}")
    if c.get("app_limited"):
        parts.append("app_limited")
    parts.append(f"busy:{c['busy_time'] * 1000:.0f}ms")
    parts.append(f"retrans:{c['retrans']}/{c['retransmissions']}")
    if c["lost"]:
        parts.append(f"lost:{c['lost']}")
    if c["sacked"]:
        parts.append(f"sacked:{c['sacked']}")
    if c.get("notsent"):
        parts.append(f"notsent:{c['notsent']}")
    if c.get("min_rtt") is not None:
        parts.append(f"minrtt:{_ms(c['min_rtt'])}")
    if c.get("ca_state"):
        parts.append(f"ca_state:{c['ca_state']}")
    return "\t " + " ".join(parts)


def _row(c: dict) -> str:
    def num(key, width):
        v = c.get(key)
        return f"{'-' if v is None else v:>{width}}"

    def ms(key, width):
        v = c.get(key)
        return f"{'-' if v is None else f'{v * 1000:.1f}ms':>{width}}"

    def segs(key, width):  # cwnd and ssthresh in segments, as Linux's ss shows them
        v, mss = c.get(key), c.get("mss") or 0
        return f"{'-' if v is None else max(1, v // mss) if mss else v:>{width}}"

    timers = ",".join(f"{_TIMER_SHORT.get(n, n)}:{left:.3f}s" for n, left in c.get("timers", {}).items()) or "-"
    return (f"{c['state']:<12} {c['recv_q']:>7} {c['send_q']:>7} {c['local']:<22} {c['remote']:<22} "
            f"{num('snd_una', 10)} {num('snd_nxt', 10)} {num('snd_wnd', 8)} {num('rcv_nxt', 10)} {num('rcv_wnd', 8)} "
            f"{segs('cwnd', 7)} {segs('ssthresh', 8)} {ms('srtt', 8)} {ms('rto', 7)}  {timers}")


def run(args) -> int:
    from .ss_filter import FilterError, parse, select

    try:
        states, test = parse(getattr(args, "filter", None) or [])
    except FilterError as e:
        print(f"tcpwave ss: {e}", file=sys.stderr)
        return 2
    rounds = 0
    while True:
        try:
            paths = _sockets(args)
        except ControlDirError as e:
            print(f"tcpwave ss: {clean(str(e))}", file=sys.stderr)
            return 1
        docs, problems, stale = collect(paths)
        if states is not None or test is not None:
            for d in docs:
                d["connections"] = select(d["connections"], states, test)
        if args.watch and sys.stdout.isatty():
            print("\033[H\033[2J", end="")
        if args.json:
            print(json.dumps(docs, indent=1))
        elif docs:
            print(render(docs, args.summary, args.info))
        for p in problems:
            print(f"tcpwave ss: {p}", file=sys.stderr)
        if not paths:
            print(f"tcpwave ss: no running tcpwave found (no control sockets in {clean(control_dir())})",
                  file=sys.stderr)
        rounds += 1
        if not args.watch or (args.count is not None and rounds >= args.count):
            return 0 if docs or (paths and stale == len(paths)) else 1
        sys.stdout.flush()
        time.sleep(args.watch)
