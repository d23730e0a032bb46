"""The HTTP service of `tcpwave serve http` (aio/httpd.py): the request parser's answers to what it
cannot take, and generated bodies streamed intact, over two runtimes on an in-memory link."""

import asyncio

import pytest

from tcpwave.aio import MemoryLink, Runtime, httpd, open_connection, start_server
from tcpwave.stack import Stack


@pytest.mark.parametrize("head, status", [
    (b"GET //[ HTTP/1.1\r\n\r\n", "400"),  # urlsplit's "Invalid IPv6 URL"
    (b"GET /%00 HTTP/1.1\r\n\r\n", "400"),
    (b"GET /a b HTTP/1.1\r\n\r\n", "400"),
    (b"GET /%zz HTTP/1.1\r\n\r\n", "400"),
    (b"GET http://[/ HTTP/1.1\r\n\r\n", "400"),
    (b"GET * HTTP/1.1\r\n\r\n", "400"),
    (b"G(T / HTTP/1.1\r\n\r\n", "400"),
    (b"GET / HTTP/2.0\r\n\r\n", "505"),
    (b"GET / HTTP/1.1\r\nname : value\r\n\r\n", "400"),  # whitespace before the colon (RFC 9112 §5.1)
    (b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", "400"),
    (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "400"),
    (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400"),
    (b"GET / HTTP/1.1\r\nContent-Length: 0000000000000000000000001\r\n\r\n", "400"),  # a body
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n", "405"),
    (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
])
def test_what_the_parser_cannot_take_is_refused_with_a_status(head, status):
    with pytest.raises(httpd.Refused) as e:
        httpd.parse(head)
    assert e.value.status.startswith(status)


def test_a_request_parses_to_its_path_and_keep_alive():
    assert httpd.parse(b"\r\nGET /a%20b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n") == httpd.Request("GET", "/a b", True)
    assert httpd.parse(b"GET http://x/y HTTP/1.1\r\nConnection: close\r\n\r\n") == httpd.Request("GET", "/y", False)
    assert httpd.parse(b"HEAD / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive
    assert not httpd.parse(b"GET / HTTP/1.0\r\n\r\n").keep_alive


def test_generated_bodies_stream_intact_and_head_sends_none():
    async def main():
        a, b = MemoryLink.pair(delay=0.0005)
        client = Runtime(Stack(["192.0.2.1"], seed=1), a)
        server = Runtime(Stack(["192.0.2.2"], seed=2), b)
        srv = await start_server(httpd.http(), "192.0.2.2", 80, runtime=server)
        reader, writer = await open_connection("192.0.2.2", 80, runtime=client)
        n = 3 * 65536 + 1000
        writer.write(b"HEAD /bytes/%d HTTP/1.1\r\n\r\nGET /bytes/%d HTTP/1.1\r\n\r\n"
                     b"GET /bytes/1073741825 HTTP/1.1\r\n\r\n" % (n, n))  # pipelined
        head = await reader.readuntil(b"\r\n\r\n")
        got = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(n)
        refused = await reader.readuntil(b"is at most 1073741824\n")  # (and the connection stays open)
        writer.close()
        srv.close()
        client.close()
        server.close()
        return head, got, body, refused

    head, got, body, refused = asyncio.run(asyncio.wait_for(main(), 30))
    n = 3 * 65536 + 1000
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: %d\r\n" % n in head
    assert got.startswith(b"HTTP/1.1 200 OK") and b"Connection: keep-alive" in got
    assert body == (bytes(range(256)) * (n // 256 + 1))[:n]  # byte i is i % 256
    assert refused.startswith(b"HTTP/1.1 400 Bad Request") and b"Connection: keep-alive" in refused
