"""The blocking socket-like API behaves as the socket module on Linux where issue 26 found it did not:
send() and sendall(), non-blocking mode, SHUT_RD, errors after a reset, shutdown() from another
thread, port 0."""

import os
import socket
import threading
import time

import pytest
import test_blocking_socket

nets = test_blocking_socket.nets  # the fixture: two networks on a memory link

SERVER = "192.0.2.2"


def connected(nets, port: int = 7):
    """(client socket, server's listening socket, accepted socket)."""
    client_net, server_net = nets
    srv = server_net.socket()
    srv.bind((SERVER, port))
    srv.listen()
    s = client_net.socket()
    s.settimeout(20)
    s.connect((SERVER, port))
    conn, _ = srv.accept()
    conn.settimeout(20)
    return s, srv, conn


def test_send_queues_what_fits_and_says_how_much_sendall_sends_all(nets):
    s, srv, conn = connected(nets)
    data = os.urandom(4_000_000)  # more than the buffers hold while the peer does not read
    sent = s.send(data)
    assert 0 < sent < len(data)
    got = bytearray()
    while len(got) < sent:
        got += conn.recv(65536)
    assert bytes(got) == data[:sent]
    s.sendall(b"tail")
    s.shutdown(socket.SHUT_WR)
    while chunk := conn.recv(65536):
        got += chunk
    assert bytes(got) == data[:sent] + b"tail"
    for sock in (s, conn, srv):
        sock.close()


def test_timeout_zero_is_non_blocking(nets):
    s, srv, conn = connected(nets)
    s.settimeout(0)
    with pytest.raises(BlockingIOError):
        s.recv(100)
    srv.setblocking(False)
    with pytest.raises(BlockingIOError):
        srv.accept()
    conn.sendall(b"now")
    s.settimeout(20)
    assert s.recv(100) == b"now"
    for sock in (s, conn, srv):
        sock.close()


def test_shut_rd_leaves_queued_data_readable_then_end_of_file(nets):
    s, srv, conn = connected(nets)
    conn.sendall(b"abc")
    assert s.recv(1) == b"a"  # the three bytes came in one segment: two are queued now
    s.shutdown(socket.SHUT_RD)
    assert s.recv(100) == b"bc"
    assert s.recv(100) == b""  # the peer has not closed: end-of-file because of SHUT_RD
    for sock in (s, conn, srv):
        sock.close()


def test_send_after_a_peer_reset_reports_econnreset_once_then_epipe(nets):
    """As Linux (tests/conformance/api-reset-then-epipe.pkt): the first write meeting the reset fails
    with ECONNRESET, later ones with EPIPE; the message names the write."""
    s, srv, conn = connected(nets)
    s.sendall(b"unread")
    conn.close()  # closing with unread data sends a RST
    deadline = time.monotonic() + 20
    with pytest.raises(ConnectionResetError) as first:
        while time.monotonic() < deadline:  # the writes before the RST arrives succeed
            s.send(b"x")
    assert first.value.strerror.startswith("write():")
    with pytest.raises(BrokenPipeError):
        s.send(b"x")
    with pytest.raises(BrokenPipeError):
        s.sendall(b"x")
    assert s.recv(100) == b""  # the error was reported: reads see end-of-file
    s.close()
    srv.close()


def test_shutdown_from_another_thread_wakes_a_blocked_recv(nets):
    s, srv, conn = connected(nets)
    result = []
    reader = threading.Thread(target=lambda: result.append(s.recv(100)))
    reader.start()
    s.shutdown(socket.SHUT_RDWR)
    reader.join(10)
    assert not reader.is_alive() and result == [b""]
    for sock in (s, conn, srv):
        sock.close()


def test_bind_to_port_zero_listens_on_the_port_getsockname_reports(nets):
    client_net, server_net = nets
    with server_net.socket() as srv:
        srv.bind((SERVER, 0))
        srv.listen()
        port = srv.getsockname()[1]
        assert port != 0
        with client_net.socket() as s:
            s.settimeout(20)
            s.connect((SERVER, port))
            conn, _ = srv.accept()
            s.sendall(b"hi")
            assert conn.recv(10) == b"hi"
            conn.close()
