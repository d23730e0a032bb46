"""Which packet caused which state change: comments for pcapng, from tcpwave's own trace.

A change the trace says a received segment caused ("rcv ...") goes on that segment; one a user call
caused goes on the next segment the connection sends (the SYN of an OPEN, the FIN of a CLOSE, the RST
of an ABORT). Changes no packet carries (a passive OPEN, timers running out) get no comment. Each
comment names its connection: "host local-remote: FROM → TO".
"""

from ..wire.errors import MalformedPacket
from ..wire.ip import parse_ip
from ..wire.tcp import PROTO_TCP, flags_text, parse_tcp


def _key(src, dst, seg) -> tuple:
    return (str(src), seg.src_port, str(dst), seg.dst_port, flags_text(seg.flags), seg.seq, seg.ack, len(seg.payload))


def _event_key(e: dict) -> tuple:
    sa, sp = e["src"].rsplit(":", 1)
    da, dp = e["dst"].rsplit(":", 1)
    return (sa.strip("[]"), int(sp), da.strip("[]"), int(dp), e["flags"], e["seq"], e["ack"], e["len"])


def state_comments(packets: list[tuple[float, bytes]], events: list[dict]) -> list[str | None]:
    """One comment (or None) per captured packet, naming the state changes it caused."""
    return Annotator().feed(packets, events)


class Annotator:
    """state_comments in pieces, for a live capture: feed the packets and events seen since the last
    call; a change made by a user call waits across calls for the segment that carries it."""

    def __init__(self):
        # (host, connection) -> changes waiting for the next packet that connection sends
        self.waiting: dict[tuple, list[str]] = {}

    def feed(self, packets: list[tuple[float, bytes]], events: list[dict]) -> list[str | None]:
        keys = []
        for _, raw in packets:
            try:
                pkt = parse_ip(raw)
                keys.append(_key(pkt.src, pkt.dst, parse_tcp(pkt.payload)) if pkt.proto == PROTO_TCP else None)
            except MalformedPacket:
                keys.append(None)
        comments: list[list[str]] = [[] for _ in packets]
        sent_index: dict[tuple | None, list[int]] = {}
        for i, k in enumerate(keys):
            sent_index.setdefault(k, []).append(i)
        used_send: set[int] = set()
        last_recv: dict[tuple, int | None] = {}  # (host, connection) -> packet index of its latest arrival
        waiting = self.waiting
        for e in events:
            kind, host = e["type"], e.get("host")
            if kind == "recv":
                cands = [i for i in sent_index.get(_event_key(e), []) if packets[i][0] <= e["t"] + 1e-9]
                last_recv[(host, f"{e['dst']}-{e['src']}")] = cands[-1] if cands else None
            elif kind == "send":
                conn = f"{e['src']}-{e['dst']}"
                idx = next((i for i in sent_index.get(_event_key(e), []) if i not in used_send), None)
                if idx is not None:
                    used_send.add(idx)
                    comments[idx].extend(waiting.pop((host, conn), []))
                last_recv[(host, conn)] = None
            elif kind == "state":
                conn = e.get("conn", "")
                text = f"{host} {conn}: {e['from']} → {e['to']}"
                why = e.get("why", "")
                if why.startswith("rcv") or why.startswith("new SYN"):  # the segment just received did it
                    idx = last_recv.get((host, conn))
                    if idx is not None:
                        comments[idx].append(text)
                elif e["to"] != "LISTEN" and not any(w in why for w in ("timeout", "exhausted", "unanswered")):
                    waiting.setdefault((host, conn), []).append(text)  # a user call: its segment goes out next
        return ["; ".join(c) if c else None for c in comments]
