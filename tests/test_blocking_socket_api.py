"""The blocking API's socket-module surface (issue 26, build 4), each compared with a kernel socket on
Linux loopback where the behaviour should match: setsockopt/getsockopt (TCP_INFO as Linux's struct),
makefile, recv_into, connect_ex, non-blocking connect and I/O through `selectors` on fileno(),
create_connection, and close() from another thread waking blocked calls."""

import errno
import selectors
import socket
import threading

import pytest
import test_blocking_socket
from test_blocking_stdlib_parity import connected

from tcpwave.aio.blocking import create_connection
from tcpwave.core.sockopts import TCP_INFO, unpack_tcp_info

nets = test_blocking_socket.nets  # the fixture: two networks on a memory link
SERVER = "192.0.2.2"
TCP = socket.IPPROTO_TCP


tcpwave_pair = connected  # (client, listening, accepted) on tcpwave


def kernel_pair():
    """(client, listening, accepted) on Linux loopback."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    s = socket.create_connection(srv.getsockname(), timeout=20)
    conn, _ = srv.accept()
    conn.settimeout(20)
    return s, srv, conn


@pytest.fixture
def both(nets):
    pairs = {"tcpwave": tcpwave_pair(nets), "kernel": kernel_pair()}
    yield pairs
    for trio in pairs.values():
        for sock in trio:
            sock.close()


OPTIONS = [(TCP, socket.TCP_NODELAY, 1), (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
           (TCP, socket.TCP_KEEPIDLE, 17), (TCP, socket.TCP_KEEPINTVL, 3), (TCP, socket.TCP_KEEPCNT, 4),
           (TCP, socket.TCP_USER_TIMEOUT, 2500), (socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)]


@pytest.mark.parametrize("level, name, value", OPTIONS,
                         ids=["TCP_NODELAY", "SO_KEEPALIVE", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT",
                              "TCP_USER_TIMEOUT", "SO_REUSEADDR"])
def test_options_read_back_as_on_linux(both, level, name, value):
    seen = {}
    for kind, (s, _, _) in both.items():
        before = s.getsockopt(level, name)
        s.setsockopt(level, name, value)
        seen[kind] = (before, s.getsockopt(level, name), s.getsockopt(level, name, 4))
    assert seen["tcpwave"] == seen["kernel"]


def test_refused_options_raise_the_same_errors(both):
    for s, _, _ in both.values():
        with pytest.raises(OSError) as bad:
            s.setsockopt(TCP, socket.TCP_KEEPIDLE, 0)
        assert bad.value.errno == errno.EINVAL
        with pytest.raises(OSError) as unknown:
            s.getsockopt(TCP, 9999)
        assert unknown.value.errno == errno.ENOPROTOOPT


def test_so_type_and_so_error_on_a_healthy_connection(both):
    for s, _, _ in both.values():
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def test_tcp_info_is_linuxs_struct(both):
    """The same decoder reads the kernel's bytes and ours: the layout is Linux's."""
    infos = {}
    for kind, (s, _, conn) in both.items():
        s.sendall(b"x" * 5000)
        got = b""
        while len(got) < 5000:
            got += conn.recv(5000)
        data = conn.getsockopt(TCP, socket.TCP_INFO, TCP_INFO.size)
        assert len(data) == TCP_INFO.size
        infos[kind] = unpack_tcp_info(data), unpack_tcp_info(s.getsockopt(TCP, socket.TCP_INFO, TCP_INFO.size))
    for receiver, sender in infos.values():
        assert receiver["tcpi_state"] == sender["tcpi_state"] == 1  # TCP_ESTABLISHED
        assert receiver["tcpi_bytes_received"] == 5000
        assert receiver["tcpi_segs_in"] >= 2 and sender["tcpi_segs_out"] >= 2
        assert sender["tcpi_snd_cwnd"] >= 10 and sender["tcpi_rto"] >= 200_000


def test_linger_zero_close_resets_the_peer(both):
    for s, _, conn in both.values():
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER) == 1
        conn.close()
        with pytest.raises(ConnectionResetError):
            s.recv(10)


def test_makefile_reads_lines_and_outlives_close(both):
    for s, _, conn in both.values():
        writer = conn.makefile("wb")
        writer.write(b"first line\nsecond line\n")
        writer.flush()
        reader = s.makefile("r", encoding="ascii")
        s.close()  # the file keeps the socket open, as socket.makefile's does
        assert reader.readline() == "first line\n"
        assert reader.readline() == "second line\n"
        writer.close()
        conn.close()
        assert reader.read() == ""
        reader.close()


def test_recv_into(both):
    for s, _, conn in both.values():
        conn.sendall(b"abcdef")
        buf = bytearray(10)
        n = 0
        while n < 6:
            n += s.recv_into(memoryview(buf)[n:], 6 - n)
        assert bytes(buf) == b"abcdef\0\0\0\0"
        with pytest.raises(ValueError):
            s.recv_into(buf, -1)


def test_connect_ex_to_a_closed_port_says_econnrefused(nets):
    kernel = socket.socket()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    kernel_says = kernel.connect_ex(("127.0.0.1", port))
    ours = nets[0].socket()
    ours.settimeout(20)
    assert ours.connect_ex((SERVER, 9)) == kernel_says == errno.ECONNREFUSED
    for sock in (kernel, closed, ours):
        sock.close()


def _nonblocking_echo(make_client, listener, address) -> list:
    """A selectors loop: non-blocking connect, wait for writable, SO_ERROR, send, wait for readable."""
    sel = selectors.DefaultSelector()
    sock = make_client()
    sock.setblocking(False)
    steps = [sock.connect_ex(address)]
    sel.register(sock, selectors.EVENT_WRITE)
    steps.append(bool(sel.select(20)))
    steps.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
    sel.modify(sock, selectors.EVENT_READ)
    steps.append(sel.select(0))  # nothing to read yet
    with pytest.raises(BlockingIOError):
        sock.recv(10)
    sel.unregister(sock)
    sel.register(listener, selectors.EVENT_READ)
    steps.append(bool(sel.select(20)))  # the connection waits to be accepted
    sel.unregister(listener)
    conn, _ = listener.accept()
    sel.register(sock, selectors.EVENT_READ)
    conn.sendall(b"ping")
    steps.append(bool(sel.select(20)))
    steps.append(sock.recv(10))
    steps.append(sel.select(0))  # read: not readable any more
    for s in (sock, conn):
        s.close()
    sel.close()
    return steps


def test_non_blocking_connect_and_io_through_selectors(nets):
    kernel_listener = socket.socket()
    kernel_listener.bind(("127.0.0.1", 0))
    kernel_listener.listen()
    kernel = _nonblocking_echo(socket.socket, kernel_listener, kernel_listener.getsockname())
    listener = nets[1].socket()
    listener.bind((SERVER, 80))
    listener.listen()
    ours = _nonblocking_echo(nets[0].socket, listener, (SERVER, 80))
    assert ours == kernel
    assert ours[0] == errno.EINPROGRESS and ours[-2] == b"ping"
    kernel_listener.close()
    listener.close()


def test_close_from_another_thread_wakes_blocked_calls(nets):
    s, srv, conn = tcpwave_pair(nets)
    results: dict[str, object] = {}
    threads = [threading.Thread(target=lambda: results.setdefault("recv", _error_of(lambda: s.recv(100)))),
               threading.Thread(target=lambda: results.setdefault("accept", _error_of(srv.accept)))]
    for t in threads:
        t.start()
    s.close()  # (it may come before the calls block, or after: either way they end)
    srv.close()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert results["recv"] in (b"", errno.EBADF)  # woken with end-of-file, or called after the close
    assert results["accept"] == errno.EBADF
    conn.close()


def test_close_from_another_thread_wakes_a_sendall_waiting_for_room(nets):
    s, srv, conn = tcpwave_pair(nets)  # conn never reads: s's buffers fill and sendall waits
    result = {}
    sender = threading.Thread(target=lambda: result.setdefault("sendall", _error_of(lambda: s.sendall(bytes(8 << 20)))))
    sender.start()
    sender.join(2)
    assert sender.is_alive()  # blocked: 8 MiB cannot fit while the peer reads nothing
    s.close()
    sender.join(10)
    assert not sender.is_alive() and result["sendall"] == errno.EBADF
    conn.close()
    srv.close()


def _error_of(call):
    """What call() returns, or the errno it raises."""
    try:
        return call()
    except OSError as e:
        return e.errno


def test_create_connection(nets):
    srv = nets[1].socket()
    srv.bind((SERVER, 25))
    srv.listen()
    s = create_connection((SERVER, 25), timeout=20, network=nets[0])
    conn, peer = srv.accept()
    assert s.getpeername() == (SERVER, 25) and peer == s.getsockname()
    assert nets[0].create_connection((SERVER, 25), 20).getpeername() == (SERVER, 25)
    for sock in (s, conn, srv):
        sock.close()
