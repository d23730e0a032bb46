"""The kernel's tracepoint events (tracefs.py) matched to the connections a capture shows, and set
beside the states inferred from the wire.

What Linux reports, and how it is read here:
- `sock:inet_sock_set_state` fires for a full socket's changes. A server's connection is born as a
  request socket that has no tracepoint: its first change is LISTEN → SYN_RECV when the handshake's
  last ACK arrives; the listening socket's own LISTEN is shown as the server's LISTEN. TIME_WAIT is
  kept by a separate timewait socket with no tracepoint: the full socket goes FIN_WAIT2 (or CLOSING)
  → CLOSE, which is read as → TIME_WAIT unless a RST was received at that moment. A connecting
  socket's SYN_SENT is reported before its port is chosen (sport=0).
- `tcp:tcp_probe` (per segment received): cwnd and ssthresh in segments, srtt in microseconds.
- `tcp:tcp_retransmit_skb`, `tcp_send_reset`, `tcp_receive_reset`, `tcp_cong_state_set`: counted.
"""

import collections

KERNEL_NAMES = {"TCP_ESTABLISHED": "ESTABLISHED", "TCP_SYN_SENT": "SYN_SENT", "TCP_SYN_RECV": "SYN_RCVD",
                "TCP_FIN_WAIT1": "FIN_WAIT_1", "TCP_FIN_WAIT2": "FIN_WAIT_2", "TCP_TIME_WAIT": "TIME_WAIT",
                "TCP_CLOSE": "CLOSED", "TCP_CLOSE_WAIT": "CLOSE_WAIT", "TCP_LAST_ACK": "LAST_ACK",
                "TCP_LISTEN": "LISTEN", "TCP_CLOSING": "CLOSING", "TCP_NEW_SYN_RECV": "SYN_RCVD"}
AGREE = 0.001  # seconds: an inferred change this close to the kernel's is the same change
COUNTED = ("tcp_retransmit_skb", "tcp_send_reset", "tcp_receive_reset", "tcp_cong_state_set")


def endpoints(e: dict) -> tuple[str, str]:
    """(local, remote) of a tracepoint event, spelled as the capture's views spell endpoints."""
    if "src" in e:
        return e["src"], e["dest"]
    if e.get("family") == "AF_INET6":
        return f"[{e.get('saddrv6')}]:{e.get('sport')}", f"[{e.get('daddrv6')}]:{e.get('dport')}"
    return f"{e.get('saddr')}:{e.get('sport')}", f"{e.get('daddr')}:{e.get('dport')}"


def _addr(endpoint: str) -> str:
    return endpoint.rsplit(":", 1)[0]


class KernelIndex:
    """The tracepoint events indexed by the endpoints they name, built once for all connections."""

    def __init__(self, trace: list[dict]):
        self.by_pair: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
        self.listen: dict[str, list[float]] = collections.defaultdict(list)          # local -> times
        self.connect: dict[tuple[str, str], list[float]] = collections.defaultdict(list)  # (addr, remote) -> times
        self.resets: set[tuple[str, float]] = set()
        for e in trace:
            local, remote = endpoints(e)
            self.by_pair[local, remote].append(e)
            if e["event"] == "tcp_receive_reset":
                self.resets.add((local, round(e["t"], 3)))
            elif e["event"] == "inet_sock_set_state" and e.get("newstate") == "TCP_LISTEN":
                self.listen[local].append(e["t"])
            elif e["event"] == "inet_sock_set_state" and e.get("newstate") == "TCP_SYN_SENT" and e.get("sport") == "0":
                self.connect[_addr(local), remote].append(e["t"])

    def first_change(self, local: str, remote: str, old: str) -> bool:
        return any(e["event"] == "inet_sock_set_state" and e.get("oldstate") == old
                   for e in self.by_pair.get((local, remote), ()))


def kernel_events(view, index: KernelIndex) -> list[dict]:
    """The kernel's events for this connection, as view events: state changes (type "kstate", per
    host), tcp_probe samples ("kprobe": cwnd, ssthresh, srtt in seconds, snd_wnd) and the counted
    tracepoints ("kevent")."""
    out: list[dict] = []
    last: dict[str, str] = {}
    for h, other in ((view.left, view.right), (view.right, view.left)):
        listen = [t for t in index.listen.get(h, ()) if t <= view.start]
        if listen and index.first_change(h, other, "TCP_LISTEN"):
            out.append({"t": listen[-1], "host": h, "type": "kstate", "from": "CLOSED", "to": "LISTEN",
                        "why": "the listening socket"})
        connecting = [t for t in index.connect.get((_addr(h), other), ()) if t <= view.start]
        if connecting and index.first_change(h, other, "TCP_SYN_SENT"):
            out.append({"t": connecting[-1], "host": h, "type": "kstate", "from": "CLOSED", "to": "SYN_SENT",
                        "why": "connect()"})
        for e in index.by_pair.get((h, other), ()):
            if not view.start - 1 <= e["t"]:
                continue  # an earlier connection of the same endpoints
            if e["event"] == "inet_sock_set_state":
                old = KERNEL_NAMES.get(e["oldstate"], e["oldstate"])
                new = KERNEL_NAMES.get(e["newstate"], e["newstate"])
                if new == "CLOSED" and old in ("FIN_WAIT_2", "CLOSING") and (h, round(e["t"], 3)) not in index.resets:
                    new = "TIME_WAIT"  # handed to a timewait socket
                if old == "LISTEN":
                    old = last.get(h, "LISTEN")
                out.append({"t": e["t"], "host": h, "type": "kstate", "from": old, "to": new})
                last[h] = new
            elif e["event"] == "tcp_probe":
                out.append({"t": e["t"], "host": h, "type": "kprobe", "cwnd": int(e["snd_cwnd"]),
                            "ssthresh": int(e["ssthresh"]), "srtt": int(e["srtt"]) / 1e6, "snd_wnd": int(e["snd_wnd"])})
            elif e["event"] in COUNTED:
                out.append({"t": e["t"], "host": h, "type": "kevent", "event": e["event"]})
    out.sort(key=lambda e: e["t"])
    return out


def compare(view, kernel: list[dict]) -> list[dict]:
    """Each host's state changes, kernel beside inferred, paired by the state entered (in order).
    Rows: host, to, kernel t or None, inferred t or None, and a note where they differ."""
    rows = []
    for h in (view.left, view.right):
        ks = [e for e in kernel if e["type"] == "kstate" and e["host"] == h]
        inferred = [e for e in view.events if e["type"] == "state" and e["host"] == h]
        j = 0
        for k in ks:
            match = next((i for i in range(j, len(inferred)) if inferred[i]["to"] == k["to"]), None)
            if match is None:
                rows.append(_row(h, k["to"], k["t"], None))
                continue
            rows += [_row(h, e["to"], None, e["t"]) for e in inferred[j:match]]
            rows.append(_row(h, k["to"], k["t"], inferred[match]["t"]))
            j = match + 1
        rows += [_row(h, e["to"], None, e["t"]) for e in inferred[j:]]
    return rows


def _row(host: str, to: str, kt: float | None, it: float | None) -> dict:
    if kt is None:
        note = "inferred only: no such change of this socket in the kernel"
    elif it is None:
        note = "kernel only: not inferred from the wire"
    elif abs(it - kt) > AGREE:
        note = f"inferred {abs(it - kt) * 1000:.3f} ms {'late' if it > kt else 'early'}"
    else:
        note = ""
    return {"host": host, "to": to, "kernel": kt, "inferred": it, "note": note}


def render(view, kernel: list[dict], t0: float) -> str:
    """The comparison as text: times in seconds since t0; '≠' marks where the two differ."""
    def at(t):
        return f"{t - t0:10.6f}" if t is not None else f"{'-':>10}"

    lines = [f"{'':2}{'host':<22} {'state':<12} {'kernel':>10} {'inferred':>10}"]
    for r in compare(view, kernel):
        lines.append(f"{'≠' if r['note'] else ' '} {r['host']:<22} {r['to']:<12} {at(r['kernel'])} {at(r['inferred'])}"
                     + (f"  {r['note']}" if r["note"] else ""))
    counts: dict[str, int] = {}
    for e in kernel:
        if e["type"] == "kevent":
            key = f"{e['host']} {e['event']}"
            counts[key] = counts.get(key, 0) + 1
    lines += [f"  {key}: {n}" for key, n in sorted(counts.items())]
    return "\n".join(lines) + "\n"
