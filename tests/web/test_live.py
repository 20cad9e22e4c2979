"""Live flows over the wire: the intercept filter set through the API pauses flows, the API
lists, edits, resumes and kills them, and with no filter set nothing is held or buffered.

A real proxy (ProxyServer on loopback, in the test's loop) whose chain has the LiveFlows
addon, the live routes on an aiohttp app on loopback, httpx clients through the proxy and to
the API, and the suite's h11 origin, whose records say what reached the server. The page's
messages are what the addon broadcast, in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.e2e.origin import ORIGIN_HOST, MiB, Origin, pattern_sha256
from waylay.addons.chain import AddonChain
from waylay.addons.intercept import Intercept
from waylay.addons.options import AddonOptions
from waylay.context import ProxyContext
from waylay.filters import parse_filter
from waylay.flow import Flow
from waylay.hooks import HookTable, passive
from waylay.hosts import Resolver
from waylay.options import Options, parse_listen
from waylay.server import ProxyServer
from waylay.web.live import LiveFlows, add_routes, install
from waylay.web.state import WebState
from waylay.web.updates import Updates


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    server.start()
    yield server
    server.stop()


class Recorded(Updates):
    """The page's messages, as JSON would carry them, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []

    def broadcast(self, message: dict[str, Any]) -> None:
        self.messages.append(json.loads(json.dumps(message)))
        super().broadcast(message)


@dataclass
class Live:
    ctx: ProxyContext
    proxy_port: int
    # What the addon told the pages, in order.
    messages: list[dict[str, Any]]
    api: httpx.AsyncClient
    through: httpx.AsyncClient


@asynccontextmanager
async def live_proxy(tmp_path: Path, *observers: object, **options: Any) -> AsyncIterator[Live]:
    settings = replace(
        Options(listen=parse_listen("127.0.0.1:0"), confdir=tmp_path / "conf"), **options
    )
    ctx = ProxyContext.build(settings, Resolver({ORIGIN_HOST: ("127.0.0.1",)}, True), HookTable())
    chain = AddonChain(list(observers), [], AddonOptions())
    updates = Recorded()
    state = WebState(ctx, chain, token="t", updates=updates)
    app = web.Application()
    add_routes(app, state)
    [live] = [addon for addon in chain.own if isinstance(addon, LiveFlows)]
    await chain.load()
    ctx.hooks = chain.table()
    server = ProxyServer(ctx)
    proxy_port = await server.start()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api_port = runner.addresses[0][1]
    try:
        async with (
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{api_port}", timeout=10, trust_env=False
            ) as api,
            httpx.AsyncClient(proxy=f"http://127.0.0.1:{proxy_port}", timeout=10) as through,
        ):
            yield Live(ctx, proxy_port, updates.messages, api, through)
    finally:
        live.resume_all()  # a test that failed midway leaves no connection waiting
        await runner.cleanup()
        await server.stop()


async def paused(api: httpx.AsyncClient, count: int = 1) -> list[dict[str, Any]]:
    """GET /api/live once it lists ``count`` flows."""
    for _ in range(500):
        listed: list[dict[str, Any]] = (await api.get("/api/live")).json()
        if len(listed) >= count:
            return listed
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} flows never paused: {listed}")


async def set_filter(api: httpx.AsyncClient, expression: str) -> None:
    answer = await api.put("/api/intercept", json={"filter": expression})
    assert answer.status_code == 200, answer.text


def reached(origin: Origin, prefix: str) -> list[str]:
    return [record.target for record in origin.requests if record.target.startswith(prefix)]


def test_a_paused_request_is_edited_and_resumed_while_others_go_on(
    origin: Origin, tmp_path: Path
) -> None:
    async def main() -> tuple[httpx.Response, list[dict[str, Any]]]:
        async with live_proxy(tmp_path) as h:
            await set_filter(h.api, "~q & ~u /echo/held")
            assert (await h.api.get("/api/intercept")).json() == {"filter": "~q & ~u /echo/held"}
            held = asyncio.create_task(
                h.through.post(origin.url("/echo/held"), content=b"original", headers={"X-A": "1"})
            )
            [entry] = await paused(h.api)
            # Another flow goes through while that one waits; the server never saw the first.
            assert (await h.through.get(origin.url("/echo/free"))).status_code == 200
            assert reached(origin, "/echo/held") == []
            assert not held.done()
            flow = entry["flow"]
            assert (entry["phase"], flow["method"], flow["url"], flow["id"]) == (
                "request",
                "POST",
                origin.url("/echo/held"),
                None,
            )
            assert (entry["request_body"], entry["request_body_base64"]) == ("original", None)
            assert entry["response_body"] is None and flow["response"] is None
            headers = [*flow["request"]["headers"], ["X-Added", "by a person"]]
            edit = {
                "method": "PUT",
                "url": origin.url("/echo/edited?x=1"),
                "headers": headers,
                "body": "edited body",
            }
            answer = await h.api.patch(f"/api/live/{entry['id']}", json={"request": edit})
            assert answer.status_code == 200, answer.text
            assert answer.json()["flow"]["method"] == "PUT"
            assert answer.json()["request_body"] == "edited body"
            resumed = await h.api.post(f"/api/live/{entry['id']}/resume")
            assert resumed.status_code == 204
            response = await held
            assert (await h.api.get("/api/live")).json() == []
            return response, h.messages

    response, messages = asyncio.run(main())
    echoed = response.json()
    headers = {name.lower(): value for name, value in echoed["headers"]}
    assert (echoed["method"], echoed["target"]) == ("PUT", "/echo/edited?x=1")
    assert headers["x-added"] == "by a person" and headers["x-a"] == "1"
    assert echoed["body_sha256"] == hashlib.sha256(b"edited body").hexdigest()
    assert headers["content-length"] == str(len(b"edited body"))
    assert [m["type"] for m in messages] == ["live", "live", "resumed"]  # paused, edited, resumed
    assert messages[0]["flow"]["id"] == messages[2]["id"]


def test_a_paused_response_is_edited_and_the_client_gets_the_edit(
    origin: Origin, tmp_path: Path
) -> None:
    async def main() -> httpx.Response:
        async with live_proxy(tmp_path) as h:
            await set_filter(h.api, "~s & ~u /status/")
            held = asyncio.create_task(h.through.get(origin.url("/status/200")))
            [entry] = await paused(h.api)
            assert entry["phase"] == "response" and entry["response_body"] == "status 200\n"
            assert entry["flow"]["response"]["status"] == 200
            assert reached(origin, "/status/200") == ["/status/200"]
            flow_id = entry["id"]
            # The request has gone: only the response can change now.
            refused = await h.api.patch(f"/api/live/{flow_id}", json={"request": {"method": "PUT"}})
            assert refused.status_code == 400 and "gone to the server" in refused.json()["error"]
            edit = {
                "status_code": 418,
                "reason": "I'm a teapot",
                "headers": [["Content-Type", "text/plain"], ["X-Edited", "1"]],
                "body": "short and stout",
            }
            answer = await h.api.patch(f"/api/live/{flow_id}", json={"response": edit})
            assert answer.status_code == 200, answer.text
            assert (await h.api.post(f"/api/live/{flow_id}/resume")).status_code == 204
            return await held

    response = asyncio.run(main())
    assert (response.status_code, response.reason_phrase, response.text) == (
        418,
        "I'm a teapot",
        "short and stout",
    )
    assert response.headers["x-edited"] == "1"
    assert response.headers["content-length"] == str(len("short and stout"))


@pytest.mark.parametrize("expression", ["~q & ~u /echo/killed", "~s & ~u /echo/killed"])
def test_a_killed_flow_resets_its_client(origin: Origin, tmp_path: Path, expression: str) -> None:
    async def main() -> list[dict[str, Any]]:
        async with live_proxy(tmp_path) as h:
            await set_filter(h.api, expression)
            held = asyncio.create_task(h.through.get(origin.url("/echo/killed")))
            [entry] = await paused(h.api)
            assert (await h.api.post(f"/api/live/{entry['id']}/kill")).status_code == 204
            with pytest.raises(httpx.TransportError):
                await held
            assert (await h.api.get("/api/live")).json() == []
            # The proxy goes on serving.
            assert (await h.through.get(origin.url("/echo/after"))).status_code == 200
            return h.messages

    messages = asyncio.run(main())
    if expression.startswith("~q"):
        assert reached(origin, "/echo/killed") == []  # nothing was sent for it
    assert [m["type"] for m in messages] == ["live", "resumed"]


def test_resume_all_lets_every_paused_flow_go_on(origin: Origin, tmp_path: Path) -> None:
    async def main() -> list[httpx.Response]:
        async with live_proxy(tmp_path) as h:
            await set_filter(h.api, "~q & ~u /echo/many")
            held = [
                asyncio.create_task(h.through.get(origin.url(f"/echo/many/{n}"))) for n in range(3)
            ]
            await paused(h.api, 3)
            assert reached(origin, "/echo/many") == []
            assert (await h.api.post("/api/live/resume-all")).status_code == 204
            responses = await asyncio.gather(*held)
            assert (await h.api.get("/api/live")).json() == []
            return responses

    assert [r.status_code for r in asyncio.run(main())] == [200, 200, 200]


def test_what_the_api_refuses(origin: Origin, tmp_path: Path) -> None:
    async def main() -> None:
        async with live_proxy(tmp_path) as h:
            bad = await h.api.put("/api/intercept", json={"filter": "~d a & ~zz"})
            assert bad.status_code == 400
            assert bad.json() == {"error": "unknown operator '~zz'", "column": 8}
            for body in (b"not json", b"[1]", b'{"filter": 5}'):
                assert (await h.api.put("/api/intercept", content=body)).status_code == 400
            assert (await h.api.get("/api/intercept")).json() == {"filter": None}
            for path in ("/api/live/999999/resume", "/api/live/999999/kill", "/api/live/x/kill"):
                missing = await h.api.post(path)
                assert missing.status_code == 404 and "no paused flow" in missing.json()["error"]
            missing = await h.api.patch("/api/live/999999", json={"request": {}})
            assert missing.status_code == 404

            await set_filter(h.api, "~q")
            held = asyncio.create_task(h.through.get(origin.url("/echo/refused")))
            [entry] = await paused(h.api)
            where = f"/api/live/{entry['id']}"
            for edit, reason in [
                ({"request": {"method": "GE T"}}, "is not a method"),
                ({"request": {"url": "ftp://x/"}}, "url:"),
                ({"request": {"headers": [["X", "a\nb"]]}}, "CR, LF or NUL"),
                ({"request": {"method": "PUT"}, "response": {}}, 'one of "request"'),
                ({"response": {"status_code": 500}}, "no response yet"),
                ({"request": []}, "a JSON object"),
            ]:
                refused = await h.api.patch(where, json=edit)
                assert refused.status_code == 400 and reason in refused.json()["error"], edit
            # Nothing of the refused edits was applied.
            assert (await h.api.post(f"{where}/resume")).status_code == 204
            response = await held
            assert response.json()["method"] == "GET"
            assert response.json()["target"] == "/echo/refused"
            # Turned off: nothing pauses.
            off = await h.api.put("/api/intercept", json={"filter": ""})
            assert off.json() == {"filter": None}
            assert (await h.through.get(origin.url("/echo/free"))).status_code == 200

    asyncio.run(main())


class BodyWatcher:
    """A @passive observer: whether each response's body was held whole (raw_content set)."""

    def __init__(self) -> None:
        self.held: list[bool] = []

    @passive
    def response(self, flow: Flow) -> None:
        assert flow.response is not None
        self.held.append(flow.response.raw_content is not None)


def test_with_no_filter_set_bodies_stream(origin: Origin, tmp_path: Path) -> None:
    watcher = BodyWatcher()

    async def main() -> None:
        async with live_proxy(tmp_path, watcher) as h:

            async def fetch() -> None:
                response = await h.through.get(origin.url(f"/bytes/{MiB}"))
                assert hashlib.sha256(response.content).hexdigest() == pattern_sha256(MiB)

            assert h.ctx.hooks.request == h.ctx.hooks.response == ()
            await fetch()
            await set_filter(h.api, "~u /never")  # on, matching nothing: bodies wait whole
            assert len(h.ctx.hooks.request) == len(h.ctx.hooks.response) == 1
            await fetch()
            await set_filter(h.api, "")
            assert h.ctx.hooks.request == h.ctx.hooks.response == ()
            await fetch()
            assert h.messages == []

    asyncio.run(main())
    assert watcher.held == [False, True, False]


def test_a_body_that_streamed_past_the_hooks_is_not_paused(origin: Origin, tmp_path: Path) -> None:
    # Over --stream-large-bodies the body has gone on before the hook sees it: nothing to edit.
    async def main() -> None:
        async with live_proxy(tmp_path, stream_large_bodies=64 * 1024) as h:
            await set_filter(h.api, "~u /bytes/ & ~s")
            response = await h.through.get(origin.url(f"/bytes/{MiB}"))
            assert hashlib.sha256(response.content).hexdigest() == pattern_sha256(MiB)
            await set_filter(h.api, "~u /echo/upload & ~q")
            upload = await h.through.post(origin.url("/echo/upload"), content=b"u" * MiB)
            assert upload.json()["body_length"] == MiB
            assert h.messages == []

    asyncio.run(main())


def test_a_flow_whose_client_left_stays_until_resumed(origin: Origin, tmp_path: Path) -> None:
    async def main() -> None:
        async with live_proxy(tmp_path) as h:
            await set_filter(h.api, "~q & ~u /echo/left")
            sock = socket.create_connection(("127.0.0.1", h.proxy_port))
            target = origin.url("/echo/left").encode()
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, ORIGIN_HOST.encode()))
            [entry] = await paused(h.api)
            sock.close()
            await asyncio.sleep(0.1)
            assert [e["id"] for e in (await h.api.get("/api/live")).json()] == [entry["id"]]
            assert (await h.api.post(f"/api/live/{entry['id']}/resume")).status_code == 204
            assert (await h.api.get("/api/live")).json() == []
            assert (await h.through.get(origin.url("/echo/after"))).status_code == 200

    asyncio.run(main())


def test_install_takes_the_place_and_the_filter_of_intercept(tmp_path: Path) -> None:
    expression = parse_filter("~q")
    ctx = ProxyContext.build(Options(confdir=tmp_path / "conf"), Resolver({}, True), HookTable())
    first, last = object(), object()
    chain = AddonChain([first, Intercept(expression), last], [], AddonOptions())
    state = WebState(ctx, chain, token="t", intercept=expression)
    live = install(state)
    assert chain.own == [first, last, live] and live.filter is expression
    assert ctx.hooks.request == (live.request,) and ctx.hooks.response == (live.response,)
    live.set_filter(None)
    assert not ctx.hooks.request and not ctx.hooks.response and state.intercept is None
