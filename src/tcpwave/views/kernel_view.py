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


def kernel_events(view, trace: list[dict]) -> list[dict]:
    """The kernel's events for this connection, as view events: state changes (type "kstate", per
    host), tcp_probe samples ("kprobe": cwnd, ssthresh, srtt in seconds, snd_wnd) and the counted
    tracepoints ("kevent")."""
    out: list[dict] = []
    hosts = (view.left, view.right)
    last: dict[str, str] = {}
    resets = {(endpoints(e)[0], round(e["t"], 3)) for e in trace if e["event"] == "tcp_receive_reset"}
    for h, other in (hosts, hosts[::-1]):
        listen = [e for e in trace if e["event"] == "inet_sock_set_state" and e.get("newstate") == "TCP_LISTEN"
                  and endpoints(e)[0] == h and e["t"] <= view.start]
        if listen and any(e.get("oldstate") == "TCP_LISTEN" and endpoints(e) == (h, other) for e in trace):
            out.append({"t": listen[-1]["t"], "host": h, "type": "kstate", "from": "CLOSED", "to": "LISTEN",
                        "why": "the listening socket"})
        connecting = [e for e in trace if e["event"] == "inet_sock_set_state" and e.get("sport") == "0"
                      and e.get("newstate") == "TCP_SYN_SENT" and endpoints(e)[1] == other
                      and _addr(endpoints(e)[0]) == _addr(h) and e["t"] <= view.start]
        if connecting and any(e.get("oldstate") == "TCP_SYN_SENT" and endpoints(e) == (h, other) for e in trace):
            out.append({"t": connecting[-1]["t"], "host": h, "type": "kstate", "from": "CLOSED", "to": "SYN_SENT",
                        "why": "connect()"})
    for e in trace:
        local, remote = endpoints(e)
        if (local, remote) not in ((view.left, view.right), (view.right, view.left)):
            continue
        if e["event"] == "inet_sock_set_state":
            old, new = KERNEL_NAMES.get(e["oldstate"], e["oldstate"]), KERNEL_NAMES.get(e["newstate"], e["newstate"])
            if new == "CLOSED" and old in ("FIN_WAIT_2", "CLOSING") and (local, round(e["t"], 3)) not in resets:
                new = "TIME_WAIT"  # handed to a timewait socket
            if old == "LISTEN":
                old = last.get(local, "LISTEN")
            out.append({"t": e["t"], "host": local, "type": "kstate", "from": old, "to": new})
            last[local] = new
        elif e["event"] == "tcp_probe":
            out.append({"t": e["t"], "host": local, "type": "kprobe", "cwnd": int(e["snd_cwnd"]),
                        "ssthresh": int(e["ssthresh"]), "srtt": int(e["srtt"]) / 1e6, "snd_wnd": int(e["snd_wnd"])})
        elif e["event"] in COUNTED:
            out.append({"t": e["t"], "host": local, "type": "kevent", "event": e["event"]})
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
