"""An asyncio event loop whose TCP goes through tcpwave for the addresses it owns, so that an asyncio
program (aiohttp, websockets, h11 over asyncio streams, ...) runs on tcpwave unedited:

    net = MemoryNetwork(["192.0.2.1", "192.0.2.2"], loss=0.01, seed=7)
    with asyncio.Runner(loop_factory=net.loop_factory) as runner:   # (3.12+: asyncio.run(main(), loop_factory=...))
        runner.run(main())

loop.create_connection / create_server (and so asyncio.open_connection / start_server, and every
library built on them) use a tcpwave stack when the address is one the network owns (a host of a
memory network, a TUN device's subnet), and the normal kernel sockets otherwise. A kernel socket
connected with loop.sock_connect to such an address (aiohttp's happy eyeballs does that) is taken
over the same way when it is handed to create_connection(sock=...).
"""

import asyncio
import ipaddress
import selectors
import socket
import weakref
from collections.abc import Callable, Iterable

from . import streams
from .runtime import Runtime, TunLink


class Host:
    """One tcpwave stack on the loop, with the destinations it reaches (its routes)."""

    def __init__(self, runtime: Runtime, routes: Iterable[str]):
        self.runtime = runtime
        self.addresses = {ipaddress.ip_address(a) for a in runtime.stack.addresses}
        self.routes = [ipaddress.ip_network(r, strict=False) for r in routes]

    def reaches(self, addr) -> bool:
        return addr not in self.addresses and any(addr in net for net in self.routes)


class TcpwaveLoop(asyncio.SelectorEventLoop):
    """`hosts(loop)` makes the stacks (their runtimes) once the loop exists. With virtual_time, the
    clock jumps to the next timer whenever nothing is ready: a run over a memory network then takes
    no wall time for its delays and timeouts, and the same seed gives the same packets at the same
    times. `names`: host names the loop resolves itself (as /etc/hosts would), to addresses."""

    def __init__(self, hosts: Callable[["TcpwaveLoop"], list[Host]], *, virtual_time: bool = False,
                 names: dict[str, str] | None = None):
        super().__init__()
        self._virtual: float | None = None
        self._threads = 0  # run_in_executor() calls not yet done
        if virtual_time:
            self._virtual = 0.0
            self._selector = _VirtualSelector(self._selector, self)  # type: ignore[has-type,arg-type,assignment]
        self.names = dict(names or {})
        self.hosts = hosts(self)
        self._taken: weakref.WeakKeyDictionary[socket.socket, tuple] = weakref.WeakKeyDictionary()

    def time(self) -> float:
        return super().time() if self._virtual is None else self._virtual

    def run_in_executor(self, executor, func, *args):
        """(With virtual time, the clock stands still while a thread works for the loop: the work
        takes no virtual time, so a file read by sendfile's fallback does not fire timers early.)"""
        future = super().run_in_executor(executor, func, *args)
        self._threads += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _) -> None:
        self._threads -= 1

    # ---- which stack, if any
    def _address(self, host):
        if host is None:
            return None
        host = self.names.get(host, host)
        try:
            return ipaddress.ip_address(host)
        except (ValueError, TypeError):
            return None

    def _owner(self, host) -> Host | None:
        addr = self._address(host)
        return next((h for h in self.hosts if addr in h.addresses), None)

    def _via(self, host, local_addr=None) -> Host | None:
        addr = self._address(host)
        if addr is None:
            return None
        if local_addr is not None:
            owner = self._owner(local_addr[0])
            return owner if owner is not None and owner.reaches(addr) else None
        return next((h for h in self.hosts if h.reaches(addr)), None)

    # ---- the loop's TCP methods
    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        addr = self._address(host)
        if addr is not None and (self._owner(str(addr)) or self._via(str(addr))):
            fam = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
            if family in (0, fam):  # answered here, at once: no resolver thread for the network's names
                sockaddr = (str(addr), port) if addr.version == 4 else (str(addr), port, 0, 0)
                return [(fam, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]
        return await super().getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)

    async def _tcpwave_address(self, host, port):
        """The address a host name stands for, when tcpwave owns or reaches it: the loop's names
        first, then the system's resolver (/etc/hosts, DNS), as asyncio would resolve it."""
        if host is None or not isinstance(host, str) or self._address(host) is not None:
            return self.names.get(host, host)
        try:
            infos = await self.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            return host  # (the kernel's path reports it, as asyncio would)
        for info in infos:
            if self._owner(info[4][0]) or self._via(info[4][0]):
                return info[4][0]
        return host

    async def create_connection(self, protocol_factory, host=None, port=None, *, ssl=None, sock=None,  # type: ignore[override]
                                local_addr=None, server_hostname=None, ssl_handshake_timeout=None,
                                ssl_shutdown_timeout=None, **kwds):
        if sock is not None and sock in self._taken:
            return await self._adopt(sock, protocol_factory, ssl, server_hostname, ssl_handshake_timeout,
                                     ssl_shutdown_timeout)
        address = await self._tcpwave_address(host, port) if sock is None else None
        via = self._via(address, local_addr) if address is not None else None
        if via is None:
            return await super().create_connection(protocol_factory, host, port, ssl=ssl, sock=sock,
                                                   local_addr=local_addr, server_hostname=server_hostname,
                                                   ssl_handshake_timeout=ssl_handshake_timeout,
                                                   ssl_shutdown_timeout=ssl_shutdown_timeout, **kwds)
        if ssl and server_hostname is None:
            server_hostname = host  # the name asked for, not the address it resolved to
        return await streams.create_connection(
            protocol_factory, address, port, runtime=via.runtime, ssl=ssl,
            server_hostname=server_hostname, local_addr=local_addr, ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout)

    async def create_server(self, protocol_factory, host=None, port=None, *, sock=None,  # type: ignore[override]
                            **kwds):
        hosts = [host] if isinstance(host, str) or host is None else list(host)
        one = hosts[0] if hosts else None
        if len(hosts) > 1 and any(self._owner(h) for h in hosts):
            raise ValueError("a tcpwave listener has one address: pass one host of the network")
        address = await self._tcpwave_address(one, port) if sock is None and one is not None else None
        owner = self._owner(address) if address is not None else None
        if owner is None:
            return await super().create_server(protocol_factory, host, port, sock=sock, **kwds)
        kwds.pop("family", None), kwds.pop("flags", None)
        return await streams.create_server(protocol_factory, address, port or 0, runtime=owner.runtime, **kwds)

    async def sock_connect(self, sock, address):
        """A kernel socket connecting to an address a tcpwave stack reaches: tcpwave makes the
        connection; create_connection(sock=sock) then hands its transport to the protocol."""
        via = self._via(address[0]) if sock.type == socket.SOCK_STREAM else None
        if via is None:
            return await super().sock_connect(sock, address)
        transport, _ = await streams.create_connection(_Parked, address[0], address[1], runtime=via.runtime)
        # a socket let go without create_connection(sock=) (a happy-eyeballs loser, say) resets its connection
        self._taken[sock] = (transport, weakref.finalize(sock, transport.abort))

    async def _adopt(self, sock, protocol_factory, ssl, server_hostname, handshake_timeout, shutdown_timeout):
        transport, finalizer = self._taken.pop(sock)
        finalizer.detach()
        sock.close()  # (never connected: it stood for the tcpwave connection)
        protocol = protocol_factory()
        if not ssl:
            transport.set_protocol(protocol)
            protocol.connection_made(transport)
            transport.resume_reading()
            return transport, protocol
        ssl_transport = await self.start_tls(transport, protocol, None if ssl is True else ssl,
                                             server_hostname=server_hostname, ssl_handshake_timeout=handshake_timeout,
                                             ssl_shutdown_timeout=shutdown_timeout)
        protocol.connection_made(ssl_transport)
        return ssl_transport, protocol

    def close(self) -> None:
        """Connections still open are reset (their peers hear it at once: no stack is left to finish
        a close), then the stacks stop."""
        if not self.is_closed():
            for host in self.hosts:
                host.runtime.shut_down(abort=True)
                host.runtime.close()
        super().close()


class _Parked(asyncio.Protocol):
    """Holds a connection made for sock_connect until create_connection(sock=) gives it its protocol:
    reading stays paused, so what the peer sends waits in the connection."""

    def connection_made(self, transport) -> None:
        transport.pause_reading()


class _VirtualSelector:
    """The loop's selector, except that a wait with nothing ready moves the virtual clock to the
    next timer instead of sleeping. A wait with no timer at all, or while a thread works for the
    loop, waits for real (up to the timer's delay, which then passes on the virtual clock)."""

    def __init__(self, selector: selectors.BaseSelector, loop: TcpwaveLoop):
        self._selector, self._loop = selector, loop

    def select(self, timeout=None):
        ready = self._selector.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None or self._loop._threads:
            ready = self._selector.select(timeout)  # a real wait: for a thread, or for real I/O
            if ready or timeout is None:
                return ready
        self._loop._virtual += timeout  # type: ignore[operator]
        return []

    def __getattr__(self, name):
        return getattr(self._selector, name)


class MemoryNetwork:
    """Hosts (one tcpwave stack per address) joined by an in-memory switch: each packet takes `delay`
    seconds and is lost with probability `loss`, drawn from a generator seeded with `seed`. With
    virtual time (the default) a run is replayable: same seed, same packets, same times.
    `tap(t, packet)` sees every packet delivered (a PcapWriter, say)."""

    def __init__(self, addresses: Iterable[str] = ("192.0.2.1", "192.0.2.2"), *, loss: float = 0.0,
                 delay: float = 0.001, seed: int = 0, config=None, names: dict[str, str] | None = None,
                 tap: Callable[[float, bytes], None] | None = None, virtual_time: bool = True):
        self.addresses = list(addresses)
        self.loss, self.delay, self.seed, self.config = loss, delay, seed, config
        self.names, self.tap, self.virtual_time = names, tap, virtual_time
        self.switch: Switch | None = None  # the last loop's, for its counts

    def loop_factory(self) -> TcpwaveLoop:
        return TcpwaveLoop(self._hosts, virtual_time=self.virtual_time, names=self.names)

    def _hosts(self, loop: TcpwaveLoop) -> list[Host]:
        from ..stack import Stack

        self.switch = switch = Switch(loop, self.loss, self.delay, self.seed, self.tap)
        routes = [f"{a}/{32 if ':' not in a else 128}" for a in self.addresses]
        return [Host(Runtime(Stack([a], config=self.config, seed=self.seed * 1000 + i), switch.port(a), loop),
                     routes) for i, a in enumerate(self.addresses)]


class Switch:
    """Delivers each packet to the port of its destination address (IPv4 or IPv6 header)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, loss: float, delay: float, seed: int, tap=None):
        import random

        self.loop, self.loss, self.delay, self.tap = loop, loss, delay, tap
        self.rng = random.Random(seed)
        self.ports: dict = {}
        self.sent = self.dropped = 0

    def port(self, address: str) -> "SwitchPort":
        port = SwitchPort(self)
        self.ports[ipaddress.ip_address(address).packed] = port
        return port

    def send(self, packet: bytes) -> None:
        self.sent += 1
        if self.loss and self.rng.random() < self.loss:
            self.dropped += 1
            return
        dst = packet[16:20] if packet[0] >> 4 == 4 else packet[24:40]
        port = self.ports.get(bytes(dst))
        if port is not None:
            self.loop.call_later(self.delay, self._deliver, port, bytes(packet))

    def _deliver(self, port: "SwitchPort", packet: bytes) -> None:
        if self.tap is not None:
            self.tap(self.loop.time(), packet)
        if port.callback is not None:
            port.callback([packet])


class SwitchPort:
    """A host's link to the switch (attach/detach/send, as the runtime's links)."""

    def __init__(self, switch: Switch):
        self.switch = switch
        self.callback = None

    def attach(self, callback) -> None:
        self.callback = callback

    def detach(self) -> None:
        self.callback = None

    def send(self, packet: bytes, gso_size: int = 0, partial: bool = False) -> None:
        self.switch.send(packet)


class TunNetwork:
    """A tcpwave stack on a TUN device (drivers/tun.TunDevice, opened by the caller), reaching
    `routes` (by default the device's subnet: the kernel and what it routes there)."""

    def __init__(self, device, address: str, routes: Iterable[str], *, config=None, seed: int | None = None,
                 names: dict[str, str] | None = None):
        self.device, self.address, self.routes = device, address, list(routes)
        self.config, self.seed, self.names = config, seed, names

    def loop_factory(self) -> TcpwaveLoop:
        return TcpwaveLoop(self._hosts, names=self.names)

    def _hosts(self, loop: TcpwaveLoop) -> list[Host]:
        from ..drivers.tun import SEGMENT_MAX
        from ..stack import Stack

        offload = getattr(self.device, "offload", False)  # the offloads `tcpwave serve` uses, when the device has them
        stack = Stack([self.address], config=self.config, seed=self.seed, checksum_offload=offload,
                      segment_max=SEGMENT_MAX if offload else 0)
        return [Host(Runtime(stack, TunLink(self.device, loop), loop), self.routes)]
