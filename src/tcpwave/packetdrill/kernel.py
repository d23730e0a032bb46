"""`tcpwave packetdrill --kernel`: the same scripts, run against the Linux kernel instead of tcpwave.

Each script runs in a child process in a network namespace of its own (it vanishes with the child):
`lo` up, a TUN device `tun0` (as packetdrill's; --tun_device=NAME for another) with the kernel at
192.0.2.1/24 (2001:db8::1/64), the script's remote host beyond it, with checksum and TSO offloads on as
packetdrill sets them (so the kernel may send `> P. 1:10001(10000)`). `<` packets are written to the
device, `>` packets read from it, the script's calls are made on real sockets, shell lines run in the
namespace (with PACKETDRILL_PID set, as packetdrill exports it), all in real time. Matching, the
`--portable` rules, the output and the exit status are the simulator's (runner.py).

Time as in packetdrill: an untimed first shell line (the init command) runs before time 0, an untimed
last one (the cleanup command) at the end, pass or fail, when there was an init command; a relative
time counts from when the previous event finished, in real time, except between two `<` packets
(from the previous one's scheduled time).

Header flags that are tcpwave Config knobs are mapped to what Linux has (a sysctl of the namespace,
or a route attribute: rto_min, quickack, initcwnd, advmss); the rest are listed as not mapped.
"""

import dataclasses
import fcntl
import math
import os
import pickle
import select
import signal
import socket
import subprocess
import time
import typing

from ..drivers.netns import unshare_net
from ..drivers.tun import TUNSETOFFLOAD, TunDevice
from ..wire.seq import MASK
from ..wire.tcp import CWR
from . import packets, sysctl
from .kernel_sockets import KernelSockets
from .runner import Failure, Result, Runner, _Pending, _truthy
from .script import CallEvent, PacketEvent, ScriptError, SkippedEvent, parse_script

DEVICE = "tun0"  # packetdrill's name: peers' shell lines say `tc qdisc ... dev tun0`
TUN_F_ALL = 0x01 | 0x02 | 0x04 | 0x08  # TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN, as packetdrill
KERNEL_UNANNOUNCED_LIMIT = 240.0  # real seconds; the whole run is killed at 300 s
_SYSCTL_OF = {field: name for name, mapped in sysctl.TABLE.items() if name.startswith("net.")
              and not name.startswith("net.inet.") for field, _ in mapped[:1]}
_INVERSE: dict[str, typing.Callable[[typing.Any], object] | None] = {
    "timestamps": int, "sack": int, "window_scaling": int, "rfc1337": int, "abort_on_overflow": int,
    "congestion_control": lambda v: {"bbr-lite": "bbr"}.get(v, v), "rto_min": None,
    "invalid_ratelimit": lambda v: round(v * 1000), "fin_timeout": lambda v: max(1, round(v)),
    "keepalive_idle": lambda v: max(1, round(v)), "keepalive_interval": lambda v: max(1, round(v))}


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


class KernelRunner(Runner):
    """The runner with Linux as the implementation under test, in real time."""

    def _setup(self, changes: dict) -> None:
        self.t0 = time.monotonic()
        v6 = self.local.version == 6
        _sh("ip", "link", "set", "lo", "up")
        mtu = int(self.flags.get("mtu", "1500"))
        self.device = self.flags.get("tun_device", DEVICE)
        self.dev = TunDevice(self.device, f"{self.local}/{64 if v6 else 24}", str(self.remote), mtu=mtu,
                             offload=True)
        if self.dev.offload:
            fcntl.ioctl(self.dev.fd, TUNSETOFFLOAD, TUN_F_ALL)
        else:
            self.notes.append(f"TSO not on: {self.dev.offload_error}")
        os.environ["PACKETDRILL_PID"] = str(os.getpid())  # packetdrill's one export to shell lines
        self._route: list[str] = []
        for field, value in changes.items():
            self._apply(field, value)
        if self._route:
            prefix = f"{self.local}/{64 if v6 else 24}"
            net = str(__import__("ipaddress").ip_interface(prefix).network)
            _sh("ip", "-6" if v6 else "-4", "route", "change", net, "dev", self.device, *self._route)
        self.ks = KernelSockets(socket.AF_INET6 if v6 else socket.AF_INET, str(self.local), str(self.remote),
                                     bind_port=int(self.flags.get("bind_port", "8080")),
                                     connect_port=int(self.flags.get("connect_port", "8080")),
                                     portable=self.portable)
        self.ks.clock = lambda: self._clock()
        if "tso_size" in self.flags:
            self.notes.append("--tso_size: not applied to the kernel (it segments as TSO on its TUN device lets it)")
        self.sockets = self.ks

    def _apply(self, field: str, value) -> None:
        """A tcpwave knob from the script's header, on Linux."""
        if field == "rto_min":
            self._route += ["rto_min", f"{round(value * 1000)}ms"]
        elif field == "delayed_ack" and value == 0:
            self._route += ["quickack", "1"]
        elif field == "initial_cwnd_segments":
            self._route += ["initcwnd", str(value)]
        elif field == "mss":
            self._route += ["advmss", str(value)]
        elif field in _SYSCTL_OF:
            convert: typing.Callable[[typing.Any], object] = _INVERSE.get(field) or int
            self._sysctl(_SYSCTL_OF[field], str(convert(value)))
        else:
            self.notes.append(f"--{field} has no Linux equivalent: not applied")

    def _sysctl(self, name: str, value: str) -> None:
        with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
            f.write(value)

    # ------------------------------------------------------------ time and packets
    def _clock(self) -> float:
        return time.monotonic() - self.t0

    def run(self) -> None:
        events = self.script.events
        self.init = _untimed_shell(events[0]) if events else None
        self.cleanup = _untimed_shell(events[-1]) if len(events) > 1 else None
        if self.init is not None:  # packetdrill's init command: before time 0
            self._shell(self.init)
            self.init_ran = True
        self.script.events = [e for e in events if e is not self.init and e is not self.cleanup]
        self.t0 = time.monotonic()  # time 0 is the first event, as in packetdrill
        self.now = self.written_at = 0.0
        self.returned_at = 0.0
        super().run()

    def _anchor(self, previous, event, base: float) -> float:
        """packetdrill's rule: from the end of the previous event, in real time; from the previous
        one's scheduled time between two `<` packets. The end is what packetdrill's clock says then,
        without the time this runner takes around it: when a `>` line's packet was read from the
        device (`base`), a `<` packet written to it, a call returned."""
        if (_inbound(previous) and _inbound(event)) or _outbound(previous):
            return base
        if _inbound(previous):
            return self.written_at
        if isinstance(previous, CallEvent):
            return self.returned_at
        return self._clock()

    def _call(self, event, at: float) -> None:
        super()._call(event, at)
        self.returned_at = self._clock()  # (or, blocking, when it started and the script went on)

    def _collect(self) -> None:
        raws, _ = self.dev.read_batch()
        at = self._clock()
        for raw in raws:
            sent = packets.decode_outbound(raw, at)
            if sent is not None:
                self.queue.append(sent)

    def _deliver(self, raw: bytes) -> None:
        self.dev.write(raw)
        self.written_at = self._clock()

    def _wait(self, until: float) -> None:
        """Sleep until `until` (script time) or until the device has a packet, at most 2 ms."""
        left = until - self._clock()
        if left > 0:
            select.select([self.dev], [], [], min(left, 0.002))

    def _advance(self, to: float, event) -> None:
        while True:
            self.now = self._clock()
            self._after_step()
            if self.now >= to:
                break
            self._deadline_check(self.now, event)
            self._wait(to)
        self.now = self._clock()

    def _block_unannounced(self, event, attempt) -> None:
        """As in virtual time, in real time: wait for the call to return, polling the device meanwhile."""
        self.pending = _Pending(event, attempt, math.inf, math.inf)
        limit = self._clock() + KERNEL_UNANNOUNCED_LIMIT
        while self.pending is not None:
            if self._clock() > limit:
                self.pending = None
                raise Failure(event.line, f"{event.name}() would block for over {KERNEL_UNANNOUNCED_LIMIT:.0f} s; "
                                          f"write it as 'start...end {event.name}(...)' with the time it returns")
            self._advance(self._clock() + 0.01, event)

    def _gather(self, event, sent, lo, deadline):
        """packetdrill's rule without --strict_segments: a `>` line longer than the packet sent is
        matched by the packets that follow it, in sequence, until its length is reached (the kernel's
        TSO autosizing cuts a write in chunks of its own); checked as one, with the first's sequence
        number and the last's header."""
        want = event.any_len if event.any_seq else event.end - event.start
        if want is None or _truthy(self.flags.get("strict_segments", "false")) or sent.length >= want:
            return sent
        first = last = sent
        total, count = sent.length, 1
        while total < want:
            self._await_packet(event, lo, max(deadline, self._clock()) + 2.0)  # packetdrill: 2 s of slack
            after = self.queue[0]
            if ((after.src_port, after.dst_port) != (last.src_port, last.dst_port) or after.ack != last.ack
                    or after.seq != (last.seq + last.length) & MASK or not after.length
                    or (total + after.length < want and after.length != last.length)):
                break  # not a fragment of this one: left for the next line
            last = self.queue.popleft()
            total, count = total + last.length, count + 1
        if count > 1:
            self.log.append(f"{last.time:.3f} ({total} bytes in {count} packets, checked as one, as packetdrill)")
        return dataclasses.replace(last, seq=first.seq, length=total, flags=last.flags & ~CWR | first.flags & CWR)

    def _await_packet(self, event, lo: float | None, deadline: float) -> None:
        while not self.queue:
            self.now = self._clock()
            self._after_step()
            if self.queue:
                break
            if self.now > deadline:
                when = "" if lo is None else f" at {lo:.3f} s"
                raise Failure(event.line, f"expected {event.text!r}{when}; nothing was sent by "
                                          f"{deadline:.3f} s")
            self._wait(deadline if deadline != float("inf") else self.now + 1.0)

    # ------------------------------------------------------------ sockets, tcp_info, shell lines
    def _learn_ports(self, ports) -> None:  # type: ignore[override]
        self.flow = self._flow(ports[1], self.ks.connect_port)
        self.flow.spaces.isn = self.flow.spaces.ts_base = None

    def _synchronized(self) -> bool:
        return False  # the kernel's sockets are not looked into: a new SYN's answer shows its numbering

    def _listening(self) -> bool:
        u = self.ks.under_test
        return u is not None and u.listening

    def _child_made(self) -> None:
        self.ks.under_test = None  # the child has no descriptor until accept()

    def _code(self, event: SkippedEvent) -> None:
        if self.ks.newest_closed:
            raise Failure(event.line, "runtime error in code: can't find getsockopt to get TCP info (the socket "
                                      "under test is closed)")
        super()._code(event)

    def _tcp_info(self) -> dict | None:
        s = self.ks.under_test
        if s is None and self.ks.table:
            s = self.ks.table[max(self.ks.table)]
        return None if s is None else self.ks.tcp_info(s)

    def _shell_or_code(self, event: SkippedEvent) -> None:
        if event.kind == "code":
            self._code(event)
            return
        self._shell(event)

    def _shell(self, event: SkippedEvent) -> None:
        command, unmapped = sysctl.to_linux(event.body)
        for name in unmapped:
            self.notes.append(f"line {event.line}: {name} has no Linux equivalent: not applied")
        if command != event.body:
            self.notes.append(f"line {event.line}: FreeBSD sysctl names given their Linux names: {command.strip()}")
        if not command.strip():
            return
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
        self.notes.append(f"line {event.line}: shell ran: {command.strip()}")
        if done.returncode != 0:
            what = "init command" if event is self.init else "shell command"
            raise Failure(event.line, f"{what} failed ({done.returncode}): {command.strip()}: "
                                      f"{done.stderr.strip()[:200]}")

    def close(self) -> None:
        self.ks.close_all()
        try:
            if getattr(self, "init_ran", False) and self.cleanup is not None:
                self._shell(self.cleanup)  # pass or fail, as packetdrill (only with an init command)
        except Failure as e:
            self.notes.append(f"line {e.line}: cleanup command: {e}")
        finally:
            self.dev.close()


def _untimed_shell(event) -> SkippedEvent | None:
    return event if isinstance(event, SkippedEvent) and event.kind == "shell" and event.untimed else None


def _inbound(event) -> bool:
    return isinstance(event, PacketEvent) and event.inbound


def _outbound(event) -> bool:
    return isinstance(event, PacketEvent) and not event.inbound


def _child(path: str, text: str, defaults: dict[str, str], defines: dict[str, str], out: int) -> None:
    """In the forked child: a namespace of its own, the run, the Result down the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        unshare_net("--kernel")
        script = parse_script(text, path, defines)
        runner = KernelRunner(script, {"tolerance_usecs": "10000", "tolerance_percent": "13", **defaults})
    except ScriptError as e:
        result = Result(path, False, e.line or None, f"cannot read the script: {e.args[0].split(': ', 1)[-1]}")
    except (OSError, subprocess.CalledProcessError) as e:
        result = Result(path, False, None, f"cannot set up the kernel run: {e}")
    else:
        try:
            runner.run()
            result = Result(path, True, notes=runner.notes, log=runner.log)
        except Failure as e:
            unmapped = [n for n in runner.notes if "no Linux equivalent" in n]
            hint = f" [{'; '.join(unmapped)}]" if unmapped else ""
            result = Result(path, False, e.line or None, str(e) + hint, runner.notes, runner.log)
        except Exception as e:  # noqa: BLE001 - reported with its line, like the simulator's crashes
            line = runner.current.line if runner.current else None
            result = Result(path, False, line, f"internal error: {type(e).__name__}: {e}", runner.notes, runner.log)
        finally:
            runner.close()
    os.write(out, pickle.dumps(result))


def run_kernel_file(path: str, defaults: dict[str, str] | None = None, limit: float = 300.0,
                    defines: dict[str, str] | None = None) -> Result:
    """Run one script against Linux in a throwaway network namespace (needs root)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return Result(path, False, None, f"cannot open: {e.strerror}")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        code = 0
        try:
            _child(path, text, defaults or {}, defines or {}, write_fd)
        except BaseException:  # noqa: BLE001 - whatever happens, the child must not go on as the parent
            code = 1
        os._exit(code)
    os.close(write_fd)
    chunks = []
    try:
        end = time.monotonic() + limit
        while True:
            left = end - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return Result(path, False, None, f"no result within {limit:.0f} s (killed)")
            ready, _, _ = select.select([read_fd], [], [], left)
            if ready:
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # Ctrl-C: the child (and with it its namespace) goes too
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(read_fd)
    os.waitpid(pid, 0)
    if not chunks:
        return Result(path, False, None, "the kernel run ended without a result")
    result = pickle.loads(b"".join(chunks))
    assert isinstance(result, Result)
    return result
