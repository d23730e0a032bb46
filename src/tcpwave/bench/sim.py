"""Bulk-transfer goodput on the simulated network, in virtual time (`tcpwave bench --sim`).

One sender keeps its send buffer full for `seconds` of virtual time over a link of `rate_bps` and
`rtt`, with a drop-tail queue of one bandwidth-delay product and random loss in both directions.
Goodput counts only bytes the receiving application read, in order, and the data is checked
against what was written. Everything is seeded, so each row is deterministic.
"""

import math
from dataclasses import dataclass
from typing import Any

from ..core import events as ev
from ..core.config import Config
from ..sim import LinkParams, Simulator

HEADER_BYTES = 52  # IPv4 (20) + TCP (20) + timestamps option (12) per full segment


@dataclass(frozen=True)
class Row:
    loss: float
    sack: bool
    goodput_bps: float
    share: float  # of the link rate
    retransmitted_bytes: int
    timeouts: int
    fast_retransmits: int
    mathis_bps: float | None  # MSS/RTT * 1.22/sqrt(p), None without loss
    verified: bool
    cc: str = "cubic"


def _pattern(offset: int, n: int) -> bytes:
    """Bytes whose value depends on their stream offset, so misordering cannot go unnoticed."""
    block = bytes(range(256))
    start = offset % 256
    reps = (start + n) // 256 + 1
    return (block * reps)[start : start + n]


def run_one(loss: float, sack: bool, *, rate_bps: float = 100e6, rtt: float = 0.020, seconds: float = 20.0,
            seed: int = 1, mss: int = 1460, tracer=None, taps=(), cc: str = "cubic",
            settings: dict | None = None, queue_bdp: float = 1.0) -> Row:
    """One bulk transfer; tracer and taps (callables (t, packet)) see every event and packet.
    The drop-tail queue holds `queue_bdp` bandwidth-delay products."""
    bdp = int(rate_bps * rtt / 8)
    link = LinkParams(latency=rtt / 2, bandwidth=rate_bps, queue_bytes=int(bdp * queue_bdp), loss=loss)
    # buffers large enough that the window, not the buffer, is what congestion control controls
    # settings (--set) apply to every row; each row's own SACK and congestion control win
    config = Config(**{"recv_buffer": 4 * bdp, "send_buffer": 4 * bdp, "mss": mss, **(settings or {}),
                       "sack": sack, "congestion_control": cc})
    sim = Simulator(seed, tracer)
    sim.taps.extend(taps)
    sender = sim.add_host("sender", ["192.0.2.1"], config=config)
    receiver = sim.add_host("receiver", ["192.0.2.2"], config=config)
    sim.link(sender, receiver, link)
    state: dict[str, Any] = {"written": 0, "read": 0, "ok": True, "conn": None}

    def fill(conn):
        while True:
            chunk = _pattern(state["written"], 64 * 1024)
            n = conn.send(chunk, sim.now)
            state["written"] += n
            if n < len(chunk):
                return

    def on_sender(host, conn, event):
        if isinstance(event, ev.Connected):
            state["conn"] = conn
            fill(conn)
        elif isinstance(event, ev.SendSpace):
            fill(conn)

    def on_receiver(host, conn, event):
        if isinstance(event, ev.Connected):
            listener.accept()
        elif isinstance(event, ev.DataReadable):
            data = conn.receive(now=sim.now)
            if data != _pattern(state["read"], len(data)):
                state["ok"] = False
            state["read"] += len(data)

    sender.on_event, receiver.on_event = on_sender, on_receiver
    listener = receiver.stack.listen(5001, 0.0)
    sender.stack.connect("192.0.2.2", 5001, 0.0)
    sender.pump()
    sim.run(until=seconds)
    stats = state["conn"].stats if state["conn"] is not None else None
    goodput = state["read"] * 8 / seconds
    mathis = mathis_bps(loss, rtt, mss) if loss else None
    return Row(loss, sack, goodput, goodput / rate_bps, stats.retransmitted_bytes if stats else 0,
               stats.timeouts if stats else 0, stats.fast_retransmits if stats else 0, mathis,
               state["ok"] and state["read"] > 0, cc)


def mathis_bps(loss: float, rtt: float, mss: int = 1460) -> float:
    """The Mathis et al. bound on Reno's goodput at random loss `loss` (> 0): MSS/RTT * 1.22/sqrt(p),
    with the payload a full segment carries beside the timestamps option."""
    return (mss - 12) * 8 / rtt * 1.22 / math.sqrt(loss)


def table(rows: list[Row], rate_bps: float, rtt: float, seconds: float) -> str:
    lines = [f"bulk transfer, {rate_bps / 1e6:g} Mbit/s link, {rtt * 1000:g} ms RTT, queue 1 BDP, "
             f"{seconds:g} s virtual time each, random loss both ways",
             f"(the payload ceiling is {(1460 - 12) / (1460 - 12 + HEADER_BYTES):.1%} of the link: "
             f"{HEADER_BYTES} header bytes per 1448-byte segment)",
             "",
             f"{'cc':>8} {'loss':>6} {'SACK':>5} {'goodput':>14} {'of link':>8} {'Mathis bound':>14} "
             f"{'retransmitted':>14} {'RTOs':>5} {'fast rtx':>9} {'data':>9}"]
    for r in rows:
        mathis = f"{r.mathis_bps / 1e6:9.1f} Mbit/s" if r.mathis_bps else f"{'-':>14}"
        lines.append(
            f"{r.cc:>8} {r.loss:>6.1%} {'on' if r.sack else 'off':>5} {r.goodput_bps / 1e6:9.1f} Mbit/s "
            f"{r.share:>8.1%} "
            f"{mathis} {r.retransmitted_bytes:>14,} {r.timeouts:>5} {r.fast_retransmits:>9} "
            f"{'verified' if r.verified else 'MISMATCH':>9}")
    return "\n".join(lines)
