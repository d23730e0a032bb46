"""An aiohttp web application and an aiohttp client session talking to it."""

import hashlib

import aiohttp
from aiohttp import web


async def _hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": request.match_info["name"]})


async def _upload(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(text=hashlib.sha256(body).hexdigest())


async def _download(request: web.Request) -> web.Response:
    return web.Response(body=bytes(range(256)) * (int(request.query["size"]) // 256))


async def start(host: str, port: int):
    app = web.Application()
    app.add_routes([web.get("/hello/{name}", _hello), web.post("/upload", _upload), web.get("/download", _download)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner.cleanup


async def client(host: str, port: int, size: int = 200_000) -> dict:
    body = bytes(range(256)) * (size // 256)
    base = f"http://{host}:{port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/hello/tcpwave") as r:
            hello = await r.json()
        async with session.post(f"{base}/upload", data=body) as r:
            upload_ok = await r.text() == hashlib.sha256(body).hexdigest()
        async with session.get(f"{base}/download", params={"size": str(size)}) as r:
            download_ok = await r.read() == body
    return {"hello": hello, "upload_ok": upload_ok, "download_ok": download_ok}


async def main(host: str, port: int) -> dict:
    cleanup = await start(host, port)
    try:
        return await client(host, port)
    finally:
        await cleanup()
