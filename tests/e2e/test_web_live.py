"""`waylay web` holds flows for a person: a real process, its intercept filter from
--intercept, the page's WebSocket told as flows pause and go on, and the API that edits,
resumes and kills them (docs/web.md, /api/live).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import httpx
import pytest

from .origin import Origin
from .waylay_process import StartWaylay, WaylayProcess


class Page:
    """What the page does: the API with the UI's cookie, and its /api/updates socket."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws

    async def next(self, kind: str) -> dict[str, Any]:
        """The next message of type ``kind`` (others, such as stored flows, are passed)."""
        while True:
            message = await asyncio.wait_for(self.ws.receive(), 10)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            data: dict[str, Any] = json.loads(message.data)
            if data["type"] == kind:
                return data

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, path, **kwargs) as response:
            body = await response.read()
            return response.status, json.loads(body) if body else None


async def with_page(waylay: WaylayProcess, test: Any) -> Any:
    headers = {"Cookie": f"waylay_web={waylay.web_token}"}
    async with (
        aiohttp.ClientSession(base_url=waylay.web_url, headers=headers) as session,
        session.ws_connect("/api/updates") as ws,
    ):
        return await test(Page(session, ws))


def test_a_flow_paused_by_intercept_is_edited_resumed_and_killed_from_the_ui(
    start_web: StartWaylay, origin: Origin
) -> None:
    waylay = start_web("--intercept", "~q & ~u /echo/held", "-q")

    async def test(page: Page) -> httpx.Response:
        assert await page.call("GET", "/api/intercept") == (200, {"filter": "~q & ~u /echo/held"})
        async with httpx.AsyncClient(proxy=waylay.url, timeout=10) as through:
            held = asyncio.create_task(through.post(origin.url("/echo/held"), content=b"before"))
            live = (await page.next("live"))["flow"]
            assert (live["phase"], live["flow"]["method"], live["request_body"]) == (
                "request",
                "POST",
                "before",
            )
            assert [entry["id"] for entry in (await page.call("GET", "/api/live"))[1]] == [
                live["id"]
            ]
            assert not [r for r in origin.requests if r.target.startswith("/echo/held")]
            edit = {"request": {"url": origin.url("/echo/edited"), "body": "after"}}
            status, _ = await page.call("PATCH", f"/api/live/{live['id']}", json=edit)
            assert status == 200
            assert (await page.next("live"))["flow"]["request_body"] == "after"
            assert (await page.call("POST", f"/api/live/{live['id']}/resume"))[0] == 204
            assert await page.next("resumed") == {"type": "resumed", "id": live["id"]}
            response = await held

            killed = asyncio.create_task(through.get(origin.url("/echo/held/2")))
            live = (await page.next("live"))["flow"]
            assert (await page.call("POST", f"/api/live/{live['id']}/kill"))[0] == 204
            assert await page.next("resumed") == {"type": "resumed", "id": live["id"]}
            with pytest.raises(httpx.TransportError):
                await killed

            status, answer = await page.call("PUT", "/api/intercept", json={"filter": ""})
            assert (status, answer) == (200, {"filter": None})
            assert (await page.call("GET", "/api/info"))[1]["intercept"] is None
            free = await through.get(origin.url("/echo/held/3"))
            assert free.status_code == 200
            return response

    response = asyncio.run(with_page(waylay, test))
    echoed = response.json()
    assert (echoed["method"], echoed["target"], echoed["body_length"]) == (
        "POST",
        "/echo/edited",
        len(b"after"),
    )


def test_waylay_web_stops_cleanly_with_a_flow_paused(
    start_web: StartWaylay, origin: Origin
) -> None:
    # The fixture's teardown stops it (SIGTERM) and wants status 0 and no traceback.
    waylay = start_web("--intercept", "~q", "-q")

    async def test(page: Page) -> None:
        async with httpx.AsyncClient(proxy=waylay.url, timeout=10) as through:
            held = asyncio.create_task(through.get(origin.url("/echo/held")))
            await page.next("live")
            assert waylay.stop() == 0
            with pytest.raises(httpx.TransportError):
                await held

    asyncio.run(with_page(waylay, test))
    assert "Traceback" not in waylay.stderr_text()
