"""An HTTP/1.1 server and client written with h11 over asyncio streams (the sans-IO pattern of
h11's own examples): the client POSTs a body and the server answers with its SHA-256."""

import asyncio
import hashlib

import h11


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader):
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        return event


async def _handle(reader, writer):
    conn = h11.Connection(h11.SERVER)
    request = await _next_event(conn, reader)
    digest = hashlib.sha256()
    while isinstance(event := await _next_event(conn, reader), h11.Data):
        digest.update(event.data)
    body = f"{request.method.decode()} {request.target.decode()} {digest.hexdigest()}".encode()
    writer.write(conn.send(h11.Response(status_code=200, headers=[("Content-Length", str(len(body)))])))
    writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def start(host: str, port: int):
    server = await asyncio.start_server(_handle, host, port)
    return server.close


async def client(host: str, port: int, size: int = 200_000) -> dict:
    body = bytes(range(256)) * (size // 256)
    reader, writer = await asyncio.open_connection(host, port)
    conn = h11.Connection(h11.CLIENT)
    headers = [("Host", host), ("Content-Length", str(len(body)))]
    writer.write(conn.send(h11.Request(method="POST", target="/upload", headers=headers)))
    writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    await writer.drain()
    response = await _next_event(conn, reader)
    answer = b""
    while isinstance(event := await _next_event(conn, reader), h11.Data):
        answer += event.data
    writer.close()
    await writer.wait_closed()
    ok = answer.decode() == f"POST /upload {hashlib.sha256(body).hexdigest()}"
    return {"status": response.status_code, "ok": ok}


async def main(host: str, port: int) -> dict:
    stop = await start(host, port)
    try:
        return await client(host, port)
    finally:
        stop()
