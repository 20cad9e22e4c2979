"""/api/updates over real sockets: every page gets every message in order, a page that stops
reading is dropped once it is ``max_buffer`` behind (never waited for, never buffered without
bound), and stored flows are announced once committed."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web

from waylay.web.updates import Updates


async def _serve(updates: Updates) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.add_routes([web.get("/api/updates", updates.handle)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"ws://127.0.0.1:{port}/api/updates"


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_every_page_gets_every_message_in_order() -> None:
    async def scenario() -> list[list[int]]:
        updates = Updates(max_buffer=256 * 1024)
        runner, url = await _serve(updates)
        try:
            async with aiohttp.ClientSession() as session:
                pages = [await session.ws_connect(url) for _ in range(3)]
                await _until(lambda: len(updates.subscribers) == 3)
                filler = "x" * 16 * 1024
                for n in range(200):  # 3 MiB to each page, far over max_buffer in all
                    updates.broadcast({"type": "flow", "n": n, "filler": filler})
                    await asyncio.sleep(0.001)
                got = []
                for page in pages:
                    got.append([(await page.receive_json(timeout=5))["n"] for _ in range(200)])
                    await page.close()
                return got
        finally:
            await updates.close()
            await runner.cleanup()

    for numbers in asyncio.run(scenario()):
        assert numbers == list(range(200))


def _silent_page(url: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /api/updates HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_a_page_that_stops_reading_is_dropped_not_waited_for() -> None:
    async def scenario() -> tuple[int, bool, int]:
        max_buffer = 128 * 1024
        updates = Updates(max_buffer=max_buffer)
        runner, url = await _serve(updates)
        silent = await asyncio.to_thread(_silent_page, url)
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as reader:
                await _until(lambda: len(updates.subscribers) == 2)
                filler = "y" * 32 * 1024
                worst = 0
                sent = 0
                # Until the silent page is dropped: 64 MiB at most, far over any socket buffer.
                while len(updates.subscribers) == 2 and sent < 2000:
                    updates.broadcast({"type": "flow", "n": sent, "filler": filler})
                    sent += 1
                    worst = max(worst, *(s.backlog() for s in updates.subscribers))
                    await asyncio.sleep(0)
                    while (await reader.receive_json(timeout=5))["n"] != sent - 1:
                        pass
                # The reader was never dropped and still gets what follows.
                updates.broadcast({"type": "flow", "n": -1})
                last = await reader.receive_json(timeout=5)
                return worst, len(updates.subscribers) == 1 and last["n"] == -1, sent
        finally:
            silent.close()
            await updates.close()
            await runner.cleanup()

    worst, reader_kept, sent = asyncio.run(scenario())
    print(f"dropped after {sent} messages; worst backlog {worst}")
    assert reader_kept
    assert sent < 2000, "the silent page was never dropped"
    assert worst <= 128 * 1024 + 33 * 1024  # max_buffer and one message


def test_one_message_larger_than_max_buffer_reaches_a_page_that_keeps_up() -> None:
    async def scenario() -> list[int]:
        updates = Updates(max_buffer=64 * 1024)
        runner, url = await _serve(updates)
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as page:
                await _until(lambda: len(updates.subscribers) == 1)
                big = "z" * 1024 * 1024  # a paused flow's body, say
                got = []
                for n in range(3):
                    updates.broadcast({"n": n, "body": big})
                    got.append(len((await page.receive_json(timeout=5))["body"]))
                assert len(updates.subscribers) == 1
                return got
        finally:
            await updates.close()
            await runner.cleanup()

    assert asyncio.run(scenario()) == [1024 * 1024] * 3


def test_stored_flows_are_announced_in_commit_order_only_while_pages_listen() -> None:
    reads: list[list[int]] = []

    def reader(ids: Sequence[int]) -> list[dict[str, Any]]:
        reads.append(list(ids))
        return [{"id": store_id} for store_id in ids if store_id != 3]  # 3 was deleted since

    async def scenario() -> list[dict[str, Any]]:
        updates = Updates()
        committed = updates.announce_stored(reader)
        committed([100])  # nobody listens: nothing is read
        runner, url = await _serve(updates)
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as page:
                await _until(lambda: len(updates.subscribers) == 1)
                committed([1, 2])
                committed([3, 4])
                return [await page.receive_json(timeout=5) for _ in range(3)]
        finally:
            await updates.close()
            await runner.cleanup()

    messages = asyncio.run(scenario())
    assert messages == [{"type": "flow", "flow": {"id": n}} for n in (1, 2, 4)]
    assert 100 not in [n for read in reads for n in read]


def test_closing_says_going_away_to_every_page() -> None:
    async def scenario() -> tuple[aiohttp.WSMsgType, int | None]:
        updates = Updates()
        runner, url = await _serve(updates)
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as page:
                await _until(lambda: len(updates.subscribers) == 1)
                closing = asyncio.ensure_future(updates.close())
                message = await page.receive(timeout=5)
                await closing
                return message.type, page.close_code
        finally:
            await runner.cleanup()

    kind, code = asyncio.run(scenario())
    assert kind is aiohttp.WSMsgType.CLOSE and code == 1001
