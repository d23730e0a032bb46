"""A Linux TUN device (IFF_TUN | IFF_NO_PI) and a simple loop that runs a Stack on it.

The device is created in the current network namespace with the kernel-side address; the stack
answers for another address in the same prefix. Needs CAP_NET_ADMIN and /dev/net/tun.
The asyncio runtime, offloads (IFF_VNET_HDR) and the socket APIs come later; this driver is what
the interop tests use today.
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
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


class TunError(OSError):
    pass


class TunDevice:
    def __init__(self, name: str, kernel: str, stack_address: str, mtu: int = 1500):
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
        try:
            self.fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        except PermissionError as e:
            raise TunError(errno.EPERM, "creating a TUN device needs CAP_NET_ADMIN (run as root)") from e
        self.name, self.kernel, self.stack_address, self.mtu = name, iface, ours, mtu
        family = "-6" if iface.version == 6 else "-4"
        cmds = [["ip", family, "addr", "add", str(iface), "dev", name] + (["nodad"] if iface.version == 6 else []),
                ["ip", "link", "set", name, "mtu", str(mtu), "up"]]
        for cmd in cmds:
            subprocess.run(cmd, check=True, capture_output=True)

    def fileno(self) -> int:
        return self.fd

    def read_batch(self, limit: int = 256) -> list[bytes]:
        """Everything queued, up to `limit` packets, without blocking."""
        out = []
        for _ in range(limit):
            try:
                out.append(os.read(self.fd, 65536))
            except BlockingIOError:
                break
        return out

    def write(self, packet: bytes) -> None:
        os.write(self.fd, packet)

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
            stack.receive_packets(device.read_batch(), now)
        stack.handle_timer(now)
        events = stack.events()
        if events:
            on_events(now, events)
        for packet in stack.packets_to_send():
            device.write(packet)
    return until()
