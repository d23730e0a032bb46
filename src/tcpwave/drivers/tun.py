"""A Linux TUN device (IFF_TUN | IFF_NO_PI) and a simple loop that runs a Stack on it.

The device is created in the current network namespace with the kernel-side address; the stack
answers for another address in the same prefix. Needs CAP_NET_ADMIN and /dev/net/tun.
With offload=True the device carries a virtio_net_hdr per packet (IFF_VNET_HDR) and asks for
checksum and TSO offloads (TUNSETOFFLOAD): the kernel then hands us ~64 KB super-segments with only
the pseudo-header summed, and accepts ~64 KB segments that it splits at the MSS we give it. Where the
kernel refuses the offloads the device says so (`offload_error`) and works packet by packet.

With queues=N > 1 the device is multi-queue (IFF_MULTI_QUEUE): N descriptors, one per queue, each read
and written by its own process (`tcpwave serve --workers N`). The kernel spreads flows over the
queues by a symmetric flow hash, and learns from every packet written on a queue that replies of that
flow belong there (tun_flow_update), so a connection a worker opens gets its answers on its queue;
or, where we may load one, by the steering program of drivers/steering.py, which picks the queue
from the ports (`steer_by_port`).

With lanes (serve, where it may load the steering program; `tcpwave tun add`) the queues come in
pairs, 2i for traffic and 2i + 1 its lane, and the steering program puts every SYN without ACK, and
the next few packets of its flow, on the lane beside the queue its flow goes to: the reader drains
its lane first (aio.runtime.TunLink), so a new client's packets never wait in, or are dropped from,
a traffic queue's full ring. The program is attached before any queue but the first, and the lanes
attached only once it is in force.
"""

import errno
import fcntl
import io
import ipaddress
import os
import select
import struct
import subprocess
import time

from . import steering

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE
TUNSETOFFLOAD = 0x400454D0
TUNSETSTEERINGEBPF = 0x800454E0
# What `tcpwave tun add --queues N` writes as the device's alias once it has attached the steering
# program (which stays with a persistent device): the only sign of it that a user without
# privileges can read (/sys/class/net/DEV/ifalias); only CAP_NET_ADMIN may set an alias.
STEERED_ALIAS = "tcpwave: queues steered by port (eBPF)"
LANES_ALIAS = "tcpwave: queues steered by port, each with a lane for new connections (eBPF)"  # (attached in pairs)
SIOCGIFADDR, SIOCGIFNETMASK = 0x8915, 0x891B
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE = 0x0001, 0x1000, 0x4000, 0x0100
IFF_PERSIST = 0x0800
# Packets the kernel may queue for us per queue (each queue's ring is this long; Linux's TUN default is
# 500). On 2 CPUs a flood's sender can run a time slice while we wait for the CPU, and 500 packets of
# a flood is a few ms: what overflows is lost, real clients' SYNs with the rest. Not much longer
# either: under a sustained overload the ring stays full and its length is the delay every packet
# waits (4096 at the ~6,000 packets/s a worker drained under load: ~0.7 s).
TXQUEUELEN = 1024
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 = 0x01, 0x02, 0x04
# struct virtio_net_hdr (legacy, host byte order): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HDR = struct.Struct("<BBHHHH")
NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_TCPV6 = 0, 1, 4
SEGMENT_MAX = 65535 - 60 - 60  # the largest TCP payload one IP packet carries, with room for headers


SMALL = 256  # a packet read this long or shorter is copied out of what read() returned, not viewed


class TunError(OSError):
    def __str__(self) -> str:  # the sentence, without "[Errno N]"
        return self.strerror or super().__str__()


class TunDevice:
    def __init__(self, name: str, kernel: str, stack_address: str, mtu: int = 1500, offload: bool = False,
                 queues: int = 1, steer: range | None = None, lanes: bool = False):
        """kernel: the kernel side as 'address/prefix'; stack_address: the address tcpwave answers for.
        steer: the stack's ephemeral ports, to attach the steering program (drivers/steering.py) to a
        device made here; `steering_error` says why it could not be. lanes: with the program, a lane
        beside each queue for new connections' first packets (`lane(i)`); none where the program failed.

        If a device `name` exists already (made by `tcpwave tun add`, persistent and owned by this
        user), it is attached to as it is: no privileges needed, no `ip` configuration, and its own
        IPv4 address is the kernel side; it has lanes if `tun add` made it with them."""
        if os.path.exists(f"/sys/class/net/{name}"):
            kernel = interface_address(name) or kernel
            with open(f"/sys/class/net/{name}/mtu") as f:
                mtu = int(f.read())
        iface = ipaddress.ip_interface(kernel)
        ours = ipaddress.ip_address(stack_address)
        if ours == iface.ip:
            raise ValueError(f"the stack's address {ours} must differ from the kernel side's {iface.ip}: "
                             "with the same address the kernel answers itself over lo")
        if ours not in iface.network:
            raise ValueError(f"the stack's address {ours} is not in the kernel side's prefix {iface.network}")
        self.existing = os.path.exists(f"/sys/class/net/{name}")
        if queues < 1:
            raise ValueError(f"a TUN device needs at least one queue, not {queues}")
        if self.existing:  # as `tun add` made it: with lanes, several queues must come in pairs (one alone gets all)
            lanes = alias(name) == LANES_ALIAS and (lanes or queues > 1)
        else:
            lanes = lanes and steer is not None
        multi = queues > 1 or lanes or (self.existing and (_tun_flags(name) or 0) & IFF_MULTI_QUEUE)
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload else 0) | (IFF_MULTI_QUEUE if multi else 0)
        self.steering_error: str | None = None
        fds = [_attach(name, flags, self.existing)]
        try:
            if steer is not None and not self.existing:  # before the other queues: they come in pairs only
                self.steering_error = attach_steering(fds[0], steer, lanes)  # if the program is in force
                if lanes and self.steering_error is not None:  # (its map refused, say): steered without lanes
                    lanes, self.steering_error = False, attach_steering(fds[0], steer)
            per = 2 if lanes else 1
            while len(fds) < per * queues:  # the first TUNSETIFF made the device; the others attach queues to it
                fds.append(_attach(name, flags, True))
            if self.existing:  # attached to a device that was there: refused if anyone else has it open
                _refuse_if_in_use(name)
                if not offload:  # a persistent device keeps the offloads an earlier user asked for: without
                    fcntl.ioctl(fds[0], TUNSETOFFLOAD, 0)  # the header that says so, checksums would look bad
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        self.vnet = offload
        self.offload = False  # checksum + TSO offloads in force
        self.offload_error: str | None = None
        if offload:
            try:
                for fd in fds:
                    fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
                self.offload = True
            except OSError as e:  # an old kernel or a restricted one: packet by packet, with the header
                self.offload_error = f"TUNSETOFFLOAD refused: {os.strerror(e.errno or 0)}"
        # the kernel numbers queues in the order they were attached: with lanes, 2i is queue i and 2i + 1 its lane
        self.queues = [TunQueue(fd, self.vnet, i) for i, fd in enumerate(fds) if i % per == 0]
        self.lanes = [TunQueue(fd, self.vnet, i) for i, fd in enumerate(fds) if i % per == 1]
        self.fd = fds[0]
        self.name, self.kernel, self.stack_address, self.mtu = name, iface, ours, mtu
        if not self.existing:  # ours: configure the kernel side (a device someone made for us already is)
            try:
                configure(name, iface, mtu)
            except BaseException:
                self.close()
                raise

    def fileno(self) -> int:
        return self.fd

    def read_batch(self, limit: int = 256) -> tuple[list, list[bool] | None]:
        return self.queues[0].read_batch(limit)

    def write(self, packet: bytes, gso_size: int = 0, checksum_partial: bool = False) -> None:
        self.queues[0].write(packet, gso_size, checksum_partial)

    def steer_by_port(self, ephemeral: range) -> str | None:
        """Attach the steering program (drivers/steering.py, without lanes) to this device: None once
        it is in force, else the reason it is not (no CAP_BPF, a kernel without it...)."""
        return attach_steering(self.fd, ephemeral)

    def lane(self, index: int) -> "TunQueue | None":
        """Queue `index`'s lane for new connections, or None."""
        return self.lanes[index] if self.lanes else None

    def steered_by_owner(self) -> bool:
        """An existing device that `tcpwave tun add` steered by port when it made it."""
        return self.existing and alias(self.name) in (STEERED_ALIAS, LANES_ALIAS)

    def keep_only(self, index: int) -> "TunQueue":
        """In a worker process: close every other queue's descriptor here; return this one's."""
        keep = (self.queues[index], self.lane(index))
        for q in self.queues + self.lanes:
            if q not in keep:
                q.close()
        self.fd = self.queues[index].fd
        return self.queues[index]

    def close(self) -> None:
        for q in self.queues + self.lanes:  # a non-persistent TUN device disappears with its last descriptor
            q.close()
        self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TunQueue:
    """One queue of a TUN device: its descriptor, read in batches and written one packet at a time."""

    def __init__(self, fd: int, vnet: bool, index: int = 0):
        self.fd, self.vnet, self.index = fd, vnet, index
        # FileIO.read answers None on a non-blocking descriptor with nothing queued: no exception
        # raised and caught at the end of every batch, as os.read would need
        self._reader = io.FileIO(fd, "rb", closefd=False)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read_batch(self, limit: int = 256) -> tuple[list, list[bool] | None]:
        """Everything queued, up to `limit` packets, without blocking: (packets, trusted). trusted[i]
        is True where the kernel left the TCP checksum partial (it made the packet itself); None when
        no packet is."""
        out: list[bytes | memoryview] = []
        trusted = None
        size = 65536 + VNET_HDR.size
        read = self._reader.read
        for _ in range(limit):
            raw = read(size)
            if raw is None:
                break
            if not self.vnet:
                out.append(raw)
                continue
            partial = raw[0] & NEEDS_CSUM
            if partial:
                if trusted is None:
                    trusted = [False] * len(out)
                trusted.append(True)
            elif trusted is not None:
                trusted.append(False)
            # a copy of a small packet (a flood's SYN) is one object the GC need not track; no copy of up to 64 KB
            out.append(raw[VNET_HDR.size:] if len(raw) <= SMALL else memoryview(raw)[VNET_HDR.size:])
        return out, trusted

    def write(self, packet: bytes, gso_size: int = 0, checksum_partial: bool = False) -> None:
        """Send one IP packet. With offloads: checksum_partial means only the pseudo-header is summed
        (the kernel finishes it); gso_size > 0 asks the kernel to cut the segment at that size."""
        if not self.vnet:
            os.write(self.fd, packet)
            return
        if gso_size or checksum_partial:
            v4 = packet[0] >> 4 == 4
            ip_len = (packet[0] & 0x0F) * 4 if v4 else 40
            offset = packet[ip_len + 12]  # the TCP data offset byte
            if gso_size:
                header = VNET_HDR.pack(NEEDS_CSUM, GSO_TCPV4 if v4 else GSO_TCPV6, ip_len + (offset >> 4) * 4,
                                       gso_size, ip_len, 16)
            else:  # (every SYN,ACK and ACK: one of a few headers, made once)
                key = (ip_len << 8) | offset
                header = _CSUM_HEADERS.get(key) or _csum_header(key, ip_len, (offset >> 4) * 4)
        else:
            header = _NO_OFFLOAD
        os.writev(self.fd, (header, packet))


_NO_OFFLOAD = bytes(VNET_HDR.size)
_CSUM_HEADERS: dict[int, bytes] = {}  # (IP header length, TCP offset byte) -> header (at most 11 x 256)


def _csum_header(key: int, ip_len: int, tcp_len: int) -> bytes:
    header = _CSUM_HEADERS[key] = VNET_HDR.pack(NEEDS_CSUM, GSO_NONE, ip_len + tcp_len, 0, ip_len, 16)
    return header


def attach_steering(fd: int, ephemeral: range, lanes: bool = False) -> str | None:
    """Load the steering program and attach it to the TUN device of queue descriptor `fd` (the
    device holds it from then on: our descriptor of it is closed here). None, or why it failed."""
    try:
        prog = steering.load(ephemeral, lanes)
    except OSError as e:
        return str(e)
    try:
        fcntl.ioctl(fd, TUNSETSTEERINGEBPF, struct.pack("i", prog))
    except OSError as e:
        return f"TUNSETSTEERINGEBPF refused: {os.strerror(e.errno or 0)}"
    finally:
        os.close(prog)
    return None


def alias(name: str) -> str:
    try:
        with open(f"/sys/class/net/{name}/ifalias") as f:
            return f.read().strip()
    except OSError:
        return ""


IFNAMSIZ = 16  # Linux's interface names: at most 15 bytes (and a NUL)


def check_name(name: str) -> None:
    """A name Linux takes for a device, or a TunError that says why not."""
    size = len(name.encode())
    if not name or size >= IFNAMSIZ:
        raise TunError(errno.EINVAL, f"device name {name!r} is {size} bytes: Linux allows 1 to {IFNAMSIZ - 1}")
    if "/" in name or any(c.isspace() for c in name) or name in (".", ".."):
        raise TunError(errno.EINVAL, f"device name {name!r}: no '/', no spaces, not . or ..")


def _attach(name: str, flags: int, existing: bool) -> int:
    """Open /dev/net/tun and create or attach to device `name`, with errors that say what to do."""
    check_name(name)
    if not os.path.exists("/dev/net/tun"):
        raise TunError(errno.ENOENT, "/dev/net/tun does not exist (load the tun module: modprobe tun)")
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    except PermissionError as e:
        raise TunError(errno.EACCES, "no rights to open /dev/net/tun (it should be mode 0666)") from e
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
    except OSError as e:
        os.close(fd)
        if e.errno == errno.EPERM and existing:
            raise TunError(errno.EPERM, f"TUN device {name} exists but is not yours: as root, "
                                        f"`tcpwave tun add {name} --user USER` makes one a user may attach to") from e
        if e.errno == errno.EPERM:
            raise TunError(errno.EPERM, "creating a TUN device needs CAP_NET_ADMIN: run as root, or have root "
                                        f"make one for you once (`sudo tcpwave tun add {name} --user $USER`)") from e
        if e.errno == errno.EBUSY:
            raise TunError(errno.EBUSY, _in_use(name, holders(name))) from e
        if e.errno == errno.EINVAL and existing and (tun_flags := _tun_flags(name)) is not None:
            if others := holders(name):  # (asked with other flags than its holder's: one queue, say)
                raise TunError(errno.EBUSY, _in_use(name, others)) from e
            if flags & IFF_MULTI_QUEUE and not tun_flags & IFF_MULTI_QUEUE:
                raise TunError(errno.EINVAL, f"{name} is a single-queue TUN device: several workers need a "
                                             f"multi-queue one (as root: tcpwave tun del {name}; tcpwave tun add "
                                             f"{name} --user USER --queues N), or serve with one worker") from e
            raise TunError(errno.EINVAL, f"TUN device {name} exists with other settings (queues, offloads) "
                                         "than asked (pick another name with --tun)") from e
        if e.errno == errno.EINVAL and existing:
            raise TunError(errno.EINVAL, f"{name} exists and is not a TUN device (pick another name with --tun)") from e
        raise
    return fd


def _tun_flags(name: str) -> int | None:
    """A TUN/TAP device's flags (IFF_*) as sysfs shows them, or None when `name` is no such device."""
    try:
        with open(f"/sys/class/net/{name}/tun_flags") as f:
            return int(f.read(), 16)
    except (OSError, ValueError):
        return None


def holders(name: str) -> list[int]:
    """The processes of this network namespace (other than this one) with a queue of TUN device `name`
    open, as the kernel lists them (/proc/PID/fdinfo: "iff: NAME"). Only those we may look at: all of
    them for root, our own otherwise."""
    me = os.getpid()
    try:
        ns = os.stat("/proc/self/ns/net")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            theirs = os.stat(f"/proc/{entry}/ns/net")
            if (theirs.st_dev, theirs.st_ino) != (ns.st_dev, ns.st_ino):
                continue
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}") != "/dev/net/tun":
                    continue
                with open(f"/proc/{entry}/fdinfo/{fd}") as f:
                    if f"iff:\t{name}\n" in f.read():
                        found.append(int(entry))
                        break
        except OSError:  # (gone meanwhile, or not ours to look at)
            continue
    return found


def _refuse_if_in_use(name: str) -> None:
    """An existing device may be attached to only if nobody has it: a persistent one (`tcpwave tun
    add`) that no process holds. A multi-queue device would otherwise take us as one more queue and
    hand us part of another server's flows."""
    others = holders(name)
    persistent = bool((_tun_flags(name) or 0) & IFF_PERSIST)
    if others or not persistent:  # (a device nobody persists exists only while someone holds it)
        raise TunError(errno.EBUSY, _in_use(name, others))


def _in_use(name: str, pids: list[int]) -> str:
    if not pids:
        return f"TUN device {name} is in use by another process (pick another name with --tun)"
    owners = ", ".join(f"pid {pid} ({_command(pid)})" for pid in pids[:4]) + (", ..." if len(pids) > 4 else "")
    return f"TUN device {name} is in use by {owners} (stop it, or pick another name with --tun)"


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().split(b"\0")
    except OSError:
        return "?"
    text = " ".join(w.decode(errors="replace") for w in words if w)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= 80 else text[:77] + "..."


def configure(name: str, iface, mtu: int) -> None:
    """The kernel side of the device: its address, the MTU, the queue length, up (needs CAP_NET_ADMIN)."""
    family = "-6" if iface.version == 6 else "-4"
    cmds = [["ip", family, "addr", "add", str(iface), "dev", name] + (["nodad"] if iface.version == 6 else []),
            ["ip", "link", "set", name, "mtu", str(mtu), "txqueuelen", str(TXQUEUELEN), "up"]]
    for cmd in cmds:
        subprocess.run(cmd, check=True, capture_output=True)


def interface_address(name: str) -> str | None:
    """A device's IPv4 address as 'address/prefix', or None (asks the kernel; no privileges needed)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("256s", name.encode()[:15])
        try:
            addr = fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)[20:24]
            mask = fcntl.ioctl(s.fileno(), SIOCGIFNETMASK, req)[20:24]
        except OSError:
            return None
    prefix = bin(int.from_bytes(mask, "big")).count("1")
    return f"{socket.inet_ntoa(addr)}/{prefix}"


def add_persistent(name: str, uid: int, gid: int | None, kernel: str, mtu: int = 1500,
                   multi_queue: bool = False, steer: range | None = None, lanes: bool = False) -> str | None:
    """`tcpwave tun add`: a persistent TUN device that user `uid` (or group `gid`) may attach to
    without privileges, with its kernel side configured; multi-queue for `serve --workers`, and with
    `steer` (the stack's ephemeral ports) steered by port, the program attached here staying with the
    device (with `lanes`, a lane for SYNs beside each queue: the alias says so, and serve then
    attaches its queues in pairs). Needs CAP_NET_ADMIN. Returns why steering failed, or None."""
    iface = ipaddress.ip_interface(kernel)
    check_name(name)
    if os.path.exists(f"/sys/class/net/{name}"):
        raise TunError(errno.EEXIST, f"a device {name} exists already")
    fd = _attach(name, IFF_TUN | IFF_NO_PI | (IFF_MULTI_QUEUE if multi_queue else 0), False)
    failed = None
    try:
        fcntl.ioctl(fd, TUNSETOWNER, uid)
        if gid is not None:
            fcntl.ioctl(fd, TUNSETGROUP, gid)
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
        if steer is not None:
            failed = attach_steering(fd, steer, lanes)
    finally:
        os.close(fd)
    try:
        configure(name, iface, mtu)
        if steer is not None and failed is None:
            subprocess.run(["ip", "link", "set", name, "alias", LANES_ALIAS if lanes else STEERED_ALIAS], check=True,
                           capture_output=True)
    except subprocess.CalledProcessError as e:
        delete_persistent(name)
        raise TunError(errno.EINVAL, f"configuring {name} failed: {e.stderr.decode(errors='replace').strip()}") from e
    return failed


def delete_persistent(name: str) -> None:
    """`tcpwave tun del`: remove a persistent TUN device. Needs CAP_NET_ADMIN (or to own it)."""
    check_name(name)
    if not os.path.exists(f"/sys/class/net/{name}"):
        raise TunError(errno.ENOENT, f"no device {name}")
    flags = _tun_flags(name) or 0
    fd = _attach(name, IFF_TUN | IFF_NO_PI | (flags & IFF_MULTI_QUEUE), True)
    try:
        fcntl.ioctl(fd, TUNSETPERSIST, 0)
    finally:
        os.close(fd)  # the last descriptor of a device no longer persistent: it goes


def run(stack, device: TunDevice, on_events, until, timeout: float = 30.0) -> bool:
    """Drive `stack` on `device` with the monotonic clock until until() is true or timeout passes.
    on_events(now, [(conn, event), ...]) is the application. Returns until()."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while not until() and time.monotonic() < deadline:
        now = time.monotonic() - t0
        t = stack.next_timer()
        wait = 0.05 if t is None else max(0.0, min(0.05, t - now))
        readable, _, _ = select.select([device], [], [], wait)
        now = time.monotonic() - t0
        if readable:
            packets, trusted = device.read_batch()
            stack.receive_packets(packets, now, trusted)
        stack.handle_timer(now)
        events = stack.events()
        if events:
            on_events(now, events)
        for packet, gso_size, partial in stack.packets_to_send_offload():
            device.write(packet, gso_size, partial)
    return until()
