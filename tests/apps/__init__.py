"""Ordinary asyncio programs (aiohttp, websockets, h11), with no mention of tcpwave: the tests run
them unchanged on a tcpwave loop (tests/test_aio_loop.py)."""
