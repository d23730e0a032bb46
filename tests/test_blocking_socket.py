"""The blocking, socket-like API (a stack on a loop in a background thread)."""

import os
import socket
import threading

import pytest

from tcpwave.aio.blocking import Network
from tcpwave.core.config import Config


@pytest.fixture
def nets():
    a, b = Network.memory_pair()
    yield a, b
    a.close()
    b.close()


def test_echo_with_bind_listen_accept_sendall_recv_shutdown(nets):
    client_net, server_net = nets
    data = os.urandom(500_000)
    with server_net.socket() as srv:
        srv.bind(("192.0.2.2", 7))
        srv.listen()
        result = {}

        def serve():
            conn, peer = srv.accept()
            result["peer"] = peer
            with conn:
                while chunk := conn.recv(65536):
                    conn.sendall(chunk)

        t = threading.Thread(target=serve)
        t.start()
        with client_net.socket() as s:
            s.settimeout(20)
            s.connect(("192.0.2.2", 7))
            assert s.getpeername() == ("192.0.2.2", 7)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while chunk := s.recv(65536):
                got += chunk
            assert bytes(got) == data
            ours = s.getsockname()
        t.join(10)
        assert result["peer"] == ours


def test_connect_to_a_closed_port_raises_connection_refused(nets):
    client_net, _ = nets
    with client_net.socket() as s, pytest.raises(ConnectionRefusedError):
        s.settimeout(10)
        s.connect(("192.0.2.2", 9))


def test_recv_times_out_like_a_socket(nets):
    client_net, server_net = nets
    with server_net.socket() as srv:
        srv.bind(("192.0.2.2", 7))
        srv.listen()
        with client_net.socket() as s:
            s.settimeout(10)
            s.connect(("192.0.2.2", 7))
            s.settimeout(0.2)
            with pytest.raises(TimeoutError):
                s.recv(10)  # the server never sends


def test_calls_on_an_unconnected_socket_raise(nets):
    client_net, _ = nets
    s = client_net.socket()
    with pytest.raises(OSError, match="not connected"):
        s.sendall(b"x")
    with pytest.raises(OSError, match="bind"):
        s.listen()
    s.close()
    with pytest.raises(OSError, match="closed"):
        s.recv(1)


def test_unanswered_connect_raises_timeout_error():
    fast = Config(syn_retries=1, rto_initial=0.05, rto_min=0.05)
    a, b = Network.memory_pair(config=fast)
    try:
        with a.socket() as s, pytest.raises(TimeoutError):
            s.connect(("192.0.2.99", 7))
    finally:
        a.close()
        b.close()
