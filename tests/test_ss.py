"""`tcpwave ss`: connection snapshots, the control socket of a running tcpwave, and the command
against `tcpwave serve` in a namespace with a real kernel client."""

import asyncio
import os
import re
import shutil
import subprocess
import sys

import pytest

from tcpwave.aio import MemoryLink, Runtime, open_connection, start_server
from tcpwave.aio.control import query, start_control
from tcpwave.cli.ss import render
from tcpwave.stack import Stack

SERVER = "192.0.2.2"


def test_control_socket_reports_listener_and_both_ends_of_a_connection(tmp_path):
    path = str(tmp_path / "ctl.sock")

    async def main():
        a, b = MemoryLink.pair(delay=0.001)
        client = Runtime(Stack(["192.0.2.1"], seed=1, host="client"), a)
        server = Runtime(Stack([SERVER], seed=2, host="server"), b)
        held = asyncio.Event()

        async def handle(reader, writer):
            await reader.readexactly(5)  # then read no more: the StreamReader fills, then the connection
            await held.wait()
            writer.close()

        await start_server(handle, SERVER, 7, runtime=server)
        ctl = await start_control(server, path)
        reader, writer = await open_connection(SERVER, 7, runtime=client)
        writer.write(b"hello" + b"x" * 300_000)
        await writer.drain()
        conn = writer.get_extra_info("tcpwave_connection")
        for _ in range(500):  # until the server has ACKed every byte
            await asyncio.sleep(0.005)
            if conn.snd_una == conn.snd_nxt:
                break
        assert conn.snd_una == conn.snd_nxt, "the server never acknowledged everything"
        doc = await asyncio.to_thread(query, path)
        seen = {"snd_nxt": conn.snd_nxt, "rcv_nxt": conn.rcv_nxt, "port": conn.local[1]}
        held.set()
        ctl.close()
        return doc, seen

    doc, client = asyncio.run(asyncio.wait_for(main(), 30))
    assert doc["pid"] == os.getpid() and doc["host"] == "server" and doc["addresses"] == [SERVER]
    listen, est = doc["connections"]
    assert listen["state"] == "LISTEN" and listen["local"] == f"{SERVER}:7" and listen["remote"] == "*:*"
    assert est["state"] == "ESTABLISHED" and est["remote"] == f"192.0.2.1:{client['port']}"
    assert 100_000 < est["recv_q"] < 300_000 and est["send_q"] == 0  # the StreamReader holds the rest
    assert est["rcv_nxt"] == client["snd_nxt"] and est["snd_nxt"] == client["rcv_nxt"]  # the two ends agree
    assert est["srtt"] is not None and 0.0019 < est["srtt"] < 1 and est["rto"] >= 0.2
    assert est["cwnd"] > 0 and est["rcv_wnd"] < 256 * 1024 - 100_000  # unread bytes shrink the window
    table = render([doc])
    assert "ESTABLISHED" in table and f"192.0.2.1:{client['port']}" in table and "Recv-Q" in table
    summary = render([doc], summary=True).splitlines()
    assert summary[:3] == ["Total: 2 (in 1 tcpwave process)", "  ESTABLISHED  1", "  LISTEN       1"]
    assert summary[3].startswith(f"memory pid {doc['pid']}: ") and "(normal; " in summary[3]  # the unread bytes
    assert doc["memory"]["used"] == est["recv_q"] and doc["memory"]["reset_connections"] == 0


def test_timers_are_listed_with_the_time_left():
    from tcpwave.core.observe import snapshot

    stack = Stack(["192.0.2.1"], seed=1)
    conn = stack.connect("192.0.2.9", 80, now=0.0)  # no answer: the SYN's retransmission timer runs
    snap = snapshot(conn, now=0.25)
    assert snap["state"] == "SYN_SENT" and snap["remote"] == "192.0.2.9:80"
    assert snap["timers"] == {"retransmit": pytest.approx(conn.rto - 0.25)}
    assert "rtx:0.750s" in render([{"pid": 1, "host": "h", "addresses": ["192.0.2.1"], "time": 0.25,
                                    "connections": [snap]}])


@pytest.mark.skipif(not (os.geteuid() == 0 and shutil.which("ip") and os.path.exists("/dev/net/tun")),
                    reason="needs root, iproute2 and /dev/net/tun")
def test_ss_lists_a_kernel_clients_connection_to_tcpwave_serve(tmp_path):
    ctl_dir = tmp_path / "ctl"
    env = dict(os.environ, TCPWAVE_CONTROL_DIR=str(ctl_dir))
    py = sys.executable
    client = (f"import socket,subprocess,sys;s=socket.create_connection(('{SERVER}',9));s.sendall(b'hi');"
              f"s.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1);"
              f"print(s.getsockname()[1],flush=True);"
              f"r=[subprocess.run([sys.executable,'-m','tcpwave.cli.main','ss']+a,capture_output=True,text=True)"
              f" for a in ([],['-s'],['--watch','0.05','--count','2'],['-i','state','established'],"
              f"['sport = :9'],['dport','=',':9'],['state','bogus'])];"
              f"r.append(subprocess.run(['ss','-tinH','state','established'],capture_output=True,text=True));"
              f"[print('=====',x.returncode,x.stdout,flush=True) for x in r]")
    r = subprocess.run([py, "-m", "tcpwave.cli.main", "sandbox", "--serve", "discard", "--", py, "-c", client],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    port, plain, summary, watch, info, sport, dport, bogus, linux = r.stdout.split("=====")
    port = int(port.strip())
    # filters as Linux ss takes them
    def states(out):
        return sorted(line.split()[0] for line in out.splitlines()[2:] if line.strip() and line[0] != "\t")

    assert info.startswith(" 0") and states(info) == ["ESTABLISHED"]
    assert states(sport) == ["ESTABLISHED", "LISTEN"]
    assert dport.split()[0] == "0" and states(dport) == []  # none of serve's connections goes to port 9
    assert bogus.split()[0] == "2"
    # -i in Linux's terms: the names Linux's ss -i prints for the kernel's end of the same connection, in
    # its order, with the same units (cwnd in segments, times in ms)
    ours_line = next(line for line in info.splitlines() if line.startswith("\t"))
    kernel_line = next(line for line in linux.splitlines() if line.startswith("\t"))
    key = re.compile(r"(?:^|\s)([a-z_]+)[: ]")
    ours_keys = [k for k in key.findall(ours_line) if k != "ca_state"]
    linux_keys = key.findall(kernel_line)
    shared = [k for k in ours_keys if k in linux_keys]
    assert len(shared) >= 12, (ours_line, kernel_line)
    assert shared == [k for k in linux_keys if k in shared], (ours_line, kernel_line)
    assert int(re.search(r"cwnd:(\d+)", ours_line).group(1)) == 10  # the initial window, in segments
    assert re.search(r"mss:(\d+)", ours_line) and re.search(r"rto:\d+ ", ours_line)
    row = next(line for line in plain.splitlines() if f"192.0.2.1:{port}" in line)
    assert row.split()[0] == "ESTABLISHED" and f"{SERVER}:9" in row
    assert "LISTEN" in plain
    assert "ESTABLISHED  1" in summary and summary.strip().startswith("0 Total: 2")
    assert watch.count("# pid") == 2  # two refreshes
    assert not list(ctl_dir.glob("*.sock"))  # serve removed its control socket when it stopped


def _transfer(data: bytes, loss: float = 0.0, bandwidth: float = 20e6, tso: int = 0):
    """`data` from a to b over a simulated 10 ms link; the sender's ss snapshot at the end."""
    from tcpwave.core import events as ev
    from tcpwave.core.observe import snapshot
    from tcpwave.sim import LinkParams, Simulator

    sim = Simulator(5)
    a = sim.add_host("a", ["192.0.2.1"])
    b = sim.add_host("b", ["192.0.2.2"])
    sim.link(a, b, LinkParams(latency=0.01, bandwidth=bandwidth, loss=loss))
    got = []
    b.on_event = lambda h, c, e: got.append(c.receive(1 << 20, now=sim.now)) if isinstance(e, ev.DataReadable) else None
    b.stack.listen(80, 0.0)
    conn = a.stack.connect("192.0.2.2", 80, 0.0)
    a.pump()
    sim.run(until=0.1)
    conn.tso_max = tso
    assert conn.send(data, sim.now) == len(data)  # (fits the send buffer)
    a.pump()
    sim.run(until=30.0, stop=lambda: conn.snd_una == conn.snd_nxt and sum(map(len, got)) == len(data))
    assert b"".join(got) == data
    return snapshot(conn, sim.now), sim.now


def test_ss_info_counters_after_a_lossy_transfer():
    """The ss -i counters: what was sent, resent, acknowledged and received, the delivery rate and the
    time with data in flight, after 200 KB over a link that loses 3%."""
    data = os.urandom(200_000)
    snap, now = _transfer(data, loss=0.03)
    assert snap["retransmissions"] > 0 and snap["bytes_retrans"] > 0 and snap["retrans"] == 0
    assert snap["bytes_acked"] == len(data) + 1  # and the SYN
    assert snap["bytes_sent"] == len(data) + snap["bytes_retrans"]
    assert snap["delivery_rate"] > 0 and 0 < snap["busy_time"] < now
    line = render([{"pid": 1, "host": "a", "addresses": ["192.0.2.1"], "time": now, "connections": [snap]}],
                  info=True).splitlines()[-1]
    assert line.startswith("\t cubic wscale:") and f"retrans:0/{snap['retransmissions']}" in line
    assert "delivery_rate " in line and "busy:" in line and f"mss:{snap['mss']}" in line
    assert f"cwnd:{snap['cwnd'] // snap['mss']} " in line  # in segments, as Linux


def test_segs_out_counts_segments_on_the_wire_not_tso_buffers():
    """On a TUN device with TSO a segment may carry 64 KB, which the kernel cuts into MSS-sized
    segments: Linux's segs_out counts those, so ss does too."""
    data = os.urandom(200_000)
    snap, _ = _transfer(data, bandwidth=100e6, tso=65536)
    assert snap["segs_out"] >= -(-len(data) // snap["mss"])
