"""The web UI in a real browser: headless Chromium (Debian's) driven by Playwright, against a
real ``waylay web`` process, its proxy port carrying real requests to the test origin.

Each test is one promise of the issue: flows appear live, the filter narrows them, the detail
shows each kind of body, an intercepted request edited in the page is what the origin
receives, replay and HAR export work, 100,000 stored flows scroll with only the rows in sight in
the DOM, and the UI is closed to a request without its token and to the proxy port. Stored
flows are written into the ``--save`` database before waylay starts (`append_flows`), so a test
that needs many or odd flows does not wait for them to be proxied.

Playwright launches the system chromium (``executable_path``) with the flags of
test_browser.py: no browser is ever downloaded, and nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import re
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import sync_playwright

from waylay.flow import Flow, Request, Response, Timestamps
from waylay.headers import Headers
from waylay.store.bulk import append_flows

from .origin import Origin
from .pki import TestCA
from .test_browser import CHROMIUM_FLAGS
from .tls_clients import curl_https
from .tls_origin import TlsOrigin
from .waylay_process import StartWaylay, WaylayProcess

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "src" / "waylay" / "web" / "static"
# The list's row height and overscan (flowlist.js): the DOM may hold the rows in sight and
# this many on each side.
ROW_HEIGHT = 24
OVERSCAN = 8

StoredFlow = tuple[Flow, bytes | None, bytes | None]


# --- flows to store before waylay starts ---------------------------------------------------


def stored_flow(
    path: str,
    *,
    host: str = "api.example.test",
    method: str = "GET",
    request_headers: Iterable[tuple[str, str]] = (),
    response_headers: Iterable[tuple[str, str]] = (("Content-Type", "text/plain"),),
    status: int = 200,
    started: float = 1_700_000_000.0,
) -> Flow:
    fields = [(b"Host", host.encode()), *((n.encode(), v.encode()) for n, v in request_headers)]
    request = Request(method, "http", host, 80, path, "HTTP/1.1", Headers(fields))
    flow = Flow(
        ("127.0.0.1", 50000),
        request,
        server_address=("127.0.0.1", 80),
        timestamps=Timestamps(start=started, end=started + 0.042),
    )
    response_fields = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in response_headers]
    flow.response = Response(status, "OK", "HTTP/1.1", Headers(response_fields))
    return flow


def png(width: int = 8, height: int = 6) -> bytes:
    """A real PNG, red, that a browser decodes to ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --- waylay web and the browser ------------------------------------------------------------


@dataclass
class WebUI:
    process: WaylayProcess
    base: str
    token: str
    database: Path

    @property
    def login_url(self) -> str:
        return f"{self.base}/?token={self.token}"

    @property
    def proxy_url(self) -> str:
        return self.process.url

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the API with the token's cookie, as the page does; its JSON, or None."""
        with httpx.Client(base_url=self.base, follow_redirects=True, timeout=10) as client:
            client.get(f"/?token={self.token}")
            response = client.request(method, path)
            response.raise_for_status()
            return response.json() if response.content else None


StartUI = Callable[..., WebUI]


@pytest.fixture
def start_ui(start_web: StartWaylay, tmp_path: Path) -> StartUI:
    """Start ``waylay web`` saving to a database that holds ``flows`` beforehand."""

    def start(*extra: str, flows: Iterable[StoredFlow] = ()) -> WebUI:
        database = tmp_path / "flows.db"
        stored = list(flows)
        for flow, request_body, response_body in stored:
            # The sizes the proxy records as the bodies pass.
            flow.request_body_size = len(request_body or b"")
            flow.response_body_size = len(response_body or b"")
        if stored:
            append_flows(database, stored)
        process = start_web("--save", str(database), *extra)
        return WebUI(process, process.web_url.rstrip("/"), process.web_token, database)

    return start


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (make test installs it as root)"
    # Playwright adds --headless itself; the rest are test_browser.py's.
    flags = [flag for flag in CHROMIUM_FLAGS if flag != "--headless"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=flags)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context's page; an uncaught exception in the page fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"the page threw: {errors}"


def open_ui(page: Any, ui: WebUI) -> None:
    page.goto(ui.login_url)
    page.wait_for_selector("#connection[data-state=live]")


def rows(page: Any) -> Any:
    return page.locator(".flow-row[data-id]")


def wait_for_count(page: Any, text: str) -> None:
    page.wait_for_function(
        "text => document.getElementById('flow-count').textContent === text", arg=text
    )


def wait_for_paths(page: Any, *paths: str) -> None:
    """Wait until the list's rows show exactly these paths, in this order."""
    page.wait_for_function(
        """paths => JSON.stringify([...document.querySelectorAll('.flow-row .col-path')]
            .map(cell => cell.textContent)) === JSON.stringify(paths)""",
        arg=list(paths),
    )


def proxied(ui: WebUI, method: str, url: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(proxy=ui.proxy_url, timeout=20) as client:
        return client.request(method, url, **kwargs)


# --- the done-when list ------------------------------------------------------------


def test_flows_appear_live_without_a_reload(start_ui: StartUI, origin: Origin, page: Any) -> None:
    ui = start_ui()
    open_ui(page, ui)
    wait_for_count(page, "0 flows")
    for n in range(3):
        assert proxied(ui, "GET", origin.url(f"/echo/live-{n}")).status_code == 200
    wait_for_paths(page, "/echo/live-0", "/echo/live-1", "/echo/live-2")
    wait_for_count(page, "3 flows")
    assert rows(page).first.locator(".col-status").text_content() == "200"


def test_a_long_flow_stored_after_later_ones_still_appears_live(
    start_ui: StartUI, origin: Origin, page: Any
) -> None:
    # A flow's id is taken when it is sent on, and it is stored when it ends: the slow one
    # has the lowest id and is stored last.
    ui = start_ui()
    open_ui(page, ui)
    wait_for_count(page, "0 flows")
    with concurrent.futures.ThreadPoolExecutor(1) as slow:
        late = slow.submit(proxied, ui, "GET", origin.url("/delay/late?s=1.5"))
        time.sleep(0.3)
        for n in range(2):
            proxied(ui, "GET", origin.url(f"/echo/early-{n}"))
        wait_for_paths(page, "/echo/early-0", "/echo/early-1")
        assert late.result().status_code == 200
    wait_for_paths(page, "/delay/late?s=1.5", "/echo/early-0", "/echo/early-1")
    wait_for_count(page, "3 flows")


def test_a_dropped_websocket_catches_up_with_what_it_missed(
    start_ui: StartUI, origin: Origin, page: Any
) -> None:
    ui = start_ui()
    open_ui(page, ui)
    # Cut the feed and keep it cut: every reconnection attempt fails at once.
    page.evaluate(
        """() => {
            window.RealWebSocket = window.WebSocket;
            window.WebSocket = class extends EventTarget {
                constructor() {
                    super();
                    setTimeout(() => this.dispatchEvent(new Event("close")), 0);
                }
                close() {}
            };
            waylay.updates.drop();
        }"""
    )
    page.wait_for_selector("#connection[data-state=reconnecting]")
    proxied(ui, "GET", origin.url("/echo/while-away"))
    time.sleep(0.3)
    assert rows(page).count() == 0
    page.evaluate(
        "() => { window.WebSocket = window.RealWebSocket; waylay.updates.reconnectNow(); }"
    )
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_selector(".flow-row[data-id]:has-text('/echo/while-away')")


def test_the_filter_narrows_the_list_and_a_bad_one_is_shown_where_it_fails(
    start_ui: StartUI, page: Any
) -> None:
    ui = start_ui(
        flows=[
            (stored_flow("/one", host="a.example.test"), None, b"1"),
            (stored_flow("/two", host="b.example.test"), None, b"2"),
            (stored_flow("/three", host="a.example.test", status=404), None, b"3"),
        ]
    )
    open_ui(page, ui)
    wait_for_count(page, "3 flows")
    page.fill("#filter", "~d a.example.test & !~c 404")
    page.press("#filter", "Enter")
    wait_for_count(page, "1 matching")
    wait_for_paths(page, "/one")

    page.fill("#filter", "~d a.example.test & ~q (")
    page.press("#filter", "Enter")
    problem = page.locator("#filter-problem .filter-error")
    problem.wait_for()
    assert page.get_attribute("#filter", "aria-invalid") == "true"
    assert re.search(r"\(column \d+\)", problem.text_content() or "")
    # The caret stands under the column the server named.
    caret_line = (problem.locator("pre").text_content() or "").split("\n")[1]
    column = int(re.search(r"column (\d+)", problem.text_content() or "")[1])  # type: ignore[index]
    assert caret_line == " " * (column - 1) + "^"
    # Nothing else broke: the list still shows what the last good filter matched.
    assert rows(page).count() == 1

    page.fill("#filter", "")
    page.press("#filter", "Enter")
    wait_for_paths(page, "/one", "/two", "/three")
    assert page.locator("#filter-problem").text_content() == ""

    # The keyboard: j/k move the selection, Enter opens the detail, Escape closes it.
    page.locator(".flow-scroller").focus()
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_selector("#detail .detail-title:has-text('/two')")
    assert page.locator(".flow-row.selected .col-path").text_content() == "/two"
    page.keyboard.press("k")
    page.wait_for_selector("#detail .detail-title:has-text('/one')")
    page.keyboard.press("Escape")
    page.wait_for_selector("#detail", state="hidden")


def test_sorting_by_id_both_ways_and_by_a_column(start_ui: StartUI, page: Any) -> None:
    sizes = {"/small": b"x", "/large": b"x" * 5000, "/medium": b"x" * 300}
    ui = start_ui(flows=[(stored_flow(path), None, body) for path, body in sizes.items()])
    open_ui(page, ui)
    wait_for_count(page, "3 flows")

    wait_for_paths(page, "/small", "/large", "/medium")
    page.click(".flow-header .col-time")
    wait_for_paths(page, "/medium", "/large", "/small")
    page.click(".flow-header .col-size")
    wait_for_paths(page, "/small", "/medium", "/large")
    assert page.get_attribute(".flow-header .col-size", "aria-sort") == "ascending"
    page.click(".flow-header .col-size")
    wait_for_paths(page, "/large", "/medium", "/small")
    assert page.get_attribute(".flow-header .col-size", "aria-sort") == "descending"


def test_more_than_five_thousand_flows_sort_by_status_on_the_server(
    start_ui: StartUI, page: Any
) -> None:
    count = 6_000

    def flows() -> Iterator[StoredFlow]:
        for n in range(count):
            # Statuses 200-599, scattered over the ids.
            yield stored_flow(f"/item/{n + 1}", status=200 + (n * 37) % 400), None, b"x"

    ui = start_ui(flows=flows())
    open_ui(page, ui)
    wait_for_count(page, "6,000 flows")

    def statuses() -> list[int]:
        page.wait_for_function(
            "() => document.querySelectorAll('.flow-row.loading').length === 0"
            " && document.querySelectorAll('.flow-row[data-id]').length > 0"
        )
        cells = page.locator(".flow-row[data-id] .col-status").all_text_contents()
        return [int(cell) for cell in cells]

    for order, first in (("ascending", 200), ("descending", 599)):
        page.click(".flow-header .col-status")
        page.wait_for_function(
            "order => document.querySelector('.flow-header .col-status')"
            ".getAttribute('aria-sort') === order",
            arg=order,
        )
        page.wait_for_function(
            "first => document.querySelector('.flow-row[data-position=\"0\"] .col-status')"
            "?.textContent === String(first)",
            arg=first,
        )
        shown = statuses()
        assert shown == sorted(shown, reverse=order == "descending"), shown
    assert "narrow" not in (page.locator("body").text_content() or "")


def test_the_detail_shows_pretty_json_an_image_and_a_gzip_decoded_text(
    start_ui: StartUI, page: Any
) -> None:
    document = {"name": "waylay", "tags": ["proxy", "web"], "nested": {"deep": {"deeper": 1}}}
    binary = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB and a bit: cut in the view
    ui = start_ui(
        flows=[
            (
                stored_flow("/data.json", response_headers=[("Content-Type", "application/json")]),
                None,
                json.dumps(document).encode(),
            ),
            (
                stored_flow("/pixel.png", response_headers=[("Content-Type", "image/png")]),
                None,
                png(8, 6),
            ),
            (
                stored_flow(
                    "/zipped.txt",
                    response_headers=[
                        ("Content-Type", "text/plain; charset=utf-8"),
                        ("Content-Encoding", "gzip"),
                    ],
                ),
                None,
                gzip.compress(b"hello from a gzip body\n"),
            ),
            (
                stored_flow(
                    "/blob",
                    response_headers=[("Content-Type", "application/octet-stream")],
                ),
                None,
                binary,
            ),
            (
                stored_flow(
                    "/upload",
                    method="POST",
                    request_headers=[("Content-Type", "multipart/form-data; boundary=XyZ")],
                ),
                b'--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\n<i>a title</i>'
                b'\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.bin"'
                b"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\xff\r\n--XyZ--\r\n",
                b"ok",
            ),
            (
                stored_flow(
                    "/<script>window.pwned=1</script>?q=<b>x</b>&n=2",
                    method="POST",
                    request_headers=[
                        ("X-Evil", '<img src=x onerror="window.pwned=1">'),
                        ("Content-Type", "application/x-www-form-urlencoded"),
                    ],
                    response_headers=[("Content-Type", "text/html")],
                ),
                b"field=%3Cb%3Ebold%3C%2Fb%3E&other=2",
                b"<p onclick='window.pwned=1'>hi</p><script>window.pwned=1</script>",
            ),
        ]
    )
    open_ui(page, ui)
    wait_for_count(page, "6 flows")

    def open_response(path_text: str) -> Any:
        rows(page).filter(has_text=path_text).first.click()
        page.wait_for_selector(f"#detail .detail-title:has-text('{path_text}')")
        page.click("#detail button[data-tab=response]")
        return page.locator("#detail .body-content")

    body = open_response("/data.json")
    body.locator(".json-view").wait_for()
    text = body.inner_text()
    assert '"name": "waylay",' in text and '"proxy",' in text
    assert '"deep": { 1 key }' in text and '"deeper"' not in text  # folded below two levels
    assert body.locator(".json-line").first.inner_text() == "▾{"
    # Unfold "deep", then fold the whole document.
    body.locator(".json-node .json-node .json-node .json-toggle").first.click()
    assert '"deeper": 1' in body.inner_text()
    body.locator(".json-toggle").first.click()
    assert body.inner_text().strip() == "▸{ 3 keys }"

    body = open_response("/pixel.png")
    image = body.locator("img.body-image")
    image.wait_for()
    page.wait_for_function("() => document.querySelector('img.body-image')?.complete")
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [8, 6]
    assert "decoded=1" in (image.get_attribute("src") or "")

    body = open_response("/zipped.txt")
    body.locator("pre", has_text="hello from a gzip body").wait_for()
    # Raw, the bytes are gzip's: binary, so a hex dump starting with its magic number.
    page.locator("#detail .body-bar input[type=checkbox]").uncheck()
    body.locator("pre.hex").wait_for()
    assert (body.locator("pre.hex").text_content() or "").startswith("00000000  1f 8b")

    body = open_response("/blob")
    body.locator("pre.hex").wait_for()
    assert (body.locator("pre.hex").text_content() or "").startswith("00000000  00 01 02 03")
    cut = body.locator(".truncated a")
    assert "download=1" in (cut.get_attribute("href") or "")
    assert "cut at 1.0 MiB of 3.0 MiB" in (body.locator(".truncated").last.text_content() or "")
    assert "showing the first 1.0 MiB" in (page.locator("#detail .body-note").text_content() or "")

    # Hostile bytes stay text: none of the markup in path, headers or bodies ran or was parsed.
    rows(page).filter(has_text="<script>").first.click()
    page.wait_for_selector("#detail .detail-title:has-text('<script>window.pwned=1</script>')")
    page.click("#detail button[data-tab=request]")
    request = page.locator("#detail .message.request")
    request.locator(".pairs.headers", has_text='<img src=x onerror="window.pwned=1">').wait_for()
    query = request.locator(".pairs.query")
    assert query.locator("td").all_text_contents() == ["<b>x</b>", "2"]
    request.locator(".pairs", has_text="<b>bold</b>").wait_for()  # the form body, as a table
    page.click("#detail button[data-tab=response]")
    page.locator("#detail pre.lang-html", has_text="window.pwned=1").wait_for()
    assert page.evaluate("() => window.pwned") is None
    assert page.locator("img[src=x], #detail script, #detail p[onclick]").count() == 0

    rows(page).filter(has_text="/upload").first.click()
    page.click("#detail button[data-tab=request]")
    parts = page.locator("#detail .body-content .pairs")
    parts.wait_for()
    assert parts.locator("th").all_text_contents() == ["title", "file"]
    assert parts.locator("td").all_text_contents() == [
        "<i>a title</i>",
        'file "a.bin", application/octet-stream, 3 B',
    ]

    page.click("#detail button[data-tab=timing]")
    assert "42 ms" in (page.locator("#detail .timing").text_content() or "")
    page.click("#detail button[data-tab=connection]")
    assert "127.0.0.1:50000" in (page.locator("#detail .connection").text_content() or "")


def test_an_intercepted_https_flow_shows_its_tls_and_its_timing_bars(
    start_ui: StartUI,
    tls_origin: TlsOrigin,
    pki: TestCA,
    confdir: Path,
    home: Path,
    page: Any,
) -> None:
    ui = start_ui("--upstream-ca", str(pki.cert_path))
    fetched = curl_https(
        ui.process, tls_origin.url("/bytes/300", host="api.example.test"), confdir, home
    )
    assert fetched.returncode == 0, fetched.stderr
    open_ui(page, ui)
    wait_for_paths(page, "/bytes/300")
    rows(page).first.click()

    page.click("#detail button[data-tab=connection]")
    client = page.locator("#detail .pairs.tls-client")
    server = page.locator("#detail .pairs.tls-server")
    client.wait_for()
    client_rows = dict(zip(client.locator("th").all_text_contents(),
                           client.locator("td").all_text_contents(), strict=True))  # fmt: skip
    server_rows = dict(zip(server.locator("th").all_text_contents(),
                           server.locator("td").all_text_contents(), strict=True))  # fmt: skip
    assert client_rows["SNI"] == "api.example.test"
    assert client_rows["TLS version"].startswith("TLSv1.")
    assert "api.example.test" in client_rows["certificate names"]  # the forged certificate's
    assert server_rows["issuer"] == "CN=waylay tests CA"  # the upstream certificate's
    assert server_rows["TLS version"].startswith("TLSv1.")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d .*", server_rows["valid to"])

    page.click("#detail button[data-tab=timing]")
    wait = page.locator("#detail .timing-row[data-phase=wait] .timing-bar")
    wait.wait_for()
    assert wait.is_visible() and (wait.bounding_box() or {"width": 0})["width"] > 0
    phases = page.locator("#detail .timing-row").evaluate_all(
        "rows => rows.map(r => r.dataset.phase)"
    )
    assert phases == ["whole", "send", "wait", "receive"]
    assert "not recorded" not in (page.locator("#detail .timing").text_content() or "")


def test_intercept_edit_and_resume_changes_what_the_origin_receives(
    start_ui: StartUI, origin: Origin, page: Any
) -> None:
    ui = start_ui()
    open_ui(page, ui)
    page.fill("#intercept-filter", "~u /echo/held")
    page.click(".intercept-form button[type=submit]")
    page.wait_for_selector(".intercept-state:has-text('on')")

    answers: list[httpx.Response] = []
    client = threading.Thread(
        target=lambda: answers.append(
            proxied(ui, "POST", origin.url("/echo/held?x=1"), content=b"the original body")
        )
    )
    client.start()
    try:
        page.locator(".paused-list li.phase-request").wait_for()
        assert "1 paused" in (page.locator("#paused-badge").text_content() or "")
        assert not origin.requests, "the origin saw the request before it was resumed"
        page.locator(".paused-list .link").first.click()
        editor = page.locator("#detail .live-editor")
        editor.wait_for()
        headers = editor.locator("textarea[name=headers]")
        headers.fill((headers.input_value() or "") + "\nX-Edited: by the page")
        editor.locator("input[name=url]").fill(origin.url("/echo/edited?y=2"))
        editor.locator("textarea[name=body]").fill("an edited body")
        editor.locator("button", has_text="save & resume").click()
        client.join(timeout=15)
    finally:
        if client.is_alive():
            # Do not leave the client hanging on a test that failed half-way.
            ui.api("/api/live/resume-all", "POST")
            client.join(timeout=10)
    assert answers and answers[0].status_code == 200
    received = origin.requests[-1]
    assert received.target == "/echo/edited?y=2"
    assert received.header("x-edited") == "by the page"
    assert received.body_length == len(b"an edited body")
    page.locator(".paused-list li").wait_for(state="detached")

    # A response paused: its status and body are changed on their way back to the client.
    page.fill("#intercept-filter", "~u /echo/answer & ~s")
    page.click(".intercept-form button[type=submit]")
    page.wait_for_selector(".intercept-form input[aria-invalid]", state="detached")
    answers.clear()
    client = threading.Thread(
        target=lambda: answers.append(proxied(ui, "GET", origin.url("/echo/answer")))
    )
    client.start()
    try:
        page.locator(".paused-list li.phase-response .link").click()
        editor = page.locator("#detail .live-editor")
        editor.locator("input[name=status_code]").fill("299")
        editor.locator("textarea[name=body]").fill("changed by the page")
        editor.locator("button", has_text="save & resume").click()
        client.join(timeout=15)
    finally:
        if client.is_alive():
            ui.api("/api/live/resume-all", "POST")
            client.join(timeout=10)
    assert answers[0].status_code == 299
    assert answers[0].text == "changed by the page"


def test_replay_makes_a_new_flow_and_the_request_exports_as_curl(
    start_ui: StartUI, origin: Origin, page: Any
) -> None:
    ui = start_ui()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui.base)
    open_ui(page, ui)
    proxied(ui, "GET", origin.url("/echo/replay-me"))
    rows(page).first.wait_for()
    rows(page).first.click()
    page.locator("#detail .actions button", has_text="replay").first.click()
    page.wait_for_function("() => document.querySelectorAll('.flow-row[data-id]').length === 2")
    assert [r.target for r in origin.requests] == ["/echo/replay-me", "/echo/replay-me"]
    # The replay opens in the detail.
    page.wait_for_selector("#detail .detail-title:has-text('/echo/replay-me')")

    page.locator("#detail .actions button", has_text="edit & replay").click()
    dialog = page.locator("dialog.edit-replay")
    dialog.locator("input[name=url]").fill(origin.url("/echo/replayed-edited"))
    dialog.locator("textarea[name=headers]").fill(f"Host: {origin.authority}\nX-Replayed: edited")
    dialog.locator("button", has_text="replay").first.click()
    page.wait_for_function("() => document.querySelectorAll('.flow-row[data-id]').length === 3")
    assert origin.requests[-1].target == "/echo/replayed-edited"
    assert origin.requests[-1].header("x-replayed") == "edited"

    page.locator("#detail .actions button", has_text="copy as curl").click()
    page.wait_for_selector("#toasts:has-text('copied as curl')")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith("curl") and "/echo/replayed-edited" in copied

    # Without the Clipboard API, the command is shown in a box to copy by hand.
    page.evaluate("() => Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    page.locator("#detail .actions button", has_text="copy as httpx").click()
    box = page.locator("dialog#copy-box textarea")
    box.wait_for()
    assert "httpx" in box.input_value() and "/echo/replayed-edited" in box.input_value()


def test_har_export_of_the_filter_downloads_a_valid_file_and_clear_empties_the_list(
    start_ui: StartUI, page: Any
) -> None:
    ui = start_ui(
        flows=[
            (stored_flow("/kept", host="a.example.test"), None, b"kept"),
            (stored_flow("/other", host="b.example.test"), None, b"other"),
        ]
    )
    open_ui(page, ui)
    wait_for_count(page, "2 flows")
    page.fill("#filter", "~d a.example.test")
    page.press("#filter", "Enter")
    wait_for_count(page, "1 matching")
    with page.expect_download() as download_info:
        page.click("#har-link")
    download = download_info.value
    assert download.suggested_filename == "waylay.har"
    har = json.loads(Path(download.path()).read_text())
    assert har["log"]["version"] == "1.2"
    assert [entry["request"]["url"] for entry in har["log"]["entries"]] == [
        "http://a.example.test/kept"
    ]

    page.fill("#filter", "")
    page.press("#filter", "Enter")
    wait_for_count(page, "2 flows")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#clear")
    wait_for_count(page, "0 flows")
    page.wait_for_selector(".flow-row", state="detached")
    assert ui.api("/api/flows")["total"] == 0


def test_a_hundred_thousand_flows_load_and_scroll_with_only_the_visible_rows_in_the_dom(
    start_ui: StartUI, page: Any
) -> None:
    count = 100_000

    def flows() -> Iterator[StoredFlow]:
        for n in range(count):
            yield stored_flow(f"/item/{n + 1}", started=1_700_000_000.0 + n), None, b"x"

    ui = start_ui(flows=flows())
    began = time.monotonic()
    open_ui(page, ui)
    wait_for_count(page, "100,000 flows")
    rows(page).first.wait_for()
    loaded = time.monotonic() - began
    scroller = page.locator(".flow-scroller")
    view = scroller.evaluate("e => e.clientHeight")
    limit = view // ROW_HEIGHT + 2 * OVERSCAN + 2

    def row_elements() -> int:
        return int(page.evaluate("() => document.querySelectorAll('.flow-row').length"))

    assert row_elements() <= limit
    assert scroller.evaluate("e => e.scrollHeight") >= count * ROW_HEIGHT

    # Jump to the middle, then to the end: the rows there arrive, the DOM stays as small.
    timings = []
    for fraction, expected in ((0.5, 50_000), (1.0, count)):
        started = time.monotonic()
        scroller.evaluate(f"e => e.scrollTop = (e.scrollHeight - e.clientHeight) * {fraction}")
        page.wait_for_function(
            """expected => [...document.querySelectorAll('.flow-row[data-id]')]
                .some(row => Math.abs(Number(row.dataset.id) - expected) < 40)""",
            arg=expected,
        )
        timings.append(time.monotonic() - started)
        assert row_elements() <= limit
    assert rows(page).last.locator(".col-path").text_content() == f"/item/{count}"

    # A smooth scroll over a few thousand rows: every frame renders the rows in sight.
    frames = page.evaluate(
        """async () => {
            const scroller = document.querySelector('.flow-scroller');
            const gaps = [];
            let last = performance.now();
            for (let i = 0; i < 60; i++) {
                scroller.scrollTop -= 24 * 40;
                await new Promise(requestAnimationFrame);
                const now = performance.now();
                gaps.push(now - last);
                last = now;
            }
            return gaps;
        }"""
    )
    assert row_elements() <= limit
    frames.sort()
    assert frames[len(frames) // 2] < 50, frames  # the median frame: 20 fps or better
    assert loaded < 8 and max(timings) < 3, (loaded, timings)
    # The page holds a bounded part of the flows, not all of them.
    assert page.evaluate("() => waylay.model.cachedRows") <= 50 * 200


def test_a_request_without_the_token_is_refused(start_ui: StartUI, page: Any) -> None:
    ui = start_ui()
    for path in ("/", "/api/info", "/api/flows", "/static/main.js", f"/?token={ui.token}x"):
        assert httpx.get(f"{ui.base}{path}").status_code == 403, path
    assert httpx.post(f"{ui.base}/api/flows/clear").status_code == 403
    # The browser without the token sees a 403 and no page.
    response = page.goto(f"{ui.base}/")
    assert response is not None and response.status == 403
    # With it, the page loads and its API calls pass.
    open_ui(page, ui)
    assert page.locator("#forbidden").is_hidden()
    assert "127.0.0.1" in (page.locator("#proxy-info").text_content() or "")


def test_the_ui_is_not_reachable_through_the_proxy_port(start_ui: StartUI) -> None:
    ui = start_ui()
    for url in (f"{ui.base}/api/info", f"{ui.base}/?token={ui.token}"):
        response = proxied(ui, "GET", url)
        assert response.status_code == 403, url
        assert response.headers.get("x-waylay-error") == "web-ui-not-through-proxy"


def test_the_page_never_parses_data_as_html() -> None:
    """Flows carry hostile bytes: the page builds every element from text nodes."""
    for script in STATIC.glob("*.js"):
        source = script.read_text()
        sink = re.search(
            r"\.(inner|outer)HTML\b|insertAdjacentHTML|document\.write|\beval\(", source
        )
        assert sink is None, f"{script.name} uses {sink and sink[0]}"
