"""The UI's server in-process, over a real socket: the guard before every route (the page, the
static files, the API, a path that does not exist, the socket), the headers on every answer,
logging in with a password, and the API's refusals of what it cannot do.

The end-to-end suite (tests/e2e/test_web.py) drives a real `waylay web`; this one looks at
routing details with flows written straight into the store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from waylay.addons.chain import AddonChain
from waylay.addons.options import AddonOptions
from waylay.context import ProxyContext
from waylay.flow import Flow, Request, Response, Timestamps
from waylay.headers import Headers
from waylay.hooks import HookTable
from waylay.hosts import Resolver
from waylay.options import Options, parse_listen
from waylay.server import listening_socket
from waylay.store.bulk import append_flows
from waylay.store.schema import REQUEST_TRUNCATED
from waylay.web.app import LOGIN_DELAY, WebUI

PASSWORD = "correct horse battery"
Scenario = Callable[[WebUI, httpx.AsyncClient, list[int]], Awaitable[None]]


def _flows() -> list[tuple[Flow, bytes | None, bytes | None]]:
    def flow(method: str, path: str, response: Response | None) -> Flow:
        request = Request(method, "http", "api.example.test", 80, path, "HTTP/1.1",
                          Headers([(b"Host", b"api.example.test")]))  # fmt: skip
        made = Flow(("127.0.0.1", 4000), request, timestamps=Timestamps(start=1.0, end=2.0))
        made.response = response
        return made

    ok = Response(200, "OK", "HTTP/1.1", Headers([(b"Content-Encoding", b"gzip")]))
    tunnel = flow("CONNECT", "", None)
    truncated = flow("POST", "/upload", Response(201, "Created", "HTTP/1.1", Headers()))
    truncated.capture_flags = REQUEST_TRUNCATED
    truncated.request_body_size = 10
    return [
        (flow("GET", "/not-gzip", ok), None, b"this is not gzip"),
        (tunnel, None, None),
        (truncated, b"12345", None),
        (flow("GET", "/no-response", None), None, None),
    ]


@asynccontextmanager
async def _ui(tmp_path: Path, password: str | None) -> AsyncIterator[tuple[WebUI, list[int]]]:
    save = tmp_path / "flows.db"
    ids = append_flows(save, _flows())
    options = Options(listen=parse_listen("127.0.0.1:0"), confdir=tmp_path, save=save)
    ctx = ProxyContext.build(options, Resolver(), HookTable())
    addons = AddonChain([], [], AddonOptions())
    web = parse_listen("127.0.0.1:0")
    ui = WebUI(ctx, addons, listening_socket(web), web, password=password)
    await ui.start("127.0.0.1:8080")
    try:
        yield ui, ids
    finally:
        await ui.stop()
        ctx.store.close()
        ctx.certs.close()


def _run(tmp_path: Path, scenario: Scenario, *, password: str | None = None) -> None:
    async def main() -> None:
        async with (
            _ui(tmp_path, password) as (ui, ids),
            httpx.AsyncClient(base_url=ui.url, trust_env=False) as client,
        ):
            await scenario(ui, client, ids)

    asyncio.run(main())


async def _enter(ui: WebUI, client: httpx.AsyncClient) -> None:
    assert (await client.get("/", params={"token": ui.state.token})).status_code == 303


PATHS = ["/", "/static/main.js", "/api/info", "/api/flows", "/api/flows/1", "/no/such", "/login"]


def test_every_route_is_guarded_and_every_answer_has_the_safety_headers(tmp_path: Path) -> None:
    async def scenario(ui: WebUI, client: httpx.AsyncClient, ids: list[int]) -> None:
        answers = [await client.get(path) for path in PATHS]
        answers.append(await client.post("/api/flows/clear"))
        answers.append(
            await client.get(
                "/api/updates",
                headers={
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                    "Sec-WebSocket-Version": "13",
                },
            )
        )
        assert [answer.status_code for answer in answers] == [403] * len(answers)
        await _enter(ui, client)
        answers += [await client.get(path) for path in PATHS]
        assert [answer.status_code for answer in answers[-len(PATHS) :]] == [
            200, 200, 200, 200, 200, 404, 404,  # /login: no password, no login
        ]  # fmt: skip
        for answer in answers:
            assert answer.headers["x-frame-options"] == "DENY", answer.url
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
            assert "cache-control" in answer.headers
            assert answer.headers["server"] == "waylay"
        refused = answers[0]
        assert "text/html" in refused.headers["content-type"]
        assert "<form" not in refused.text  # no password: no login form

    _run(tmp_path, scenario)


def test_the_token_on_any_path_enters_and_keeps_the_rest_of_the_query(tmp_path: Path) -> None:
    async def scenario(ui: WebUI, client: httpx.AsyncClient, ids: list[int]) -> None:
        entered = await client.get(
            "/api/flows", params={"filter": "~m GET", "token": ui.state.token, "limit": "2"}
        )
        assert entered.status_code == 303
        assert entered.headers["location"] == "/api/flows?filter=~m+GET&limit=2"
        assert (await client.post("/", params={"token": ui.state.token})).status_code == 403

    _run(tmp_path, scenario)


def test_two_host_fields_or_none_name_no_host(tmp_path: Path) -> None:
    async def scenario(ui: WebUI, client: httpx.AsyncClient, ids: list[int]) -> None:
        host, port = ui.url.removeprefix("http://").rstrip("/").split(":")
        cookie = f"waylay_web={ui.state.token}"

        async def status(*hosts: str) -> bytes:
            reader, writer = await asyncio.open_connection(host, int(port))
            fields = "".join(f"Host: {each}\r\n" for each in hosts)
            version = "1.1" if hosts else "1.0"  # HTTP/1.0 may leave Host out
            request = f"GET /api/info HTTP/{version}\r\n{fields}Cookie: {cookie}\r\n\r\n"
            writer.write(request.encode())
            line = await reader.readline()
            writer.close()
            return line

        assert (await status(f"{host}:{port}")).startswith(b"HTTP/1.1 200")
        # Refused by aiohttp's parser already (400), or else by the guard (403).
        assert (await status(f"{host}:{port}", f"{host}:{port}"))[9:12] in (b"400", b"403")
        assert (await status())[9:12] == b"403"

    _run(tmp_path, scenario)


def test_logging_in_with_the_password(tmp_path: Path) -> None:
    async def scenario(ui: WebUI, client: httpx.AsyncClient, ids: list[int]) -> None:
        refused = await client.get("/")
        assert refused.status_code == 403 and 'action="/login"' in refused.text
        form = await client.get("/login")
        assert form.status_code == 200 and 'name="password"' in form.text
        started = time.monotonic()
        wrong = await client.post("/login", data={"password": "wrong"})
        assert wrong.status_code == 403 and time.monotonic() - started >= LOGIN_DELAY
        assert (await client.get("/api/info")).status_code == 403
        cross = await client.post(
            "/login", data={"password": PASSWORD}, headers={"Origin": "http://evil.test"}
        )
        assert cross.status_code == 403
        right = await client.post("/login", data={"password": PASSWORD})
        assert right.status_code == 303 and right.headers["location"] == "/"
        assert right.headers["set-cookie"].startswith(f"waylay_web={ui.state.token};")
        assert (await client.get("/api/info")).status_code == 200

    _run(tmp_path, scenario, password=PASSWORD)


def test_info(tmp_path: Path) -> None:
    async def scenario(ui: WebUI, client: httpx.AsyncClient, ids: list[int]) -> None:
        await _enter(ui, client)
        info = (await client.get("/api/info")).json()
        assert info == {
            "version": info["version"],
            "listen": "127.0.0.1:8080",
            "mode": "regular",
            "web": ui.url.removeprefix("http://").rstrip("/"),
            "install_page": "http://waylay.test/",
            "intercept": None,
        }

    _run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("limit=1001", "limit: at most 1000"),
        ("limit=x", "limit: a whole number is needed, not 'x'"),
        ("offset=-1", "offset: a whole number is needed, not '-1'"),
        ("after=1.5", "after: a whole number is needed, not '1.5'"),
    ],
)
def test_bad_page_numbers_are_400(tmp_path: Path, query: str, error: str) -> None:
    async def scenario(ui: WebUI, client: httpx.AsyncClient, ids: list[int]) -> None:
        await _enter(ui, client)
        answer = await client.get(f"/api/flows?{query}")
        assert answer.status_code == 400 and answer.json() == {"error": error}

    _run(tmp_path, scenario)


def test_what_cannot_be_shown_exported_or_replayed(tmp_path: Path) -> None:
    async def scenario(ui: WebUI, client: httpx.AsyncClient, ids: list[int]) -> None:
        await _enter(ui, client)
        not_gzip, tunnel, truncated, no_response = ids
        body = await client.get(f"/api/flows/{not_gzip}/response/body", params={"decoded": "1"})
        assert body.content == b"this is not gzip" and body.headers["x-waylay-decoded"] == "no"
        assert body.headers["content-type"] == "application/octet-stream"
        download = await client.get(f"/api/flows/{not_gzip}/response/body?download=1")
        disposition = f'attachment; filename="waylay-{not_gzip}-response.bin"'
        assert download.headers["content-disposition"] == disposition
        missing = await client.get(f"/api/flows/{no_response}/response/body")
        assert missing.status_code == 404
        assert (await client.get("/api/flows/99999999/request/body")).status_code == 404
        assert (await client.get(f"/api/flows/{not_gzip}/other/body")).status_code == 404
        assert (await client.get("/api/flows/abc")).status_code == 404
        shown = (await client.get(f"/api/flows/{truncated}")).json()
        assert shown["request"]["truncated"] is True
        for flow in (tunnel, truncated):
            export = await client.get(f"/api/flows/{flow}/export", params={"format": "curl"})
            assert export.status_code == 400 and "error" in export.json()
            replay = await client.post(f"/api/flows/{flow}/replay")
            assert replay.status_code == 400 and "error" in replay.json()
        for bad in (b"not json", b"[1, 2]"):
            replay = await client.post(f"/api/flows/{not_gzip}/replay", content=bad)
            assert replay.status_code == 400
        unknown = await client.post(f"/api/flows/{not_gzip}/replay", json={"colour": "red"})
        assert unknown.status_code == 400 and "colour" in unknown.json()["error"]
        assert (await client.delete("/api/flows/99999999")).status_code == 404
        huge = "9" * 30  # more than SQLite's 64 bits
        assert (await client.get(f"/api/flows/{huge}")).status_code == 404
        assert (await client.delete(f"/api/flows/{huge}")).status_code == 404
        assert (await client.get(f"/api/flows?after={huge}")).status_code == 400

    _run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # _flows(): 1 GET /not-gzip 200, 2 CONNECT (no response), 3 POST /upload 201, 4 GET
        # /no-response (none). No status sorts first; ties go by id, both ways.
        ("", [1, 2, 3, 4]),
        ("sort=id&order=desc", [4, 3, 2, 1]),
        ("sort=status", [2, 4, 1, 3]),
        ("sort=status&order=desc", [3, 1, 4, 2]),
        ("sort=status&order=desc&offset=1&limit=2", [1, 4]),
        ("sort=method", [2, 1, 4, 3]),
        ("sort=path&order=desc", [3, 1, 4, 2]),
        ("sort=status&filter=~m GET", [4, 1]),
        ("sort=status&order=desc&after=2", [3, 4]),
    ],
)
def test_the_list_sorts_by_a_column_then_by_id(
    tmp_path: Path, query: str, expected: list[int]
) -> None:
    async def scenario(ui: WebUI, client: httpx.AsyncClient, ids: list[int]) -> None:
        await _enter(ui, client)
        answer = (await client.get(f"/api/flows?{query}")).json()
        assert [flow["id"] for flow in answer["flows"]] == [ids[n - 1] for n in expected]

    _run(tmp_path, scenario)


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (
            "sort=colour",
            "sort: one of id, started, method, host, path, status, type, size, duration,"
            " not 'colour'",
        ),
        ("sort=status&order=up", "order: asc or desc, not 'up'"),
    ],
)
def test_an_unknown_sort_is_400(tmp_path: Path, query: str, error: str) -> None:
    async def scenario(ui: WebUI, client: httpx.AsyncClient, ids: list[int]) -> None:
        await _enter(ui, client)
        answer = await client.get(f"/api/flows?{query}")
        assert answer.status_code == 400 and answer.json() == {"error": error}

    _run(tmp_path, scenario)
