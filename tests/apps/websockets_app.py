"""A websockets echo server and a client that sends text and binary messages through it."""

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


async def _echo(websocket) -> None:
    async for message in websocket:
        await websocket.send(message)


async def start(host: str, port: int):
    server = await serve(_echo, host, port)

    async def stop():
        server.close()
        await server.wait_closed()

    return stop


async def client(host: str, port: int, count: int = 20) -> dict:
    messages = [f"message {i}" if i % 2 else bytes([i]) * 10_000 for i in range(count)]
    echoed = []
    async with connect(f"ws://{host}:{port}") as websocket:
        for message in messages:
            await websocket.send(message)
            echoed.append(await websocket.recv())
    return {"echoed": len(echoed), "ok": echoed == messages}


async def main(host: str, port: int) -> dict:
    stop = await start(host, port)
    try:
        return await client(host, port)
    finally:
        await stop()
