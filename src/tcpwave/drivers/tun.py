"""A Linux TUN device (IFF_TUN | IFF_NO_PI) and a simple loop that runs a Stack on it.

The device is created in the current network namespace with the kernel-side address; the stack
answers for another address in the same prefix. Needs CAP_NET_ADMIN and /dev/net/tun.
With offload=True the device carries a virtio_net_hdr per packet (IFF_VNET_HDR) and asks for
checksum and TSO offloads (TUNSETOFFLOAD): the kernel then hands us ~64 KB super-segments with only
the pseudo-header summed, and accepts ~64 KB segments that it splits at the MSS we give it. Where the
kernel refuses the offloads the device says so (`offload_error`) and works packet by packet.
"""

import errno
import fcntl
import ipaddress
import os
import select
import struct
import subprocess
import time

TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR = 0x0001, 0x1000, 0x4000
TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 = 0x01, 0x02, 0x04
# struct virtio_net_hdr (legacy, host byte order): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HDR = struct.Struct("<BBHHHH")
NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_TCPV6 = 0, 1, 4


class TunError(OSError):
    pass


class TunDevice:
    def __init__(self, name: str, kernel: str, stack_address: str, mtu: int = 1500, offload: bool = False):
        """kernel: the kernel side as 'address/prefix'; stack_address: the address tcpwave answers for."""
        iface = ipaddress.ip_interface(kernel)
        ours = ipaddress.ip_address(stack_address)
        if ours == iface.ip:
            raise ValueError(f"the stack's address {ours} must differ from the kernel side's {iface.ip}: "
                             "with the same address the kernel answers itself over lo")
        if ours not in iface.network:
            raise ValueError(f"the stack's address {ours} is not in the kernel side's prefix {iface.network}")
        if not os.path.exists("/dev/net/tun"):
            raise TunError(errno.ENOENT, "/dev/net/tun does not exist (load the tun module)")
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if offload else 0)
        try:
            self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", name.encode(), flags))
        except PermissionError as e:
            raise TunError(errno.EPERM, "creating a TUN device needs CAP_NET_ADMIN (run as root)") from e
        self.vnet = offload
        self.offload = False  # checksum + TSO offloads in force
        self.offload_error: str | None = None
        if offload:
            try:
                fcntl.ioctl(self.fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
                self.offload = True
            except OSError as e:  # an old kernel or a restricted one: packet by packet, with the header
                self.offload_error = f"TUNSETOFFLOAD refused: {os.strerror(e.errno or 0)}"
        self.name, self.kernel, self.stack_address, self.mtu = name, iface, ours, mtu
        family = "-6" if iface.version == 6 else "-4"
        cmds = [["ip", family, "addr", "add", str(iface), "dev", name] + (["nodad"] if iface.version == 6 else []),
                ["ip", "link", "set", name, "mtu", str(mtu), "up"]]
        for cmd in cmds:
            subprocess.run(cmd, check=True, capture_output=True)

    def fileno(self) -> int:
        return self.fd

    def read_batch(self, limit: int = 256) -> tuple[list[bytes], list[bool] | None]:
        """Everything queued, up to `limit` packets, without blocking: (packets, trusted). trusted[i]
        is True where the kernel left the TCP checksum partial (it made the packet itself); None when
        no packet is."""
        out = []
        trusted = None
        size = 65536 + VNET_HDR.size
        for _ in range(limit):
            try:
                raw = os.read(self.fd, size)
            except BlockingIOError:
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
            out.append(raw[VNET_HDR.size:])
        return out, trusted

    def write(self, packet: bytes, gso_size: int = 0, checksum_partial: bool = False) -> None:
        """Send one IP packet. With offloads: checksum_partial means only the pseudo-header is summed
        (the kernel finishes it); gso_size > 0 asks the kernel to cut the segment at that size."""
        if not self.vnet:
            os.write(self.fd, packet)
            return
        if checksum_partial or gso_size:
            version = packet[0] >> 4
            ip_len = (packet[0] & 0x0F) * 4 if version == 4 else 40
            tcp_len = (packet[ip_len + 12] >> 4) * 4
            gso_type = (GSO_TCPV4 if version == 4 else GSO_TCPV6) if gso_size else GSO_NONE
            header = VNET_HDR.pack(NEEDS_CSUM, gso_type, ip_len + tcp_len, gso_size, ip_len, 16)
        else:
            header = bytes(VNET_HDR.size)
        os.writev(self.fd, (header, packet))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # a non-persistent TUN device disappears with its last descriptor
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
