"""A blocking, socket-like API for scripts, on a tcpwave stack running in a background thread.

    net = Network.memory_pair()[0]            # or Network.on_tun("tw0", "192.0.2.1/24", "192.0.2.2")
    with net.socket() as s:
        s.settimeout(5)
        s.connect(("192.0.2.2", 7))
        s.sendall(b"hello")
        s.shutdown(socket.SHUT_WR)
        print(s.recv(100))

Each call runs on the network's event loop (the asyncio streams API underneath) and waits for it;
settimeout() bounds that wait with TimeoutError, as socket.settimeout does.
"""

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ..stack import Stack
from .runtime import MemoryLink, Runtime, TunLink
from .tcpsocket import TcpSocket

__all__ = ["Network", "TcpSocket", "create_connection"]


class Network:
    """One stack on one link, driven by an event loop in a daemon thread."""

    runtime: Runtime

    def __init__(self, make_link: Callable[["Network"], Any], addresses: str | list[str], **stack_options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcpwave-network", daemon=True)
        self._thread.start()
        self._device: Any = None

        async def setup() -> None:
            link = make_link(self)
            self.runtime = Runtime(Stack(addresses, **stack_options), link)

        self.call(setup(), None)

    @classmethod
    def memory_pair(cls, a: str = "192.0.2.1", b: str = "192.0.2.2", delay: float = 0.001,
                    **stack_options: Any) -> tuple["Network", "Network"]:
        """Two networks joined by an in-memory link (each with its own loop thread). With a tracer, each
        side's events carry its own address as `host` (unless `host` is given), so a trace can tell
        them apart."""
        first = cls(lambda net: MemoryLink(net._loop, delay), [a], **{"host": a, **stack_options})
        second = cls(lambda net: MemoryLink(net._loop, delay), [b], **{"host": b, **stack_options})
        MemoryLink.join(first.runtime.link, second.runtime.link)
        return first, second

    @classmethod
    def on_tun(cls, name: str, kernel: str, address: str, **stack_options: Any) -> "Network":
        """A stack on a new TUN device in the current network namespace (needs root), with the offloads
        `tcpwave serve` uses (checksums left to the kernel, ~64 KB super-segments) when the kernel
        grants them."""
        from ..drivers.tun import SEGMENT_MAX, TunDevice

        device = TunDevice(name, kernel, address, offload=True)
        stack_options.setdefault("checksum_offload", device.offload)
        stack_options.setdefault("segment_max", SEGMENT_MAX if device.offload else 0)
        try:
            net = cls(lambda net: TunLink(device), [address], **stack_options)
        except BaseException:
            device.close()
            raise
        net._device = device
        return net

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float | None) -> Any:
        """Run coro on the network's loop and wait for it (at most `timeout` seconds)."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError("timed out") from None

    def socket(self) -> TcpSocket:
        return TcpSocket(self)

    def create_connection(self, address: tuple, timeout: float | None = None,
                          source_address: tuple | None = None) -> TcpSocket:
        """As socket.create_connection, from this network's stack."""
        return create_connection(address, timeout, source_address, network=self)

    def close(self) -> None:
        async def stop() -> None:
            self.runtime.close()

        self.call(stop(), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if self._device is not None:
            self._device.close()


def create_connection(address: tuple, timeout: float | None = None, source_address: tuple | None = None, *,
                      network: Network) -> TcpSocket:
    """As socket.create_connection, on a tcpwave Network: a connected TcpSocket."""
    sock = network.socket()
    try:
        sock.settimeout(timeout)
        if source_address:
            sock.bind(source_address)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock
