"""--map-local on flows built here: files, folders, 404s — and never a file outside PATH."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from waylay.addons.maplocal import MapLocal, local_file, map_local
from waylay.hooks import HookTable

from .sample_flows import request_flow, respond

SECRET = b"the secret outside the folder\n"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder to serve, beside a secret it must never give away.

    tmp/secret.txt, tmp/outside/index.html           <- outside
    tmp/www/index.html, a.css, sub/page.json, sub/index.html, %2e%2e (a file so named),
    tmp/www/link-out -> ../secret.txt, dir-out -> ../outside, link-in -> a.css,
    tmp/www/indexed/index.html -> ../../secret.txt
    """
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "index.html").write_bytes(SECRET)
    www = tmp_path / "www"
    (www / "sub").mkdir(parents=True)
    (www / "index.html").write_bytes(b"<h1>home</h1>")
    (www / "a.css").write_bytes(b"body {}")
    (www / "sub" / "page.json").write_bytes(b"{}")
    (www / "sub" / "index.html").write_bytes(b"<h1>sub</h1>")
    (www / "%2e%2e").write_bytes(b"a file named %2e%2e")
    (www / "link-out").symlink_to("../secret.txt")
    (www / "dir-out").symlink_to("../outside")
    (www / "link-in").symlink_to("a.css")
    (www / "indexed").mkdir()
    (www / "indexed" / "index.html").symlink_to("../../secret.txt")
    return www


def _addon(*rules: str) -> MapLocal:
    addon = map_local(rules)
    assert addon is not None
    return addon


def _get(addon: MapLocal, url: str) -> tuple[int, bytes, str | None] | None:
    """(status, body, Content-Type) of the answer to GET url, or None when it goes on."""
    flow = request_flow(url)
    addon.answer(flow)
    if flow.response is None:
        return None
    response = flow.response
    assert response.raw_content is not None
    return response.status_code, response.raw_content, response.headers.get("Content-Type")


def test_no_rules_no_addon() -> None:
    assert map_local(()) is None


# (URL under http://origin.example.test/static, status, body, Content-Type)
SERVED = [
    ("/", 200, b"<h1>home</h1>", "text/html"),
    ("", 200, b"<h1>home</h1>", "text/html"),
    ("/a.css", 200, b"body {}", "text/css"),
    ("/a.css?v=3", 200, b"body {}", "text/css"),
    ("/sub/page.json", 200, b"{}", "application/json"),
    ("/sub", 200, b"<h1>sub</h1>", "text/html"),
    ("/sub/", 200, b"<h1>sub</h1>", "text/html"),
    ("/sub//./page.json", 200, b"{}", "application/json"),
    ("/%73ub/page%2Ejson", 200, b"{}", "application/json"),  # decoded once
    ("/sub%2fpage.json", 200, b"{}", "application/json"),  # %2f is a slash, still inside
    ("/link-in", 200, b"body {}", "text/css"),  # a symlink that stays inside
    ("/%252e%252e", 200, b"a file named %2e%2e", None),  # double encoding: a name, no more
    ("/missing.html", 404, None, "text/plain; charset=utf-8"),
]


@pytest.mark.parametrize(("path", "status", "body", "content_type"), SERVED)
def test_folder(
    site: Path, path: str, status: int, body: bytes | None, content_type: str | None
) -> None:
    answer = _get(
        _addon(f"|//origin.example.test/static|{site}"), f"http://origin.example.test/static{path}"
    )
    assert answer is not None
    assert answer[0] == status
    if body is not None:
        assert answer[1] == body
    assert answer[2] == content_type


# Every way out of the folder a URL might try: each must be a 404, never the secret.
ESCAPES = [
    "/../secret.txt",
    "/..",
    "/sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub%2f..%2f..%2fsecret.txt",
    "/%252e%252e/secret.txt",  # double encoding: stays a name, which does not exist
    "/%25252e%25252e%25252fsecret.txt",
    "/..\\secret.txt",
    "/..%5csecret.txt",
    "/%5c..%5csecret.txt",
    "/a.css%00",
    "/%00../secret.txt",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/%2f%2e%2e%2fsecret.txt",
    "/link-out",
    "/dir-out",
    "/dir-out/",
    "/dir-out/index.html",
    "/indexed",
    "/indexed/index.html",
    "/%ff%fe",  # not UTF-8
    "/~/secret.txt",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_never_outside_the_folder(site: Path, path: str) -> None:
    answer = _get(
        _addon(f"|//origin.example.test/static|{site}"), f"http://origin.example.test/static{path}"
    )
    assert answer is not None
    status, body, _ = answer
    assert status == 404 and SECRET not in body


def test_absolute_path_in_a_group(site: Path) -> None:
    # The first group names the file: an absolute path in it is still below the folder.
    addon = _addon(f"|[?&]file=([^&]*)|{site}")
    answer = _get(addon, "http://origin.example.test/get?file=/etc/passwd")
    assert answer is not None and answer[0] == 404
    answer = _get(addon, f"http://origin.example.test/get?file={site.parent}/secret.txt")
    assert answer is not None and answer[0] == 404
    answer = _get(addon, "http://origin.example.test/get?file=/sub/page.json")
    assert answer is not None and answer[:2] == (200, b"{}")


def test_a_file_answers_every_matching_url(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(b"<p>local</p>")
    addon = _addon(f"|~m GET|example.test/app|{page}")
    for url in ("http://origin.example.test/app", "http://api.example.test/app/x/../y?z"):
        assert _get(addon, url) == (200, b"<p>local</p>", "text/html")
    assert _get(addon, "http://origin.example.test/other") is None
    page.unlink()
    answer = _get(addon, "http://origin.example.test/app")
    assert answer is not None and answer[0] == 404


def test_rules_in_order_first_file_wins(tmp_path: Path, site: Path) -> None:
    overrides = tmp_path / "overrides"
    overrides.mkdir()
    (overrides / "a.css").write_bytes(b"override")
    addon = _addon(f"|/static|{overrides}", f"|/static|{site}")
    assert _get(addon, "http://h.test/static/a.css") == (200, b"override", "text/css")
    assert _get(addon, "http://h.test/static/sub/page.json") == (200, b"{}", "application/json")
    answer = _get(addon, "http://h.test/static/nowhere")
    assert answer is not None and answer[0] == 404


def test_not_found_names_the_cause(site: Path) -> None:
    flow = request_flow("http://origin.example.test/static/nope")
    _addon(f"|/static|{site}").answer(flow)
    assert flow.response is not None
    assert flow.response.headers["X-Waylay-Error"] == "not-in-map-local"
    assert str(site) not in (flow.response.raw_content or b"").decode()


def test_what_the_rule_does_not_match_goes_on(site: Path) -> None:
    addon = _addon(f"|~m POST|/static|{site}")
    assert _get(addon, "http://origin.example.test/static/a.css") is None
    assert _get(_addon(f"|/static|{site}"), "http://origin.example.test/dynamic") is None


def test_connect_and_answered_flows_are_left_alone(site: Path) -> None:
    addon = _addon(f"|example|{site}")
    connect = request_flow("origin.example.test:443", method="CONNECT")
    addon.answer(connect)
    assert connect.response is None
    answered = respond(request_flow("http://origin.example.test/"), 403, body=b"blocked")
    addon.answer(answered)
    assert answered.response is not None and answered.response.status_code == 403


def test_requestheaders_unless_a_filter_reads_bodies(site: Path) -> None:
    table = HookTable([_addon(f"|/static|{site}")])
    assert len(table.requestheaders) == 1 and table.request == ()
    table = HookTable([_addon(f"|~bq x|/static|{site}")])
    assert table.requestheaders == () and len(table.request) == 1


def test_a_fifo_is_not_read(site: Path) -> None:
    os.mkfifo(site / "pipe")
    answer = _get(_addon(f"|/static|{site}"), "http://origin.example.test/static/pipe")
    assert answer is not None and answer[0] == 404


# --- the property: whatever the URL holds, nothing outside the folder ---------------------

_PIECES = st.sampled_from(
    [
        "..",
        ".",
        "/",
        "//",
        "\\",
        "%2e",
        "%2E",
        "%2f",
        "%2F",
        "%5c",
        "%00",
        "%25",
        "%252e",
        "%252f",
        "%ff",
        "~",
        "secret.txt",
        "outside",
        "index.html",
        "link-out",
        "dir-out",
        "indexed",
        "sub",
        "a.css",
        "%2e%2e",
        "?",
        "#",
        "\0",
        ":",
        "C:",
        "etc",
        "passwd",
    ]
)
_URL_PARTS = st.lists(st.one_of(_PIECES, st.text(max_size=4)), max_size=12).map("".join)


def _inside_files(root: Path) -> set[bytes]:
    return {p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(part=_URL_PARTS)
def test_local_file_never_resolves_outside(site: Path, part: str) -> None:
    root = site.resolve()
    found = local_file(root, part)
    if found is not None:
        assert found.resolve() == found
        assert found.is_relative_to(root) and found.is_file()
        assert found.read_bytes() != SECRET


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(part=_URL_PARTS)
def test_answers_only_hold_files_of_the_folder(site: Path, part: str) -> None:
    inside = _inside_files(site)
    flow = request_flow("http://origin.example.test/")
    flow.request.path = "/static/" + part  # whatever bytes the URL holds, parsed or not
    _addon(f"|/static/|{site}").answer(flow)
    assert flow.response is not None
    body = flow.response.raw_content
    assert body != SECRET
    if flow.response.status_code == 200:
        assert body in inside
    else:
        assert flow.response.status_code == 404
