"""HAR 1.2 in and out: real exports round-trip through the flow store; edge cases by hand.

The real exports (Chrome DevTools, Charles, Insomnia, one with a BOM, one with POST data) were
written by other tools, so they are the test of what the world sends. For each, importing and
exporting again must give the same requests (method, URL, fields but the ones docs/flows.md
says are dropped), statuses and bodies (compared as bytes, whatever text or base64 form each
side chose).
"""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.testdata import HAR_EXPORTS
from waylay import __version__
from waylay.errors import ConfigError
from waylay.filters import parse_filter
from waylay.flow import Error, Flow, Request, Response, Timestamps
from waylay.har import (
    decode_content,
    entry_to_flow,
    export_file,
    export_har,
    flow_to_entry,
    import_file,
    read_har,
)
from waylay.headers import Headers
from waylay.store.bulk import append_flows
from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.schema import RESPONSE_BODY, RESPONSE_TRUNCATED

EXPORTS = HAR_EXPORTS


def export_names() -> list[str]:
    """The real exports, for parametrize; never empty (a missing directory must fail)."""
    return sorted(path.name for path in EXPORTS.glob("*.har")) or ["missing-testdata.har"]


def _load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_bytes().decode("utf-8-sig"))["log"]["entries"]  # type: ignore[no-any-return]


# --- what a round trip must keep, said independently of har.py ---------------------------------


def _content_bytes(content: dict[str, Any]) -> bytes | None:
    if "text" not in content:
        return None
    if content.get("encoding") == "base64":
        return base64.b64decode(content["text"])
    mime_type = content.get("mimeType") or ""
    charset = mime_type.partition("charset=")[2].strip() or "utf-8"
    return content["text"].encode(charset)  # type: ignore[no-any-return]


def _pairs(fields: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(f["name"], f["value"]) for f in fields]


def _expected_request_fields(request: dict[str, Any]) -> list[tuple[str, str]]:
    fields = _pairs(request["headers"])
    kept = [(n, v) for n, v in fields if not n.startswith(":")]
    authority = [v for n, v in fields if n == ":authority"]
    if authority and not any(n.lower() == "host" for n, _ in kept):
        kept.insert(0, ("Host", authority[0]))
    return kept


def _expected_response_fields(response: dict[str, Any]) -> list[tuple[str, str]]:
    decoded = "text" in response.get("content", {})
    return [
        (n, v)
        for n, v in _pairs(response["headers"])
        if not n.startswith(":") and not (decoded and n.lower() == "content-encoding")
    ]


def _instant(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _post_bytes(request: dict[str, Any]) -> bytes:
    post = request.get("postData")
    return (_content_bytes(post) or b"") if post else b""


def _assert_same_exchange(original: dict[str, Any], again: dict[str, Any]) -> None:
    request, request_again = original["request"], again["request"]
    assert request_again["method"] == request["method"]
    assert request_again["url"] == request["url"]
    assert _pairs(request_again["headers"]) == _expected_request_fields(request)
    assert _post_bytes(request_again) == _post_bytes(request)
    response, response_again = original["response"], again["response"]
    assert response_again["status"] == response["status"]
    if response["status"]:
        assert response_again["statusText"] == response["statusText"]
        assert _pairs(response_again["headers"]) == _expected_response_fields(response)
        assert _content_bytes(response_again["content"]) == _content_bytes(response["content"])
    assert _instant(again["startedDateTime"]) == pytest.approx(
        _instant(original["startedDateTime"]), abs=1e-6
    )
    assert again["time"] == pytest.approx(original["time"], abs=0.001)
    assert again.get("serverIPAddress", "") == original.get("serverIPAddress", "")


# --- the real exports ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", export_names())
def test_a_real_export_imports_and_exports_back_the_same_exchanges(
    name: str, tmp_path: Path
) -> None:
    path = EXPORTS / name
    assert EXPORTS.is_dir(), f"the HAR exports are missing: {EXPORTS}"
    original = _load(path)
    database = tmp_path / "flows.db"
    ids = import_file(path, database)
    assert len(ids) == len(original) > 0
    out = tmp_path / "again.har"
    assert export_file(database, out) == len(original)
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["log"]["version"] == "1.2"
    assert document["log"]["creator"] == {"name": "waylay", "version": __version__}
    again = document["log"]["entries"]
    assert len(again) == len(original)
    for before, after in zip(original, again, strict=True):
        _assert_same_exchange(before, after)
    # And once more: waylay's own export is a fixed point.
    second = tmp_path / "second.db"
    import_file(out, second)
    export_file(second, tmp_path / "third.har")
    third = json.loads((tmp_path / "third.har").read_text(encoding="utf-8"))["log"]["entries"]
    assert third == again


def test_chrome_quirks_are_read_as_docs_flows_md_says(tmp_path: Path) -> None:
    entries = read_har((EXPORTS / "chrome.har").read_bytes(), "chrome.har")
    flows = [entry_to_flow(entry) for entry in entries]

    revalidated, not_modified_body, _ = flows[0][0], flows[0][2], None
    assert revalidated.request.http_version == "HTTP/2.0"  # "http/2.0"
    assert revalidated.request.headers.fields[0] == (b"Host", b"mitmproxy.org")  # from :authority
    assert not any(name.startswith(b":") for name, _ in revalidated.request.headers.fields)
    assert revalidated.response is not None and revalidated.response.status_code == 304
    assert not_modified_body is not None and not_modified_body.startswith(b"<!DOCTYPE html>")
    assert revalidated.server_address == ("108.138.246.80", 443)

    failed = flows[1][0]
    assert failed.response is None  # status 0
    assert failed.error == Error("net::ERR_INTERNET_DISCONNECTED", "")
    assert failed.server_address is None  # serverIPAddress ""
    assert failed.request.http_version == ""

    logo, _, png = flows[2]
    assert logo.request.http_version == "HTTP/3"  # "h3"
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) == 7108
    assert logo.timestamps.end - logo.timestamps.start == pytest.approx(0.058205, abs=1e-6)


def test_the_export_with_a_bom_reads_as_the_one_without(tmp_path: Path) -> None:
    with_bom = (EXPORTS / "with-bom.har").read_bytes()
    assert with_bom.startswith(b"\xef\xbb\xbf")
    assert read_har(with_bom, "with-bom.har") == read_har(
        (EXPORTS / "postdata.har").read_bytes(), "postdata.har"
    )


def test_post_data_is_stored_as_the_request_body(tmp_path: Path) -> None:
    database = tmp_path / "flows.db"
    (store_id,) = import_file(EXPORTS / "postdata.har", database)
    db = open_readonly(database)
    (flow,) = iter_flows(db)
    stored = body(db, store_id, 0)
    db.close()
    assert flow.request.method == "POST"
    assert stored.startswith(b'{"metadata":{"pageViewId":1689428126308')
    assert len(stored) == flow.request_body_size == 1310  # as its content-length says


# --- hand-made flows ----------------------------------------------------------------------------


def _flow(
    url_host: str = "api.example.test",
    *,
    scheme: str = "https",
    port: int = 443,
    path: str = "/",
    request_headers: list[tuple[bytes, bytes]] | None = None,
    response_headers: list[tuple[bytes, bytes]] | None = None,
    status: int | None = 200,
) -> Flow:
    fields = request_headers if request_headers is not None else [(b"Host", b"h")]
    request = Request("GET", scheme, url_host, port, path, "HTTP/1.1", Headers(fields))
    flow = Flow(
        ("127.0.0.1", 50000),
        request,
        server_address=("192.0.2.7", port),
        timestamps=Timestamps(start=1_700_000_000.25, end=1_700_000_000.75),
    )
    if status is not None:
        flow.response = Response(status, "OK", "HTTP/1.1", Headers(response_headers or []))
    return flow


def _round_trip(
    flow: Flow, request_body: bytes | None, response_body: bytes | None
) -> tuple[dict[str, Any], tuple[Flow, bytes | None, bytes | None]]:
    entry = flow_to_entry(flow, request_body, response_body)
    # Through JSON, as a file would carry it.
    entry = json.loads(json.dumps(entry))
    return entry, entry_to_flow(entry)


def test_headers_keep_their_order_case_and_repeats() -> None:
    fields = [(b"Host", b"h"), (b"x-LOWER-upper", b"1"), (b"Accept", b"a"), (b"accept", b"b")]
    flow = _flow(request_headers=fields, response_headers=[(b"Set-Cookie", b"a=1"),
                                                           (b"set-cookie", b"b=2")])  # fmt: skip
    entry, (again, _, _) = _round_trip(flow, None, None)
    assert _pairs(entry["request"]["headers"]) == [(n.decode(), v.decode()) for n, v in fields]
    assert again.request.headers.fields == fields
    assert again.response is not None
    assert again.response.headers.fields == [(b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2")]


def test_latin_1_bytes_in_fields_survive() -> None:
    fields = [(b"Host", b"h"), (b"X-Name", b"caf\xe9 \xff")]
    _, (again, _, _) = _round_trip(_flow(request_headers=fields), None, None)
    assert again.request.headers.fields == fields


def test_a_binary_body_is_base64_and_comes_back_exactly() -> None:
    data = bytes(range(256)) * 10
    flow = _flow(response_headers=[(b"Content-Type", b"application/octet-stream")])
    entry, (_, _, again) = _round_trip(flow, None, data)
    content = entry["response"]["content"]
    assert content["encoding"] == "base64" and base64.b64decode(content["text"]) == data
    assert content["size"] == len(data) and content["mimeType"] == "application/octet-stream"
    assert again == data


def test_a_binary_request_body_is_base64_post_data_with_its_type() -> None:
    data = b"\x00\xff\xfe binary"
    flow = _flow(request_headers=[(b"Host", b"h"), (b"Content-Type", b"image/x-test")])
    flow.request.method = "PUT"
    flow.request_body_size = len(data)
    entry, (again, request_body, _) = _round_trip(flow, data, None)
    post = entry["request"]["postData"]
    assert post["mimeType"] == "image/x-test" and post["encoding"] == "base64"
    assert request_body == data and again.request_body_size == len(data)
    assert again.request.method == "PUT"


def test_text_in_a_declared_charset_is_text_and_the_same_bytes_come_back() -> None:
    data = "café crème".encode("iso-8859-1")
    headers = [(b"Content-Type", b"text/plain; charset=ISO-8859-1")]
    entry, (_, _, again) = _round_trip(_flow(response_headers=headers), None, data)
    content = entry["response"]["content"]
    assert content["text"] == "café crème" and "encoding" not in content
    assert again == data


def test_utf_8_text_without_a_charset_is_text() -> None:
    data = "naïve ✓ json".encode()
    headers = [(b"Content-Type", b"application/json")]
    entry, (_, _, again) = _round_trip(_flow(response_headers=headers), None, data)
    assert entry["response"]["content"]["text"] == "naïve ✓ json"
    assert again == data


def test_an_empty_body_is_empty_text_and_a_body_not_captured_has_none() -> None:
    flow = _flow()
    entry, (_, _, again) = _round_trip(flow, b"", b"")
    assert entry["response"]["content"]["text"] == "" and again == b""
    assert "postData" not in entry["request"]
    flow.response_body_size = 5000
    entry, (stored, _, again) = _round_trip(flow, None, None)
    assert "text" not in entry["response"]["content"]
    assert entry["response"]["content"]["size"] == 5000
    assert again is None and stored.response_body_size == 5000


def test_a_flow_without_a_response_is_a_status_0_entry_with_its_error() -> None:
    flow = _flow(status=None)
    flow.error = Error("connection refused by 192.0.2.7:443", "upstream-refused")
    entry, (again, _, response_body) = _round_trip(flow, None, None)
    assert entry["response"]["status"] == 0
    assert entry["_waylay_error"] == {
        "reason": "connection refused by 192.0.2.7:443",
        "code": "upstream-refused",
    }
    assert again.response is None and response_body is None
    assert again.error == flow.error


def test_addresses_and_flags_travel_in_waylay_fields() -> None:
    flow = _flow()
    flow.capture_flags = RESPONSE_TRUNCATED
    entry, (again, _, _) = _round_trip(flow, None, b"partial")
    assert entry["serverIPAddress"] == "192.0.2.7"
    assert entry["_waylay_client"] == ["127.0.0.1", 50000]
    assert again.client_address == ("127.0.0.1", 50000)
    assert again.server_address == ("192.0.2.7", 443)
    assert again.capture_flags == RESPONSE_TRUNCATED


@pytest.mark.parametrize(
    ("url", "host", "port", "path"),
    [
        ("http://[2001:db8::1]:8080/x?y=1", "2001:db8::1", 8080, "/x?y=1"),
        ("https://[::1]/", "::1", 443, "/"),
        ("https://Example.TEST", "example.test", 443, "/"),
        ("http://example.test?q=1", "example.test", 80, "/?q=1"),
        ("https://example.test/a b/ü?x=é#frag", "example.test", 443, "/a%20b/%C3%BC?x=%C3%A9"),
        ("https://example.test/?=", "example.test", 443, "/?="),
        ("wss://example.test/socket", "example.test", 443, "/socket"),
    ],
)
def test_urls_become_scheme_host_port_and_path(url: str, host: str, port: int, path: str) -> None:
    entry = {"startedDateTime": "2024-01-01T00:00:00Z", "request": {"method": "GET", "url": url}}
    flow, _, _ = entry_to_flow(entry)
    assert (flow.request.host, flow.request.port, flow.request.path) == (host, port, path)


def test_an_ipv6_host_is_bracketed_in_the_exported_url() -> None:
    flow = _flow("2001:db8::1", scheme="http", port=8080, path="/v6")
    entry, (again, _, _) = _round_trip(flow, None, None)
    assert entry["request"]["url"] == "http://[2001:db8::1]:8080/v6"
    assert again.request.host == "2001:db8::1" and again.request.port == 8080


def test_a_connect_keeps_its_authority_form() -> None:
    flow = _flow(port=8443, path="")
    flow.request.method = "CONNECT"
    entry, (again, _, _) = _round_trip(flow, None, None)
    assert entry["request"]["url"] == "api.example.test:8443"
    assert again.request.url == "api.example.test:8443"


def test_query_strings_are_listed_decoded() -> None:
    flow = _flow(path="/search?q=a+b%20c&empty=&flag&q=2")
    entry = flow_to_entry(flow, None, None)
    assert entry["request"]["queryString"] == [
        {"name": "q", "value": "a b c"},
        {"name": "empty", "value": ""},
        {"name": "flag", "value": ""},
        {"name": "q", "value": "2"},
    ]


def test_cookies_are_parsed_from_cookie_and_set_cookie() -> None:
    flow = _flow(
        request_headers=[(b"Host", b"h"), (b"Cookie", b"sid=abc; theme=dark")],
        response_headers=[
            (b"Set-Cookie", b"sid=xyz; Path=/; Domain=.example.test; Secure; HttpOnly; "
                            b"SameSite=Lax; Expires=Wed, 21 Oct 2026 07:28:00 GMT"),
            (b"Set-Cookie", b"plain=1"),
        ],
    )  # fmt: skip
    entry = flow_to_entry(flow, None, None)
    assert entry["request"]["cookies"] == [
        {"name": "sid", "value": "abc"},
        {"name": "theme", "value": "dark"},
    ]
    assert entry["response"]["cookies"] == [
        {
            "name": "sid",
            "value": "xyz",
            "path": "/",
            "domain": ".example.test",
            "secure": True,
            "httpOnly": True,
            "sameSite": "Lax",
            "expires": "2026-10-21T07:28:00+00:00",
        },
        {"name": "plain", "value": "1"},
    ]


def test_timings_span_the_four_moments_and_come_back() -> None:
    flow = _flow()
    flow.timestamps = Timestamps(start=1000.0, request_sent=1000.010, first_response_byte=1000.110,
                                 end=1000.125)  # fmt: skip
    entry, (again, _, _) = _round_trip(flow, None, None)
    timings = entry["timings"]
    assert [timings[k] for k in ("blocked", "dns", "connect", "ssl")] == [-1, -1, -1, -1]
    assert (timings["send"], timings["wait"], timings["receive"]) == (10.0, 100.0, 15.0)
    assert entry["time"] == 125.0
    assert entry["startedDateTime"] == "1970-01-01T00:16:40.000000+00:00"
    for name in ("start", "request_sent", "first_response_byte", "end"):
        assert getattr(again.timestamps, name) == pytest.approx(
            getattr(flow.timestamps, name), abs=1e-6
        )


def test_only_a_start_and_an_end_make_all_the_time_wait() -> None:
    entry = flow_to_entry(_flow(), None, None)  # what the flow store keeps
    assert entry["time"] == 500.0
    assert (entry["timings"]["send"], entry["timings"]["wait"]) == (0.0, 500.0)


def test_har_timings_become_moments_with_ssl_inside_connect() -> None:
    entry = {
        "startedDateTime": "2023-03-29T17:37:42.482-07:00",
        "time": 107,
        "request": {"method": "GET", "url": "https://example.test/"},
        "response": {"status": 200, "headers": []},
        "timings": {"dns": 43, "connect": 37, "ssl": 26, "send": 1, "wait": 24, "receive": 2},
    }
    flow, _, _ = entry_to_flow(entry)
    start = _instant("2023-03-30T00:37:42.482+00:00")
    assert flow.timestamps.start == pytest.approx(start)
    assert flow.timestamps.request_sent == pytest.approx(start + 0.081)
    assert flow.timestamps.first_response_byte == pytest.approx(start + 0.105)
    assert flow.timestamps.end == pytest.approx(start + 0.107)


def test_pseudo_header_fields_are_dropped_and_authority_is_host_only_when_missing() -> None:
    pseudo = [{"name": ":authority", "value": "a.example"}, {"name": ":path", "value": "/"}]
    entry: dict[str, Any] = {
        "startedDateTime": "2024-01-01T00:00:00Z",
        "request": {"method": "GET", "url": "https://a.example/", "headers": pseudo},
        "response": {"status": 200, "headers": [{"name": ":status", "value": "200"}]},
    }
    flow, _, _ = entry_to_flow(entry)
    assert flow.request.headers.fields == [(b"Host", b"a.example")]
    assert flow.response is not None and flow.response.headers.fields == []
    entry["request"]["headers"] = [*pseudo, {"name": "host", "value": "b.example"}]
    flow, _, _ = entry_to_flow(entry)
    assert flow.request.headers.fields == [(b"host", b"b.example")]


@pytest.mark.parametrize(
    ("given", "stored"),
    [("HTTP/1.1", "HTTP/1.1"), ("http/2.0", "HTTP/2.0"), ("h2", "HTTP/2.0"),
     ("h3", "HTTP/3"), ("HTTP/1.0", "HTTP/1.0"), ("", ""), ("SPDY/3", "SPDY/3")],
)  # fmt: skip
def test_http_versions_are_spelt_as_waylay_spells_them(given: str, stored: str) -> None:
    entry = {
        "startedDateTime": "2024-01-01T00:00:00Z",
        "request": {"method": "GET", "url": "https://a.example/", "httpVersion": given},
    }
    assert entry_to_flow(entry)[0].request.http_version == stored


def test_form_params_without_text_become_a_urlencoded_body() -> None:
    post = {
        "mimeType": "application/x-www-form-urlencoded",
        "params": [{"name": "a b", "value": "1&2"}, {"name": "c", "value": "é"}],
    }
    entry = {
        "startedDateTime": "2024-01-01T00:00:00Z",
        "request": {"method": "POST", "url": "https://a.example/", "postData": post},
    }
    _, request_body, _ = entry_to_flow(entry)
    assert request_body == b"a+b=1%262&c=%C3%A9"


# --- Content-Encoding: HAR bodies are decoded ---------------------------------------------------


def test_a_gzip_body_is_exported_decoded_and_imported_without_its_coding() -> None:
    text = b"hello, compressed world " * 100
    headers = [(b"Content-Type", b"text/plain"), (b"Content-Encoding", b"gzip"),
               (b"Content-Length", b"123")]  # fmt: skip
    raw = gzip.compress(text)
    flow = _flow(response_headers=headers)
    flow.response_body_size = len(raw)
    entry, (again, _, stored) = _round_trip(flow, None, raw)
    content = entry["response"]["content"]
    assert content["text"] == text.decode() and content["size"] == len(text)
    assert content["compression"] == len(text) - len(raw)
    assert entry["response"]["bodySize"] == len(raw)
    assert ("Content-Encoding", "gzip") in _pairs(entry["response"]["headers"])  # as Chrome
    assert stored == text
    assert again.response is not None
    assert again.response.headers.fields == [
        (b"Content-Type", b"text/plain"),
        (b"Content-Length", b"123"),
    ]


def test_a_body_waylay_cannot_decode_goes_out_as_stored_and_keeps_its_coding() -> None:
    raw = b"\x8b\x00 pretend brotli"
    headers = [(b"Content-Encoding", b"br")]
    entry, (again, _, stored) = _round_trip(_flow(response_headers=headers), None, raw)
    content = entry["response"]["content"]
    assert content["_waylay_encoded"] is True
    assert base64.b64decode(content["text"]) == raw
    assert stored == raw
    assert again.response is not None and again.response.headers.fields == headers


@pytest.mark.parametrize(
    ("raw", "encoding", "decoded"),
    [
        (gzip.compress(b"a") + gzip.compress(b"b"), "gzip", b"ab"),  # two members
        (zlib.compress(b"zlib-wrapped"), "deflate", b"zlib-wrapped"),
        (zlib.compress(b"raw deflate")[2:-4], "deflate", b"raw deflate"),
        (b"plain", "identity", b"plain"),
        (b"plain", None, b"plain"),
        (gzip.compress(gzip.compress(b"twice")), "gzip, x-gzip", b"twice"),
        (gzip.compress(b"x" * 100_000)[:50], "gzip", None),  # stored truncated
        (b"not gzip at all", "gzip", None),
        (b"data", "zstd", None),
        (gzip.compress(b"x" * 2000), "gzip", None),  # over the limit below
    ],
)
def test_decode_content(raw: bytes, encoding: str | None, decoded: bytes | None) -> None:
    assert decode_content(raw, encoding, limit=1000) == decoded


# --- documents ----------------------------------------------------------------------------------


def test_export_har_is_a_har_1_2_log_by_waylay() -> None:
    document = export_har([(_flow(), None, b"ok")])
    log = document["log"]
    assert log["version"] == "1.2"
    assert log["creator"] == {"name": "waylay", "version": __version__}
    assert log["pages"] == [] and len(log["entries"]) == 1
    json.dumps(document)  # serialisable as it is


def test_export_file_writes_what_export_har_builds(tmp_path: Path) -> None:
    database = tmp_path / "flows.db"
    flows = [(_flow(path="/a"), None, b"one"), (_flow(status=None), None, None)]
    append_flows(database, flows)
    out = tmp_path / "out.har"
    assert export_file(database, out) == 2
    assert (out.stat().st_mode & 0o777) == 0o600
    written = json.loads(out.read_text(encoding="utf-8"))
    db = open_readonly(database)
    stored = [
        (flow, None, body(db, flow.store_id, RESPONSE_BODY) or None)  # type: ignore[arg-type]
        for flow in iter_flows(db)
    ]
    db.close()
    assert written == json.loads(json.dumps(export_har(stored)))


@pytest.mark.parametrize(
    ("expression", "paths"),
    [
        ("~m PUT", ["/put"]),
        ("~c 404 | ~q", ["/missing", "/failed"]),
        ("~bs needle", ["/put"]),  # a body operator: evaluated row by row
        ("!~u /put", ["/missing", "/failed"]),
    ],
)
def test_export_file_writes_only_what_the_filter_matches(
    tmp_path: Path, expression: str, paths: list[str]
) -> None:
    database = tmp_path / "flows.db"
    put = _flow(path="/put")
    put.request.method = "PUT"
    missing = _flow(path="/missing", status=404)
    append_flows(database, [(put, None, b"a needle"), (missing, None, b"no"),
                            (_flow(path="/failed", status=None), None, None)])  # fmt: skip
    out = tmp_path / "out.har"
    assert export_file(database, out, only=parse_filter(expression)) == len(paths)
    urls = [e["request"]["url"] for e in json.loads(out.read_text())["log"]["entries"]]
    assert urls == [f"https://api.example.test{p}" for p in paths]


# --- bad input ----------------------------------------------------------------------------------


def _har(*entries: object) -> bytes:
    return json.dumps({"log": {"version": "1.2", "entries": list(entries)}}).encode()


_DELETE = object()


def _entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "startedDateTime": "2024-01-01T00:00:00Z",
        "time": 1,
        "request": {"method": "GET", "url": "https://a.example/", "headers": []},
        "response": {"status": 200, "headers": [], "content": {"text": "ok"}},
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = entry
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value
    return entry


BAD_INPUTS = [
    (b"{not json", "invalid JSON (Expecting property name enclosed in double quotes at line 1 "
                   "column 2)"),
    (b'{"log": {"entries": []}}\n,,', "invalid JSON (Extra data at line 2 column 1)"),
    (b"", "invalid JSON (Expecting value at line 1 column 1)"),
    (b"\xef\xbb\xbf\xff{}", "not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, "unreadable JSON"),
    (b"[]", 'no "log" object'),
    (b'{"log": {"version": "1.2"}}', "log.entries is missing"),
    (b'{"log": {"entries": {}}}', "log.entries is not a list"),
    (_har(_entry(), 7), "entry 2: not an object"),
    (_har(_entry(request=_DELETE)), "entry 1: no request object"),
    (_har(_entry(request__method=_DELETE)), "entry 1: no request.method"),
    (_har(_entry(request__url=_DELETE)), "entry 1: no request.url"),
    (_har(_entry(request__method="GET /x")), "request.method 'GET /x' is not an HTTP method"),
    (_har(_entry(request__url="ftp://a.example/")), "is not an http or https URL"),
    (_har(_entry(request__url="ftp://a\n")),
     "entry 1 (GET ftp://a\\n): request.url 'ftp://a\\n' is not an http or https URL"),
    (_har(_entry(request__url="https://a.example:99999/")), "is not a URL (Port out of range"),
    (_har(_entry(request__headers=[{"name": "X", "value": "a\r\nInjected: 1"}])),
     "request.headers[0].value holds CR, LF or NUL"),
    (_har(_entry(request__headers=[{"name": "Bad Name", "value": "1"}])),
     "request.headers[0].name 'Bad Name' is not a field name"),
    (_har(_entry(request__headers=[{"value": "1"}])), "no request.headers[0].name"),
    (_har(_entry(response__status="200")), "response.status '200' is not a status code"),
    (_har(_entry(response__content={"text": "!!!", "encoding": "base64"})),
     "response.content.text is not valid base64"),
    (_har(_entry(response__content={"text": "x", "encoding": "rot13"})),
     "response.content.encoding 'rot13' is not base64"),
    (_har(_entry(request__postData={"text": "%%", "encoding": "base64"})),
     "request.postData.text is not valid base64"),
    (_har(_entry(response__content="ok")), "response.content is not an object"),
    (_har(_entry(request__postData=[])), "request.postData is not an object"),
    (_har(_entry(startedDateTime="yesterday")), "startedDateTime 'yesterday' is not an ISO 8601"),
    (_har(_entry(startedDateTime=_DELETE)), "no startedDateTime"),
    (_har(_entry(_waylay_client="me")), "_waylay_client 'me' is not [host, port]"),
    (_har(_entry(request__url="https://\ud800.example/")),
     "request.url is not valid Unicode (a lone surrogate)"),
    (_har(_entry(_waylay_error={"reason": "\udfff"})),
     "_waylay_error.reason is not valid Unicode"),
    (_har(_entry(request__postData={"mimeType": "application/x-www-form-urlencoded",
                                    "params": [{"name": "\ud800", "value": "1"}]})),
     "entry 1 (GET https://a.example/): text that is not valid Unicode"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), BAD_INPUTS)
def test_bad_input_is_a_config_error_naming_the_file_and_the_fault(
    data: bytes, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        read_har(data, "bad.har")
    assert caught.value.reason.startswith("bad.har: ")
    assert message in caught.value.reason
    assert "\n" not in caught.value.reason


def test_the_entry_in_fault_is_named_by_number_and_request(tmp_path: Path) -> None:
    data = _har(_entry(), _entry(request__url="https://b.example/x", response__status=-3))
    with pytest.raises(ConfigError) as caught:
        read_har(data, "two.har")
    assert caught.value.reason == (
        "two.har: entry 2 (GET https://b.example/x): response.status -3 is not a status code"
    )


def test_a_bad_har_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    database = tmp_path / "flows.db"
    append_flows(database, [(_flow(), None, b"kept")])
    before = database.read_bytes()
    bad = tmp_path / "bad.har"
    bad.write_bytes(_har(_entry(), _entry(response__status="x")))
    with pytest.raises(ConfigError, match="entry 2"):
        import_file(bad, database)
    assert database.read_bytes() == before
    with pytest.raises(ConfigError, match="entry 2"):
        import_file(bad, tmp_path / "new.db")
    assert not (tmp_path / "new.db").exists()


def test_an_unreadable_har_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read .*missing\.har"):
        import_file(tmp_path / "missing.har", tmp_path / "flows.db")


def test_export_from_a_file_that_is_not_a_database_leaves_the_output_alone(
    tmp_path: Path,
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not flows\n" * 50)
    out = tmp_path / "out.har"
    out.write_text("previous export")
    with pytest.raises(ConfigError, match="not a waylay flow database"):
        export_file(notes, out)
    assert out.read_text() == "previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "out.har"]


def test_a_database_damaged_inside_is_a_one_line_error_and_writes_nothing(
    tmp_path: Path,
) -> None:
    database = tmp_path / "flows.db"
    append_flows(database, [(_flow(path=f"/{n}"), None, b"x" * 3000) for n in range(50)])
    db = sqlite3.connect(database)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'heads'").fetchone()
    db.close()
    with database.open("r+b") as damaged:  # the header table's root page, not the schema's
        damaged.seek((root - 1) * page_size)
        damaged.write(b"\xff" * page_size)
    with pytest.raises(ConfigError, match=r"flows\.db: cannot read its flows \(database disk"):
        export_file(database, tmp_path / "out.har")
    assert [p.name for p in tmp_path.iterdir() if "out.har" in p.name] == []  # nor a temporary


def test_export_into_a_missing_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    database = tmp_path / "flows.db"
    append_flows(database, [])
    with pytest.raises(ConfigError, match=r"cannot write .*nowhere/out\.har"):
        export_file(database, tmp_path / "nowhere" / "out.har")


# --- properties ---------------------------------------------------------------------------------

_CONTENT_TYPES = st.sampled_from([
    b"", b"text/plain", b"text/html; charset=utf-8", b"text/plain; charset=ISO-8859-1",
    b"text/plain; charset=utf-16", b"text/plain; charset=shift_jis", b"text/plain; charset=base64",
    b"text/plain; charset=no-such-charset", b'application/json; charset="UTF-8"',
])  # fmt: skip


@given(
    data=st.one_of(st.binary(max_size=300), st.text(max_size=100).map(str.encode)),
    content_type=_CONTENT_TYPES,
)
def test_any_body_in_any_declared_charset_comes_back_byte_for_byte(
    data: bytes, content_type: bytes
) -> None:
    headers = [(b"Content-Type", content_type)] if content_type else []
    flow = _flow(request_headers=[(b"Host", b"h"), *headers], response_headers=headers)
    _, (_, request_body, response_body) = _round_trip(flow, data, data)
    assert response_body == data
    assert request_body == (data or None)  # an empty request body exports no postData


def test_tcp_flows_are_left_out_of_an_export(tmp_path: Path) -> None:
    database = tmp_path / "flows.db"
    tcp = Flow(
        ("198.18.1.2", 4000), Request("", "tcp", "198.18.2.2", 7, "", "", Headers()), kind="tcp"
    )
    append_flows(database, [(_flow(), None, b"kept"), (tcp, b"ping\n", b"pong\n")])
    out = tmp_path / "out.har"
    assert export_file(database, out) == 1
    assert export_file(database, out, only=parse_filter("~all")) == 1
    (entry,) = json.loads(out.read_text(encoding="utf-8"))["log"]["entries"]
    assert not entry["request"]["url"].startswith("tcp:")
