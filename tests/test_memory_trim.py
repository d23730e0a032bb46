"""When many connections have gone, the runtime gives back the memory they held: their reference cycles
are collected before the C allocator is asked to trim, so that what they held is free by then (with
RSS alone this cannot be told apart on a busy machine: the allocator is replaced by a recorder here)."""

import asyncio
import gc
import subprocess
import sys

import pytest
from netns import namespace, needs_netns, wait_for_file

from tcpwave.aio import MemoryLink, Runtime, control, create_server, open_connection, runtime, trim
from tcpwave.aio.services import Echo
from tcpwave.stack import Stack

SERVER = "192.0.2.2"


async def until(condition, limit: float = 20.0):
    deadline = asyncio.get_running_loop().time() + limit
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def _connections_go(n: int, trims_wanted: int = 1) -> list[list[bool]]:
    """At each trim after the server's table emptied: which of its connections were still alive. (The
    client's runtime trims too, on the same loop, when its own table empties: maybe before the
    server has had the resets, so those trims say nothing about the server's connections.)"""
    trims: list[list[bool]] = []
    refs: list = []  # Connection.weak() references
    servers: list = []

    def record(pad):
        if servers and not servers[0].transports:
            trims.append([ref() is not None for ref in refs])

    trim._TRIM = record
    a, b = MemoryLink.pair(delay=0.0005)
    client = Runtime(Stack(["192.0.2.1"], seed=1), a)
    server = Runtime(Stack([SERVER], seed=2), b)
    srv = await create_server(Echo, SERVER, 7, runtime=server)
    writers = []
    for _ in range(n):
        reader, writer = await open_connection(SERVER, 7, runtime=client)
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        writers.append(writer)
    await until(lambda: len(srv.transports) == n)
    servers.append(srv)
    refs += [t.get_extra_info("tcpwave_connection").weak() for t in srv.transports]
    for writer in writers:
        writer.transport.abort()  # a RST each: the server's connections end
    del writers
    await until(lambda: not srv.transports)
    await until(lambda: len(trims) >= trims_wanted)
    srv.close()
    client.close()
    server.close()
    return trims


@pytest.mark.parametrize("fewest", [4, 64], ids=["halved", "emptied"])
def test_a_trim_after_the_connection_table_shrank_collects_them_first(monkeypatch, fewest):
    """All 10 connections go: fewer than TRIM_CONNECTIONS (1000), as the last of many going a few at
    a time, but the table halved (at least TRIM_FEWEST went: with 4) or is empty (with 64)."""
    monkeypatch.setattr(runtime, "TRIM_EVERY", 0.05)  # (read when the runtime arms its trim timer)
    monkeypatch.setattr(runtime, "TRIM_FEWEST", fewest)
    monkeypatch.setattr(trim, "_TRIM", None)  # (set by the run; restored after it)
    gc.disable()  # no collection but the trim's own: the connections' cycles stay until it
    try:
        trims = asyncio.run(_connections_go(10))
    finally:
        gc.enable()
    assert trims, "no trim after 10 connections went"
    assert trims[0] and not any(trims[0]), f"connections still alive when the allocator was trimmed: {trims[0]}"


def test_trims_go_on_for_a_few_looks_after_the_table_shrank(monkeypatch):
    """What is let go later (transports closing, stale timer entries) is given back too: after the
    trim for connections that went, TRIM_AGAIN (3) more on the next looks, with no more going."""
    monkeypatch.setattr(runtime, "TRIM_EVERY", 0.05)
    monkeypatch.setattr(trim, "INTERVAL", 0.0)  # (no rate limit: a trim for each look that asks for one)
    monkeypatch.setattr(trim, "SHARE", float("inf"))
    monkeypatch.setattr(trim, "_TRIM", None)
    trims = asyncio.run(_connections_go(10, trims_wanted=4))
    assert len(trims) >= 4


@needs_netns
def test_serve_freezes_what_start_up_made_and_spaces_young_collections(tmp_path):
    """A full collection while thousands of connections live paused `serve` for up to 0.2 s (each
    pause overflowed the TUN queue further): once up, serve freezes what
    start-up made, which no full collection then looks at again, and collects the young generation
    every trim.YOUNG allocations. The control socket says so."""
    ready, ctl = str(tmp_path / "ready"), str(tmp_path / "ctl.sock")
    with namespace("tcpwave-gc") as ns:
        server = ns.popen(sys.executable, "-m", "tcpwave.cli.main", "serve", "echo", "--ready-file", ready,
                          "--control", ctl, stderr=subprocess.PIPE, text=True)
        wait_for_file(ready, server)
        doc = control.query(ctl)
        server.terminate()
        server.communicate(timeout=20)
    assert isinstance(doc, dict)
    collector = doc["collector"]
    assert collector["frozen"] > 10_000, collector  # (the modules, the stack, the listener)
    assert collector["threshold"][0] == trim.YOUNG, collector
