"""An in-memory network of tcpwave stacks for testing asyncio applications: every host is a Stack on
one virtual-clock event loop, joined through a hub whose links lose, delay, reorder, duplicate and
rate-limit packets from one seed, and which can be partitioned and healed.

    net = Network(seed=7, loss=0.01)
    server, client = net.host("192.0.2.1"), net.host("192.0.2.2")

    async def main():                      # the application's own code, unedited:
        srv = await asyncio.start_server(handle, "192.0.2.1", 7)
        reader, writer = await asyncio.open_connection("192.0.2.1", 7)
        ...

    net.run(main())
    net.write_pcap("run.pcap")   # every packet a host put on the wire, lost ones included

The loop is tcpwave.aio.loop's TcpwaveLoop on a virtual clock: asyncio.open_connection,
start_server and loop.create_connection/create_server (and libraries built on them) go through
the host that owns or reaches the address, so an application runs on the network unedited; each
Host also has them bound to itself (`client.open_connection(...)`), to choose the side explicitly
when there are more than two hosts. The same seed and the same program give the same packets at
the same virtual times, so a failure seen once is replayed by running it again with its seed.
"""

import asyncio
import collections
import dataclasses
import ipaddress
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..aio.loop import Host as LoopHost
from ..aio.loop import TcpwaveLoop
from ..aio.runtime import Runtime
from ..aio.streams import Server, create_server, open_connection, start_server
from ..core.config import Config
from ..sim.link import Direction, LinkParams
from ..stack import Stack
from ..views.pcap import PcapWriter

T = TypeVar("T")
CAPTURE_MAX = 100_000  # packets kept for write_pcap (the most recent ones)


class Host:
    """One stack on the network, with the asyncio streams and protocol entry points bound to it."""

    def __init__(self, net: "Network", address: str, stack: Stack) -> None:
        self.network, self.address, self.stack = net, address, stack
        self.runtime = Runtime(stack, _HubLink(net, address), loop=net.loop)

    async def open_connection(self, host: str, port: int, *, limit: int = 2**16,
                              local_port: int | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """As asyncio.open_connection, from this host."""
        return await open_connection(host, port, runtime=self.runtime, limit=limit, local_port=local_port)

    async def start_server(self, client_connected_cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
                           host: str | None = None, port: int = 0, *, backlog: int | None = None,
                           limit: int = 2**16) -> Server:
        """As asyncio.start_server, on this host."""
        return await start_server(client_connected_cb, host, port, runtime=self.runtime, backlog=backlog, limit=limit)

    async def create_server(self, protocol_factory: Callable[[], asyncio.BaseProtocol], host: str | None = None,
                            port: int = 0, *, backlog: int | None = None) -> Server:
        """As loop.create_server, on this host."""
        return await create_server(protocol_factory, host, port, runtime=self.runtime, backlog=backlog)


class _HubLink:
    """A host's port on the hub (the link interface a Runtime drives)."""

    def __init__(self, net: "Network", address: str) -> None:
        self.net, self.address = net, address
        self.callback: Callable[..., None] | None = None

    def attach(self, callback: Callable[..., None]) -> None:
        self.callback = callback

    def detach(self) -> None:
        self.callback = None

    def send(self, packet: bytes, gso_size: int = 0, partial: bool = False) -> None:
        self.net._send(self.address, packet)


class Network:
    """Hosts on one virtual-clock loop joined by seeded, impaired links (the same for every pair of
    hosts; `link()` sets one direction differently). `delay` is one way, in seconds; `rate` in bit/s
    (0: unlimited); `loss`, `reorder`, `duplicate` are probabilities per packet."""

    def __init__(self, seed: int = 0, *, loss: float = 0.0, delay: float = 0.005, reorder: float = 0.0,
                 rate: float = 0.0, duplicate: float = 0.0, config: Config | None = None) -> None:
        self.seed = seed
        self.loop = TcpwaveLoop(lambda loop: [], virtual_time=True)
        self.params = LinkParams(latency=delay, bandwidth=rate, loss=loss, reorder=reorder, duplicate=duplicate,
                                 queue_bytes=1 << 30 if not rate else 256 * 1024)
        self.config = config
        self.hosts: dict[str, Host] = {}
        self.captured: collections.deque[tuple[float, bytes]] = collections.deque(maxlen=CAPTURE_MAX)
        self.stats = collections.Counter[str]()
        self._directions: dict[tuple[str, str], Direction] = {}
        self._params: dict[tuple[str, str], LinkParams] = {}
        self._cut: set[frozenset[str]] = set()

    def host(self, address: str, *, config: Config | None = None, **stack_options: Any) -> Host:
        """Add a host with this address (its stack seeded from the network's seed and its address)."""
        address = str(ipaddress.ip_address(address))
        if address in self.hosts:
            raise ValueError(f"{address} is already on the network")
        seed = random.Random(f"{self.seed}/host/{address}").getrandbits(32)
        stack = Stack([address], config=config or self.config, seed=seed, host=address, **stack_options)
        self.hosts[address] = host = Host(self, address, stack)
        # asyncio's own calls on the loop reach every host through the hub
        self.loop.hosts.append(LoopHost(host.runtime, []))
        routes = [ipaddress.ip_network(a) for a in self.hosts]
        for h in self.loop.hosts:
            h.routes = routes
        return host

    def link(self, src: str, dst: str, **params: Any) -> None:
        """Set the link from src to dst apart from the others: loss=, delay=, reorder=, rate=, duplicate=."""
        names = {"delay": "latency", "rate": "bandwidth"}
        current = self._params.get((src, dst), self.params)
        fields = {names.get(k, k): v for k, v in params.items()}
        self._params[(src, dst)] = dataclasses.replace(current, **fields)
        self._directions.pop((src, dst), None)

    def partition(self, a: str, b: str) -> None:
        """Cut the links between a and b, both ways: every packet between them is dropped until heal()."""
        self._cut.add(frozenset((a, b)))

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Restore the links between a and b (or every cut link)."""
        if a is None:
            self._cut.clear()
        else:
            self._cut.discard(frozenset((a, b or a)))

    def run(self, main: Awaitable[T], timeout: float | None = 600.0) -> T:
        """Run a coroutine on the network's loop to the end (at most `timeout` virtual seconds)."""
        async def bounded() -> T:
            return await asyncio.wait_for(main, timeout)

        return self.loop.run_until_complete(bounded())

    def now(self) -> float:
        return self.loop.time()

    def write_pcap(self, path: str) -> int:
        """Write the packets the hosts put on the wire (lost ones included; the last CAPTURE_MAX) as a
        pcap, timestamped on the virtual clock. Returns how many."""
        with open(path, "wb") as f:
            writer = PcapWriter(f)
            for t, packet in self.captured:
                writer.write(t, packet)
        return len(self.captured)

    def close(self) -> None:
        """Stop every host and close the loop (tasks still pending are cancelled)."""
        if self.loop.is_closed():
            return
        for host in self.hosts.values():  # connections still open are reset: their handlers see it and end
            host.runtime.shut_down(abort=True)
        self.loop.run_until_complete(asyncio.sleep(0.001))
        for host in self.hosts.values():
            host.runtime.close()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    # ---- the hub
    def _direction(self, src: str, dst: str) -> Direction:
        d = self._directions.get((src, dst))
        if d is None:
            rng = random.Random(f"{self.seed}/link/{src}>{dst}")
            d = self._directions[(src, dst)] = Direction(self._params.get((src, dst), self.params), rng)
        return d

    def _send(self, src: str, packet: bytes) -> None:
        now = self.loop.time()
        self.captured.append((now, packet))
        self.stats["sent"] += 1
        dst = _destination(packet)
        host = self.hosts.get(dst) if dst is not None else None
        if host is None or dst is None:
            self.stats["unroutable"] += 1
            return
        if frozenset((src, dst)) in self._cut:
            self.stats["partitioned"] += 1
            return
        direction = self._direction(src, dst)
        fate, arrival = direction.schedule(now, len(packet))
        if fate != "ok" or arrival is None:
            self.stats[fate] += 1
            return
        self.loop.call_at(arrival, _deliver, host, packet)
        if direction.maybe_duplicate():
            self.stats["duplicated"] += 1
            self.loop.call_at(arrival + 1e-6, _deliver, host, packet)


def _deliver(host: Host, packet: bytes) -> None:
    link = host.runtime.link
    if link.callback is not None:
        link.callback([packet])


def _destination(packet: bytes) -> str | None:
    version = packet[0] >> 4 if packet else 0
    if version == 4 and len(packet) >= 20:
        return str(ipaddress.IPv4Address(packet[16:20]))
    if version == 6 and len(packet) >= 40:
        return str(ipaddress.IPv6Address(packet[24:40]))
    return None


__all__ = ["CAPTURE_MAX", "Host", "Network"]
