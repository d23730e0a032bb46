"""Several stacks on the queues of one multi-queue TUN device, one process each (`serve --workers N`).

The parent makes the device with N queues, forks N workers and waits for them. Worker i keeps queue
i and runs its own Stack (its own RNG, tables and timers) for the same address; each listens, as
SO_REUSEPORT listeners do. A connection a worker opens takes an ephemeral port p with
(p - 49152) % N == i (`stack.port_owner`).

Where the kernel lets us load it, an eBPF program picks every packet's queue from its ports
(drivers/steering.py): the replies to port p reach worker (p - 49152) % N, and an incoming connection stays
on the queue its client's port (mixed) picks. Otherwise the kernel's flow hash picks the worker of every incoming
connection and keeps it there, and learns from the worker's first packet that the replies of a
connection it opened belong on queue i (tun_flow_update); what arrives before it learns, or after it
forgets (its flow table holds 4,096 flows, each for 3 s after the last packet written on it), the
worker that gets it hands to the port's owner over a Unix datagram socket. That hand-over stays in
place with steering too, and both count what they hand over.
"""

import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable

STEERING_ENV = "TCPWAVE_STEERING"  # "off": no steering program, the hand-over only
FORWARD_MAX = 65536 + 1  # one IP packet (at most 64 KB with offloads) and the trusted flag
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each ends a server the same way


class Worker:
    """What one worker process gets: its queue, its forwarding socket, the others' and a status pipe."""

    def __init__(self, index: int, count: int, queue, channel: socket.socket, peers: list, status: int):
        self.index, self.count, self.queue = index, count, queue
        self.channel, self.peers, self._status = channel, peers, status
        self.dropped = 0  # forwards lost because the owner's socket was full (TCP retransmits them)
        self.handed = 0  # packets handed to another worker (those lost included)

    @property
    def label(self) -> str:
        return f"{self.index + 1}/{self.count}"

    def ready(self) -> None:
        os.write(self._status, b"R\n")

    def report(self, closed: int) -> None:
        os.write(self._status, f"C {closed} {self.handed}\n".encode())

    def attach(self, runtime) -> None:
        """Share the stack's ports with the other workers and take the packets they forward."""
        runtime.worker = self.label
        runtime.stack.share_ports(self.index, self.count, self._forward)
        runtime.loop.add_reader(self.channel.fileno(), self._forwarded, runtime)

    def _forward(self, owner: int, packet, trusted: bool) -> None:
        self.handed += 1
        try:
            self.peers[owner].send(b"\x01" + packet if trusted else b"\x00" + packet)
        except OSError:  # (full, BlockingIOError, or the owner gone)
            self.dropped += 1

    def _forwarded(self, runtime) -> None:
        packets, trusted = [], []
        for _ in range(256):
            try:
                data = self.channel.recv(FORWARD_MAX)
            except BlockingIOError:
                break
            packets.append(data[1:])
            trusted.append(data[:1] == b"\x01")
        if packets:
            runtime._on_packets(packets, trusted)


def steer(device) -> str:
    """What steers `device`'s queues, as the start line says it: the program attached when the device
    was made (here, unless $TCPWAVE_STEERING is "off"; or by `tcpwave tun add`, where it stays with
    the device: a user without privileges could not load it), or the hand-over."""
    lanes = ", new connections' first packets on lanes read first" if device.lanes else ""
    if device.existing:
        if device.steered_by_owner():
            return f"queues steered by port{lanes} (the eBPF program `tcpwave tun add` attached)"
        return f"packets for another worker's port handed over ({device.name} was made without steering)"
    if not steering_wanted():
        return f"packets for another worker's port handed over (${STEERING_ENV}=off)"
    if device.steering_error is None:
        return f"queues steered by port (eBPF){lanes}"
    return f"packets for another worker's port handed over (no steering: {device.steering_error})"


def steering_wanted() -> bool:
    """Whether a device made here gets the steering program, with lanes: unless $TCPWAVE_STEERING is "off"."""
    return os.environ.get(STEERING_ENV, "").lower() != "off"


def run(count: int, device, main: Callable[[Worker], int], on_ready: Callable[[], None],
        grace: float = 5.0) -> tuple[int, int, int]:
    """Fork `count` workers on `device`'s queues; main(worker) is each one's program (its exit status).
    on_ready() runs once every worker has called ready(). Returns (exit status, closed connections,
    packets handed over between workers) once all have ended: SIGINT, SIGTERM or SIGHUP here is
    passed on to them (as SIGTERM), and a worker that has not ended `grace` seconds later is killed.
    A worker ending on its own stops the others (status 1), with one line that names it and says how it ended."""
    channels = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(count)]
    for pair in channels:
        for s in pair:
            s.setblocking(False)
    status_r, status_w = os.pipe()
    pids: list[int] = []
    for i in range(count):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(status_r)
                queue = device.keep_only(i)
                for j, (rx, tx) in enumerate(channels):
                    (tx if j == i else rx).close()
                peers = [None if j == i else tx for j, (_, tx) in enumerate(channels)]
                code = main(Worker(i, count, queue, channels[i][0], peers, status_w))
            except KeyboardInterrupt:
                code = 0
            except BaseException as e:  # noqa: BLE001 (one line, never a traceback, and never back to the parent's code)
                print(f"tcpwave: worker {i + 1}/{count}: {type(e).__name__}: {e}", file=sys.stderr)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        pids.append(pid)
    device.close()  # the workers hold the queues: the device goes with the last of them
    for rx, tx in channels:
        rx.close()
        tx.close()
    os.close(status_w)
    return _supervise(pids, status_r, on_ready, grace)


def _supervise(pids: list[int], status_r: int, on_ready, grace: float) -> tuple[int, int, int]:
    live = set(pids)
    number = {pid: i + 1 for i, pid in enumerate(pids)}
    stop_at: list[float] = []  # when the stop began

    def stop(*_) -> None:
        if not stop_at:
            stop_at.append(time.monotonic())
        for pid in live:
            try:
                os.kill(pid, signal.SIGTERM)  # ours, by PID
            except ProcessLookupError:
                pass

    old = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    ready, closed, handed, failed, buf, eof = 0, 0, 0, False, b"", False
    try:
        while live:
            if stop_at and time.monotonic() - stop_at[0] > grace:
                for pid in live:
                    os.kill(pid, signal.SIGKILL)
            readable, _, _ = select.select([] if eof else [status_r], [], [], 0.05 if eof else 0.2)
            if readable:
                chunk = os.read(status_r, 4096)
                eof = not chunk  # every worker has closed its end: they are exiting
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line == b"R":
                        ready += 1
                        if ready == len(pids) and not stop_at:
                            on_ready()
                    elif line.startswith(b"C "):
                        counts = line[2:].split()
                        closed += int(counts[0])
                        handed += int(counts[1])
            while live:
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                live.discard(pid)
                if not stop_at:  # a worker ended on its own: the service is incomplete, stop
                    failed = True
                    print(f"tcpwave: worker {number[pid]} (pid {pid}) died: {ended(status)}; stopping the others",
                          file=sys.stderr, flush=True)
                    stop()
                elif os.waitstatus_to_exitcode(status) not in (0, 130, -signal.SIGTERM):
                    failed = True
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        os.close(status_r)
    return (1 if failed else 0), closed, handed


def ended(status: int) -> str:
    """How a process ended, from its wait status: "killed by SIGKILL", "exited with status 1"."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"killed by {signal.Signals(number).name}"
        except ValueError:
            return f"killed by signal {number}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
