"""`tcpwave bench --lossy`: goodput over an impaired real path, tcpwave next to the Linux kernel.

Two network namespaces joined by a veth pair, each end shaped by a tbf to 200 Mbit/s, with random
loss each way from iptables' `statistic` match (offloads off everywhere, so a drop is one packet).
tcpwave runs on a TUN device in the first namespace, whose kernel forwards between the TUN and the
veth; the Linux peer runs in the second. Four transfers per loss rate, each verified by SHA-256:

    tcpwave -> Linux      Linux (first namespace) -> Linux      (sender side compared)
    Linux -> tcpwave      Linux -> Linux (first namespace)      (receiver side compared)

The Linux baseline uses the same veth, shaping and loss; only the TUN hop and forwarding differ.
Every Linux sender uses the congestion control tcpwave runs (cubic, reno, or bbr for bbr-lite), set on
its socket, whatever the kernel's default: under random loss a loss-based control (CUBIC, Reno) holds
a window of about 1.2/sqrt(p) segments while a model-based one (BBR) keeps the link full, so comparing
tcpwave's CUBIC with a kernel whose default is BBR measures the controls, not the stacks.
Everything runs in namespaces made here and removed at the end, also on failure; only TEST-NET
addresses are used (192.0.2.0/24 on the TUN, 198.51.100.0/24 on the veth).
"""

import json
import os
import shutil
import statistics
import sys
import tempfile

from ..core.config import Config
from .tun import HASH_SERVER, PUSH, background, in_ns, namespaces, pattern_sha256, sh

PY = sys.executable
TW_KERNEL, TW = "192.0.2.1", "192.0.2.2"  # the TUN's kernel side and tcpwave
NEAR, FAR = "198.51.100.1", "198.51.100.2"  # the veth ends: tcpwave's namespace, the Linux peer's

# tcpwave as sender: connect through the TUN to the far Linux peer, push n bytes, read the hash.
TCPWAVE_PUSH = """
import asyncio, dataclasses, json, sys
from tcpwave.aio import Runtime, TunLink, open_connection
from tcpwave.core.config import Config
from tcpwave.drivers.tun import TunDevice
from tcpwave.stack import Stack
n, peer, port, ready, settings = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
async def main():
    with TunDevice("tcpw0", "192.0.2.1/24", "192.0.2.2", offload=False) as dev:
        runtime = Runtime(Stack(["192.0.2.2"], config=Config(**settings)), TunLink(dev))
        open(ready, "w").close()
        for _ in range(500):  # the Linux server starts once the device exists
            try:
                reader, writer = await open_connection(peer, port, runtime=runtime); break
            except ConnectionRefusedError:
                await asyncio.sleep(0.02)
        conn = writer.transport.get_extra_info("tcpwave_connection")
        t = asyncio.get_running_loop().time()
        block = bytes(range(256)) * 4096; sent = 0
        while sent < n:
            chunk = block[: min(len(block), n - sent)]
            writer.write(chunk); sent += len(chunk)
            await writer.drain()
        writer.write_eof()
        answer = await reader.read()
        dt = asyncio.get_running_loop().time() - t
        writer.close()
        runtime.close()
        st, rtt = conn.stats, conn.rtt
        stats = {"bytes": sent, "seconds": dt, "sha256": answer.decode(), "retransmitted_segments": st.retransmissions,
                 "timeouts": st.timeouts, "probes": st.probes, "recoveries": st.fast_retransmits,
                 "srtt_us": round((rtt.srtt or 0) * 1e6), "min_rtt_us": round((conn.recovery.min_rtt or 0) * 1e6)}
        print(json.dumps(stats))
asyncio.run(main())
"""


LINUX_CC = {"cubic": "cubic", "reno": "reno", "bbr-lite": "bbr"}  # tcpwave's name -> Linux's


def linux_cc(settings: dict) -> str:
    """The Linux congestion control that matches tcpwave's in `settings`."""
    return LINUX_CC[settings.get("congestion_control", Config().congestion_control)]


def _default_cc(ns: str) -> str:
    return sh("ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.tcp_congestion_control").stdout.strip()


def _impair(ns: str, dev: str, loss: float, rate: str) -> None:
    """Shape `dev`'s output; drop TCP packets arriving on it at random. The drop is on arrival (INPUT
    for this namespace's sockets, FORWARD for the TUN behind it): a packet dropped on its way out of a
    local socket (OUTPUT) is not lost but refused, and the Linux sender simply sends it again."""
    sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off")
    sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
       "burst", "256kb", "latency", "20ms")
    if loss:
        for chain in ("INPUT", "FORWARD"):
            sh("ip", "netns", "exec", ns, "iptables", "-A", chain, "-i", dev, "-p", "tcp", "-m", "statistic",
               "--mode", "random", "--probability", f"{loss:.6f}", "-j", "DROP")


def _path(near: str, far: str, loss: float, rate: str) -> None:
    """The veth between the namespaces, shaped both ways; each end drops what arrives on it, so
    either direction loses packets at the same rate, data and ACKs alike."""
    sh("ip", "link", "add", "vlossy0", "netns", near, "type", "veth", "peer", "name", "vlossy1", "netns", far)
    sh("ip", "netns", "exec", near, "ip", "addr", "add", f"{NEAR}/24", "dev", "vlossy0")
    sh("ip", "netns", "exec", far, "ip", "addr", "add", f"{FAR}/24", "dev", "vlossy1")
    sh("ip", "netns", "exec", near, "ip", "link", "set", "vlossy0", "up")
    sh("ip", "netns", "exec", far, "ip", "link", "set", "vlossy1", "up")
    sh("ip", "netns", "exec", far, "ip", "route", "add", "192.0.2.0/24", "via", NEAR)
    sh("ip", "netns", "exec", near, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    _impair(near, "vlossy0", loss, rate)
    _impair(far, "vlossy1", loss, rate)


def _timeouts(ns: str) -> int:
    """The namespace's TcpExtTCPTimeouts (RTOs that fired), from /proc/net/netstat."""
    lines = sh("ip", "netns", "exec", ns, "cat", "/proc/net/netstat").stdout.splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split()[1:], values.split()[1:], strict=True))["TCPTimeouts"])
    return 0


def _kernel_sender(r: dict, ns: str, before: int) -> dict:
    """What the Linux sender's kernel says of its transfer: RTOs (nstat), RTT and what limited it."""
    busy = r.get("busy_us") or 0
    return {"timeouts": _timeouts(ns) - before, "srtt_us": r.get("srtt_us"), "min_rtt_us": r.get("min_rtt_us"),
            "rwnd_limited": round(r["rwnd_limited_us"] / busy, 3) if busy and r.get("rwnd_limited_us") is not None
            else None,
            "sndbuf_limited": round(r["sndbuf_limited_us"] / busy, 3) if busy and r.get("sndbuf_limited_us") is not None
            else None}


KINDS = ("tcpwave_send", "linux_send", "tcpwave_recv", "linux_recv")


def _median_row(runs: list[dict]) -> dict:
    """One row per loss rate: each direction's median goodput over the runs (a run at 3-5% loss on a
    sub-millisecond path is ruled by how many 200 ms RTOs it happened to take), all runs kept."""
    row = dict(runs[0])
    for kind in KINDS:
        row[kind] = dict(runs[0][kind], mbps=statistics.median(r[kind]["mbps"] for r in runs),
                         verified=all(r[kind]["verified"] for r in runs))
    row["runs"] = runs
    return row


def _rtos(row: dict) -> list[list[int]]:
    """Per direction, the RTO count of each run: tcpwave's own counter, the Linux sender's nstat."""
    runs = row.get("runs", [row])
    return [[r["tcpwave_send"].get("timeouts") for r in runs], [r["linux_send"].get("timeouts") for r in runs],
            [r["tcpwave_recv"]["sender"]["timeouts"] for r in runs],
            [r["linux_recv"]["sender"]["timeouts"] for r in runs]]


def _mbps(r: dict) -> float:
    return r["bytes"] * 8 / r["seconds"] / 1e6


def measure(loss: float, size: int, rate: str, settings: dict, tmp: str) -> dict:
    pid = os.getpid()
    near, far = f"tcpwave-lossy-{pid}-a", f"tcpwave-lossy-{pid}-b"
    cc = linux_cc(settings)
    res: dict = {"loss": loss, "linux_cc": cc}
    with namespaces(near, far):
        _path(near, far, loss, rate)
        res["kernel_default_cc"] = _default_cc(near)
        tag = f"{loss:g}"
        # tcpwave -> Linux
        ready = os.path.join(tmp, f"srv-{tag}-1")
        with background(far, PY, "-c", HASH_SERVER, "5001", ready, ready=ready) as server:
            dev_ready = os.path.join(tmp, f"dev-{tag}")
            with background(near, PY, "-c", TCPWAVE_PUSH, str(size), FAR, "5001", dev_ready, json.dumps(settings),
                            ready=dev_ready) as client:
                out, err = client.communicate(timeout=600)
                if client.returncode:
                    raise RuntimeError(f"tcpwave sender failed: {err[-800:]}")
                r = json.loads(out.strip().splitlines()[-1])
            server.communicate(timeout=60)
        res["tcpwave_send"] = {"mbps": _mbps(r), "verified": r["sha256"] == pattern_sha256(size),
                               **{k: r.get(k) for k in ("retransmitted_segments", "timeouts", "probes", "recoveries",
                                                        "srtt_us", "min_rtt_us")}}
        # Linux -> Linux, the same direction
        ready = os.path.join(tmp, f"srv-{tag}-2")
        with background(far, PY, "-c", HASH_SERVER, "5002", ready, ready=ready):
            before = _timeouts(near)
            r = in_ns(near, PY, "-c", PUSH, str(size), FAR, "5002", cc, timeout=600)
        res["linux_send"] = {"mbps": _mbps(r), "verified": r["verified"], "cc": r["cc"],
                             "retransmitted_segments": r["retransmitted_segments"], **_kernel_sender(r, near, before)}
        # Linux -> tcpwave
        ready = os.path.join(tmp, f"tw-{tag}")
        serve = [PY, "-m", "tcpwave.cli.main", "serve", "hash", "--port", "5003", "--no-offload", "--control",
                 "none", "--ready-file", ready]
        for name, value in settings.items():
            serve += ["--set", f"{name}={value}"]
        with background(near, *serve, ready=ready):
            before = _timeouts(far)
            r = in_ns(far, PY, "-c", PUSH, str(size), TW, "5003", cc, timeout=600)
        res["tcpwave_recv"] = {"mbps": _mbps(r), "verified": r["verified"], "sender_cc": r["cc"],
                               "sender_retransmitted_segments": r["retransmitted_segments"],
                               "sender": _kernel_sender(r, far, before)}
        # Linux -> Linux, the same direction
        ready = os.path.join(tmp, f"srv-{tag}-4")
        with background(near, PY, "-c", HASH_SERVER, "5004", ready, ready=ready):
            before = _timeouts(far)
            r = in_ns(far, PY, "-c", PUSH, str(size), NEAR, "5004", cc, timeout=600)
        res["linux_recv"] = {"mbps": _mbps(r), "verified": r["verified"], "sender_cc": r["cc"],
                             "sender_retransmitted_segments": r["retransmitted_segments"],
                             "sender": _kernel_sender(r, far, before)}
    return res


def run(losses: list[float], size: int, rate: str = "200mbit", settings: dict | None = None,
        as_json: bool = False, runs: int = 1) -> int:
    if os.geteuid() != 0:
        print("tcpwave bench --lossy: needs root (network namespaces and TUN devices)", file=sys.stderr)
        return 1
    missing = [tool for tool in ("ip", "tc", "iptables", "ethtool") if shutil.which(tool) is None]
    if missing:
        print(f"tcpwave bench --lossy: needs {', '.join(missing)} (Debian: apt-get install iproute2 iptables "
              "ethtool)", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for loss in losses:
            # the runs of one loss rate interleaved with nothing else: each is a fresh path
            rows.append(_median_row([measure(loss / 100, size, rate, settings or {}, tmp) for _ in range(runs)]))
    ok = all(r[k]["verified"] for r in rows for k in ("tcpwave_send", "linux_send", "tcpwave_recv", "linux_recv"))
    if as_json:
        print(json.dumps({"rows": rows, "bytes": size, "rate": rate, "settings": settings or {}, "verified": ok},
                         indent=2))
        return 0 if ok else 1
    print(f"goodput over a veth shaped to {rate} each way with random loss each way; {size / 1e6:g} MB per "
          "transfer, data verified by SHA-256")
    used = sorted({r["linux_send"]["cc"] for r in rows} | {r[k]["sender_cc"] for r in rows
                                                          for k in ("tcpwave_recv", "linux_recv")})
    default = rows[0]["kernel_default_cc"] if rows else "?"
    print(f"tcpwave runs {(settings or {}).get('congestion_control', Config().congestion_control)}; every Linux "
          f"sender ran {', '.join(used)} (the kernel's default here: {default})\n")
    if runs > 1:
        print(f"each figure is the median of {runs} runs; RTOs: the sender's retransmission timeouts in those runs")
    print(f"{'loss':>6}  {'tcpwave sends':>14} {'Linux sends':>12} {'ratio':>6}   "
          f"{'tcpwave receives':>16} {'Linux receives':>14} {'ratio':>6}   RTOs (tw/Linux sending, receiving)")
    for r in rows:
        ts, ls, tr, lr = (r[k]["mbps"] for k in ("tcpwave_send", "linux_send", "tcpwave_recv", "linux_recv"))
        rtos = "{}/{}, {}/{}".format(*("+".join(str(t) for t in ts_) for ts_ in _rtos(r)))
        print(f"{r['loss']:>6.1%}  {ts:9.1f} Mbit/s {ls:7.1f} Mbit/s {ts / ls:5.2f}x   "
              f"{tr:11.1f} Mbit/s {lr:9.1f} Mbit/s {tr / lr:5.2f}x   {rtos}")
    if not ok:
        print("\nWARNING: a transfer failed verification", file=sys.stderr)
    return 0 if ok else 1
