"""`waylay web` as a user runs it: a real process, real clients through its proxy, and its UI's
API driven over HTTP (httpx) and WebSocket (aiohttp), as docs/web.md promises.

The safety rules first (a token, a cookie, the Host, the Origin, never through the proxy);
then the stored flows: listed and filtered, pushed as they are stored, shown in detail with
their bodies, exported as HAR and as a curl command that runs, replayed, deleted, cleared,
and a thousand of them paged quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from waylay.flow import Flow, Request, Response, Timestamps
from waylay.headers import Headers
from waylay.store.bulk import append_flows

from .clients import Curl
from .clients import curl as run_curl
from .origin import ORIGIN_HOST, Origin
from .waylay_process import RunWaylay, StartWaylay, WaylayProcess, clean_env

HTML = b"<!doctype html><title>gzip</title><p>" + b"compressible text " * 200 + b"</p>"


class _GzipHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = gzip.compress(HTML)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gzip_origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GzipHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def web(start_web: StartWaylay) -> WaylayProcess:
    return start_web()


@contextlib.contextmanager
def _ui(process: WaylayProcess) -> Iterator[httpx.Client]:
    """A client of the UI that went in with the token, as a browser does (cookie set)."""
    with httpx.Client(base_url=process.web_url, trust_env=False, timeout=10.0) as client:
        entered = client.get("/", params={"token": process.web_token})
        assert entered.status_code == 303
        yield client


def _through(process: WaylayProcess, home: Path) -> Curl:
    def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
        return run_curl(process.url, *args, home=home)

    return curl


def _wait_for_total(client: httpx.Client, total: int, query: str = "") -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        page = client.get(f"/api/flows?{query}").json()
        if page["total"] >= total or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


def _ws_url(process: WaylayProcess) -> str:
    return process.web_url.replace("http://", "ws://") + "api/updates"


# -- safety --------------------------------------------------------------------------------


def test_the_ready_lines_name_the_proxy_then_the_ui_with_its_token(web: WaylayProcess) -> None:
    lines = web.stderr_text().splitlines()
    assert lines[0] == f"waylay listening on 127.0.0.1:{web.port}"
    assert lines[1] == f"waylay web UI at {web.web_url}?token={web.web_token}"
    assert web.web_url.startswith("http://127.0.0.1:") and len(web.web_token) >= 32


def test_without_the_token_or_its_cookie_everything_is_403(web: WaylayProcess) -> None:
    with httpx.Client(base_url=web.web_url, trust_env=False) as client:
        for path in ("/", "/api/flows", "/api/info", "/static/main.js", "/no/such/path"):
            assert client.get(path).status_code == 403, path
        assert client.post("/api/flows/clear").status_code == 403
        assert client.get("/", params={"token": "not-the-token"}).status_code == 403
        refused = client.get("/api/flows")
        assert refused.json() == {"error": "open the URL with the token waylay printed at start-up"}
        client.cookies.set("waylay_web", "not-the-token")
        assert client.get("/api/flows").status_code == 403


def test_the_token_url_sets_the_cookie_and_redirects_to_the_page(web: WaylayProcess) -> None:
    with httpx.Client(base_url=web.web_url, trust_env=False) as client:
        entered = client.get("/", params={"token": web.web_token})
        assert entered.status_code == 303
        assert entered.headers["location"] == "/"
        cookie = entered.headers["set-cookie"]
        assert cookie.startswith(f"waylay_web={web.web_token};")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert attributes == {"httponly", "path=/", "samesite=strict"}
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["x-frame-options"] == "DENY"
        assert client.get("/api/info").status_code == 200


def test_a_foreign_host_is_refused_even_with_the_cookie(web: WaylayProcess) -> None:
    port = web.web_url.rsplit(":", 1)[1].rstrip("/")
    with _ui(web) as client:
        for host in (f"evil.test:{port}", f"127.0.0.1.evil.test:{port}", "127.0.0.1", "evil.test"):
            refused = client.get("/api/flows", headers={"Host": host})
            assert refused.status_code == 403, host
        assert client.get("/api/flows", headers={"Host": f"localhost:{port}"}).status_code == 200


def test_a_change_or_a_socket_from_another_origin_is_refused(
    web: WaylayProcess, origin: Origin, home: Path
) -> None:
    _through(web, home)(origin.url("/echo/kept"))
    with _ui(web) as client:
        _wait_for_total(client, 1)
        cross = client.post("/api/flows/clear", headers={"Origin": "http://evil.test"})
        assert cross.status_code == 403
        assert client.get("/api/flows").json()["total"] == 1
        own = client.post("/api/flows/clear", headers={"Origin": web.web_url.rstrip("/")})
        assert own.status_code == 204
        cookies = {"waylay_web": web.web_token}

    async def socket(origin: str) -> int:
        async with aiohttp.ClientSession(cookies=cookies) as session:
            try:
                async with session.ws_connect(_ws_url(web), origin=origin):
                    return 101
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

    assert asyncio.run(socket("http://evil.test")) == 403
    assert asyncio.run(socket(web.web_url.rstrip("/"))) == 101


def test_the_ui_is_not_reachable_through_the_proxy(web: WaylayProcess, home: Path) -> None:
    through = _through(web, home)(
        "-i", "-b", f"waylay_web={web.web_token}", web.web_url + "api/flows"
    )
    head = through.stdout.split(b"\r\n\r\n")[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 403")
    assert "x-waylay-error: web-ui-not-through-proxy" in head


# -- the stored flows ----------------------------------------------------------------------


def test_flows_appear_and_a_filter_narrows_them(
    web: WaylayProcess, origin: Origin, home: Path
) -> None:
    curl = _through(web, home)
    curl(origin.url("/echo/one"))
    curl("--data-binary", "x=1", origin.url("/echo/two"))
    curl(origin.url("/status/404"))
    with _ui(web) as client:
        page = _wait_for_total(client, 3)
        assert page["total"] == 3
        assert [f["path"] for f in page["flows"]] == ["/echo/one", "/echo/two", "/status/404"]
        first = page["flows"][0]
        assert first["url"] == origin.url("/echo/one")
        assert (first["method"], first["status"], first["host"]) == ("GET", 200, ORIGIN_HOST)
        assert first["content_type"] == "application/json"
        posts = client.get("/api/flows", params={"filter": "~m POST"}).json()
        assert posts["total"] == 1 and posts["flows"][0]["path"] == "/echo/two"
        not_found = client.get("/api/flows", params={"filter": "~c 404 | ~u one"}).json()
        assert [f["path"] for f in not_found["flows"]] == ["/echo/one", "/status/404"]
        bad = client.get("/api/flows", params={"filter": "~m POST & (~c"})
        assert bad.status_code == 400
        assert set(bad.json()) == {"error", "column"} and bad.json()["column"] > 1


def test_the_updates_socket_pushes_each_stored_flow(
    web: WaylayProcess, origin: Origin, home: Path
) -> None:
    curl = _through(web, home)

    async def scenario() -> list[dict[str, Any]]:
        cookies = {"waylay_web": web.web_token}
        async with (
            aiohttp.ClientSession(cookies=cookies) as session,
            session.ws_connect(_ws_url(web)) as ws,
        ):
            await asyncio.to_thread(curl, origin.url("/echo/pushed"))
            await asyncio.to_thread(curl, "-X", "PUT", origin.url("/echo/again"))
            return [await ws.receive_json(timeout=5), await ws.receive_json(timeout=5)]

    first, second = asyncio.run(scenario())
    assert first["type"] == second["type"] == "flow"
    assert first["flow"]["path"] == "/echo/pushed" and second["flow"]["method"] == "PUT"
    assert second["flow"]["id"] > first["flow"]["id"]
    with _ui(web) as client:
        shown = client.get(f"/api/flows/{first['flow']['id']}")
        assert shown.status_code == 200  # told once it is stored: it is there


def test_detail_and_the_decoded_body_of_a_gzip_response(
    web: WaylayProcess, gzip_origin: str, home: Path
) -> None:
    _through(web, home)("-H", "X-Test: detail", gzip_origin + "/page")
    with _ui(web) as client:
        (summary,) = _wait_for_total(client, 1)["flows"]
        flow = client.get(f"/api/flows/{summary['id']}").json()
        assert flow["response"]["status"] == 200
        assert ["Content-Encoding", "gzip"] in flow["response"]["headers"]
        assert ["X-Test", "detail"] in flow["request"]["headers"]
        assert flow["client"][0] == "127.0.0.1" and flow["server"][0] == "127.0.0.1"
        assert flow["timestamps"]["end"] >= flow["timestamps"]["start"] > 0
        assert flow["response"]["truncated"] is False
        path = f"/api/flows/{summary['id']}/response/body"
        raw = client.get(path)
        assert raw.headers["content-type"] == "text/html; charset=utf-8"
        assert "content-encoding" not in raw.headers
        assert raw.content == gzip.compress(HTML) or gzip.decompress(raw.content) == HTML
        assert "sandbox" in raw.headers["content-security-policy"]
        decoded = client.get(path, params={"decoded": "1"})
        assert decoded.content == HTML and decoded.headers["x-waylay-decoded"] == "yes"
        download = client.get(path, params={"download": "1"})
        assert download.headers["content-disposition"].startswith("attachment;")
        assert client.get(f"/api/flows/{summary['id'] + 1000}").status_code == 404


def test_the_ca_certificate_downloads_from_the_ui(web: WaylayProcess, confdir: Path) -> None:
    with _ui(web) as client:
        pem = client.get("/ca/pem")
        assert (
            pem.status_code == 200 and pem.content == (confdir / "waylay-ca-cert.pem").read_bytes()
        )
        assert "attachment" in pem.headers["content-disposition"]
        assert client.get("/ca/cer").content == (confdir / "waylay-ca-cert.cer").read_bytes()
        assert client.get("/ca/p12").status_code == 200
        assert client.get("/ca/key").status_code == 404
    # Behind the token like everything else.
    assert httpx.get(f"{web.web_url}ca/pem", trust_env=False).status_code == 403


def test_har_export_is_json_with_the_entries(
    web: WaylayProcess, origin: Origin, home: Path
) -> None:
    curl = _through(web, home)
    curl(origin.url("/echo/har-1"))
    curl("--data-binary", "posted", origin.url("/echo/har-2"))
    with _ui(web) as client:
        _wait_for_total(client, 2)
        har = client.get("/api/har")
        assert har.headers["content-disposition"] == 'attachment; filename="waylay.har"'
        entries = json.loads(har.content)["log"]["entries"]
        assert [e["request"]["url"] for e in entries] == [
            origin.url("/echo/har-1"),
            origin.url("/echo/har-2"),
        ]
        assert entries[1]["request"]["postData"]["text"] == "posted"
        only = json.loads(client.get("/api/har", params={"filter": "~m POST"}).content)
        assert len(only["log"]["entries"]) == 1


def test_the_exported_curl_command_reproduces_the_request(
    web: WaylayProcess, origin: Origin, home: Path, tmp_path: Path
) -> None:
    body = b'it\'s $(touch pwned) `and` "this"\n'
    url = f"http://127.0.0.1:{origin.port}/echo/export?a=1&b=$(x)"
    _through(web, home)("-H", "X-Quote: it's `here`", "--data-binary", body, url)
    with _ui(web) as client:
        (summary,) = _wait_for_total(client, 1)["flows"]
        export = client.get(f"/api/flows/{summary['id']}/export", params={"format": "curl"})
        assert export.headers["content-type"].startswith("text/plain")
        command = export.text.strip()
        assert client.get(f"/api/flows/{summary['id']}/export?format=nope").status_code == 400
        python = client.get(f"/api/flows/{summary['id']}/export", params={"format": "httpx"})
        assert python.text.startswith("import httpx")
    original = origin.requests[-1]
    workdir = tmp_path / "run"
    workdir.mkdir()
    run = subprocess.run(
        ["sh", "-c", command + " --silent --output /dev/null --max-time 10"],
        cwd=workdir,
        env=clean_env(home),
        capture_output=True,
        timeout=20,
    )
    assert run.returncode == 0, run.stderr
    assert list(workdir.iterdir()) == []
    again = origin.requests[-1]
    assert again is not original
    assert (again.method, again.target, again.headers) == (
        original.method,
        original.target,
        original.headers,
    )
    assert again.body_sha256 == hashlib.sha256(body).hexdigest() == original.body_sha256


def test_replay_creates_a_new_flow_and_an_edited_one(
    web: WaylayProcess, origin: Origin, home: Path
) -> None:
    _through(web, home)("--data-binary", "first", origin.url("/echo/replay"))
    with _ui(web) as client:
        (summary,) = _wait_for_total(client, 1)["flows"]
        replayed = client.post(f"/api/flows/{summary['id']}/replay")
        assert replayed.status_code == 200
        new_id = replayed.json()["id"]
        assert new_id > summary["id"]
        # Answered once the flow is stored: it is there at once.
        again = client.get(f"/api/flows/{new_id}").json()
        assert (again["method"], again["path"], again["status"]) == ("POST", "/echo/replay", 200)
        assert again["client"] == ["replay", 0]
        edited = client.post(
            f"/api/flows/{summary['id']}/replay",
            json={"method": "PUT", "url": origin.url("/echo/edited"), "body": "changed body"},
        )
        assert edited.status_code == 200
        shown = client.get(f"/api/flows/{edited.json()['id']}").json()
        assert (shown["method"], shown["path"]) == ("PUT", "/echo/edited")
        assert ["Content-Length", "12"] in shown["request"]["headers"]
        bad = client.post(f"/api/flows/{summary['id']}/replay", json={"url": "ftp://x/"})
        assert bad.status_code == 400 and "error" in bad.json()
        assert client.get("/api/flows").json()["total"] == 3
    sent = [(r.method, r.path, r.body_sha256) for r in origin.requests]
    assert sent == [
        ("POST", "/echo/replay", hashlib.sha256(b"first").hexdigest()),
        ("POST", "/echo/replay", hashlib.sha256(b"first").hexdigest()),
        ("PUT", "/echo/edited", hashlib.sha256(b"changed body").hexdigest()),
    ]


def test_delete_and_clear(web: WaylayProcess, origin: Origin, home: Path) -> None:
    curl = _through(web, home)
    for n in range(3):
        curl(origin.url(f"/echo/{n}"))

    async def told(change: str) -> dict[str, Any]:
        cookies = {"waylay_web": web.web_token}
        async with (
            aiohttp.ClientSession(cookies=cookies, base_url=web.web_url) as session,
            session.ws_connect("/api/updates") as ws,
        ):
            method, path = change.split(" ")
            async with session.request(method, path) as answer:
                assert answer.status == 204
            message: dict[str, Any] = await ws.receive_json(timeout=5)
            return message

    with _ui(web) as client:
        first, second, third = _wait_for_total(client, 3)["flows"]
        assert asyncio.run(told(f"DELETE /api/flows/{second['id']}")) == {
            "type": "deleted",
            "id": second["id"],
        }
        assert client.get(f"/api/flows/{second['id']}").status_code == 404
        assert client.delete(f"/api/flows/{second['id']}").status_code == 404
        remaining = client.get("/api/flows").json()
        assert [f["id"] for f in remaining["flows"]] == [first["id"], third["id"]]
        assert asyncio.run(told("POST /api/flows/clear")) == {"type": "cleared"}
        assert client.get("/api/flows").json() == {"total": 0, "flows": []}
        curl(origin.url("/echo/after"))
        (after,) = _wait_for_total(client, 1)["flows"]
        assert after["id"] > third["id"]  # ids are never reused


def _stored_flows(count: int) -> Iterator[tuple[Flow, bytes | None, bytes | None]]:
    for n in range(count):
        method = "POST" if n % 10 == 0 else "GET"
        request = Request(method, "http", "api.example.test", 80, f"/items/{n}", "HTTP/1.1",
                          Headers([(b"Host", b"api.example.test")]))  # fmt: skip
        flow = Flow(("127.0.0.1", 40000 + n), request,
                    timestamps=Timestamps(start=1000.0 + n, end=1000.5 + n))  # fmt: skip
        flow.response = Response(200, "OK", "HTTP/1.1",
                                 Headers([(b"Content-Type", b"application/json")]))  # fmt: skip
        yield flow, None, b'{"n": %d}' % n


def test_a_thousand_stored_flows_page_quickly(start_web: StartWaylay, tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    ids = append_flows(path, _stored_flows(1000))
    web = start_web("--save", str(path))
    with _ui(web) as client:
        started = time.monotonic()
        page = client.get("/api/flows", params={"offset": 500, "limit": 100}).json()
        first_page_time = time.monotonic() - started
        assert page["total"] == 1000
        assert [f["id"] for f in page["flows"]] == ids[500:600]
        pages, after, started = [], 0, time.monotonic()
        while True:
            chunk = client.get("/api/flows", params={"after": after, "limit": 1000}).json()
            if not chunk["flows"]:
                break
            pages.append(chunk["flows"])
            after = chunk["flows"][-1]["id"]
        whole_time = time.monotonic() - started
        assert [f["id"] for f in pages[0]] == ids
        posts = client.get("/api/flows", params={"filter": "~m POST", "limit": 1000}).json()
        assert posts["total"] == 100
        later = client.get("/api/flows", params={"after": ids[989], "offset": 5}).json()
        assert [f["id"] for f in later["flows"]] == ids[995:]
        assert later["total"] == 1000
        assert client.get("/api/flows", params={"limit": 1001}).status_code == 400
        assert client.get("/api/flows", params={"offset": "-1"}).status_code == 400
    assert first_page_time < 1.0 and whole_time < 2.0, (first_page_time, whole_time)


# -- the command ---------------------------------------------------------------------------


def test_dump_lines_are_printed_and_quiet_turns_them_off(
    start_web: StartWaylay, origin: Origin, home: Path
) -> None:
    loud = start_web()
    _through(loud, home)(origin.url("/echo/shown"))
    assert loud.wait_for_stdout("GET " + origin.url("/echo/shown") + " 200")
    quiet = start_web("--quiet")
    _through(quiet, home)(origin.url("/echo/hidden"))
    with _ui(quiet) as client:
        assert _wait_for_total(client, 1)["total"] == 1  # recorded, not printed
    assert quiet.stdout_lines() == []


def test_sigint_closes_the_pages_and_exits_0(web: WaylayProcess) -> None:
    async def scenario() -> int | None:
        cookies = {"waylay_web": web.web_token}
        async with (
            aiohttp.ClientSession(cookies=cookies) as session,
            session.ws_connect(_ws_url(web)) as ws,
        ):
            web.send_signal(signal.SIGINT)
            message = await ws.receive(timeout=5)
            assert message.type is aiohttp.WSMsgType.CLOSE
            return ws.close_code

    assert asyncio.run(scenario()) == 1001
    assert web.proc.wait(timeout=5) == 0
    assert "Traceback" not in web.stderr_text()


def test_bad_web_flags_are_status_2_with_one_line(run_waylay: RunWaylay, confdir: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        cases = {
            ("--web", "localhost"): "--web 'localhost': expected HOST:PORT",
            ("--web", f"127.0.0.1:{port}"): f"cannot listen on 127.0.0.1:{port}: the address "
            "is already in use",
            ("--web", "127.0.0.1:9", "--listen", "127.0.0.1:9"): "--web and --listen both name",
            ("--web-password", ""): "--web-password: an empty password",
        }
        for args, message in cases.items():
            result = run_waylay("web", "--confdir", str(confdir), "--listen", "127.0.0.1:0", *args)
            assert result.returncode == 2, (args, result.stderr)
            assert message in result.stderr and len(result.stderr.splitlines()) == 1, args
    finally:
        taken.close()
    assert run_waylay("web", "--help").returncode == 0
