"""The flow model as addons use it: bodies through their Content-Encoding, text in its charset,
URLs, made-up responses, and what kill, intercept and resume do to a flow."""

from __future__ import annotations

import gzip
import json

import brotli
import pytest

from waylay.encoding import DecodeError
from waylay.flow import Flow, Request, Response
from waylay.headers import Headers


def _request(fields: list[tuple[bytes, bytes]] | None = None, /, **changes: object) -> Request:
    request = Request(
        "GET", "https", "api.example.test", 443, "/v1/items?id=7&q=a+b", "HTTP/1.1",
        Headers(fields if fields is not None else [(b"Host", b"api.example.test")]),
    )  # fmt: skip
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def _response(fields: list[tuple[bytes, bytes]], raw: bytes | None) -> Response:
    return Response(200, "OK", "HTTP/1.1", Headers(fields), raw_content=raw)


# --- content: the body with its Content-Encoding undone ------------------------------------


def test_content_is_the_raw_body_decoded() -> None:
    body = b'{"id": 7, "name": "Zo\xc3\xab"}' * 20
    response = _response([(b"Content-Encoding", b"gzip")], gzip.compress(body))
    assert response.content == body
    assert response.raw_content != body  # what the wire carried is kept as it was


def test_without_a_content_encoding_content_is_raw_content() -> None:
    response = _response([], b"plain")
    assert response.content == b"plain" and response.raw_content == b"plain"


def test_a_streamed_body_has_no_content_text_or_json() -> None:
    response = _response([(b"Content-Encoding", b"gzip")], None)
    assert response.content is None and response.text is None
    assert response.get_content(strict=False) is None
    with pytest.raises(ValueError, match="streamed"):
        response.json()


def test_a_body_that_does_not_decode_is_a_value_error_unless_not_strict() -> None:
    response = _response([(b"Content-Encoding", b"gzip")], b"not gzip")
    with pytest.raises(ValueError):
        response.content  # noqa: B018
    with pytest.raises(DecodeError):
        response.get_content()
    assert response.get_content(strict=False) == b"not gzip"


def test_setting_content_encodes_it_as_the_content_encoding_says() -> None:
    response = _response([(b"Content-Encoding", b"br")], brotli.compress(b"old"))
    response.content = b"new body " * 50
    assert response.raw_content is not None
    assert brotli.decompress(response.raw_content) == b"new body " * 50
    assert response.content == b"new body " * 50


def test_setting_content_updates_a_content_length_in_its_place() -> None:
    fields = [(b"Content-Length", b"3"), (b"Content-Encoding", b"gzip"), (b"X-After", b"1")]
    response = _response(fields, gzip.compress(b"old"))
    response.content = b"a much longer body than before"
    assert response.raw_content is not None
    assert response.headers.get_all("Content-Length") == [str(len(response.raw_content))]
    names = [name.lower() for name, _ in response.headers.fields]
    assert names == [b"content-length", b"content-encoding", b"x-after"]
    assert gzip.decompress(response.raw_content) == b"a much longer body than before"


def test_setting_content_adds_no_content_length_where_there_was_none() -> None:
    # Chunked, or a request the data path frames: the length is the data path's to choose.
    response = _response([(b"Transfer-Encoding", b"chunked")], b"old")
    response.content = b"new"
    assert response.headers.fields == [(b"Transfer-Encoding", b"chunked")]
    assert response.raw_content == b"new"


def test_setting_content_to_none_clears_the_body() -> None:
    response = _response([(b"Content-Length", b"3")], b"old")
    response.content = None
    assert response.raw_content is None
    assert response.headers["content-length"] == "3"


def test_request_content_works_the_same() -> None:
    request = _request([(b"Host", b"h"), (b"Content-Encoding", b"gzip"),
                        (b"Content-Length", b"0")])  # fmt: skip
    request.content = b"posted"
    assert request.raw_content is not None
    assert gzip.decompress(request.raw_content) == b"posted"
    assert request.headers["Content-Length"] == str(len(request.raw_content))


# --- text and json -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "charset"),
    [
        (None, "utf-8"),
        (b"text/plain", "utf-8"),
        (b"text/plain; charset=iso-8859-1", "iso-8859-1"),
        (b'text/html; CHARSET="Shift_JIS"', "Shift_JIS"),
        (b"application/json;charset=utf-16", "utf-16"),
    ],
)
def test_the_charset_is_the_content_types_else_utf_8(
    content_type: bytes | None, charset: str
) -> None:
    fields = [(b"Content-Type", content_type)] if content_type else []
    assert _response(fields, b"").charset == charset


def test_text_decodes_the_content_in_its_charset() -> None:
    fields = [(b"Content-Type", b"text/plain; charset=iso-8859-1"), (b"Content-Encoding", b"gzip")]
    response = _response(fields, gzip.compress("café".encode("iso-8859-1")))
    assert response.text == "café"


def test_text_replaces_what_does_not_decode_and_an_unknown_charset_reads_as_utf_8() -> None:
    assert _response([], b"ok \xff").text == "ok \ufffd"
    unknown = _response([(b"Content-Type", b"text/plain; charset=no-such")], "é".encode())
    assert unknown.text == "é"


def test_setting_text_encodes_it_in_the_charset() -> None:
    fields = [(b"Content-Type", b"text/plain; charset=iso-8859-1"), (b"Content-Length", b"0")]
    response = _response(fields, b"")
    response.text = "crème"
    assert response.raw_content == "crème".encode("iso-8859-1")
    assert response.headers["content-length"] == "5"


def test_text_the_charset_cannot_hold_is_set_as_utf_8() -> None:
    response = _response([(b"Content-Type", b"text/plain; charset=ascii")], b"")
    response.text = "✓"
    assert response.raw_content == "✓".encode()


def test_json_parses_the_decoded_content() -> None:
    document = {"items": [1, 2], "name": "Zoë"}
    response = _response(
        [(b"Content-Encoding", b"gzip")], gzip.compress(json.dumps(document).encode())
    )
    assert response.json() == document
    with pytest.raises(ValueError):
        _response([], b"{not json").json()


# --- Response.make ------------------------------------------------------------------------


def test_make_fills_the_reason_version_and_body() -> None:
    response = Response.make(404, b"nothing here", {"Content-Type": "text/plain"})
    assert (response.status_code, response.reason, response.http_version) == (
        404,
        "Not Found",
        "HTTP/1.1",
    )
    assert response.raw_content == response.content == b"nothing here"
    assert response.headers.fields == [(b"Content-Type", b"text/plain")]


def test_make_defaults_to_an_empty_200_and_sends_text_as_utf_8() -> None:
    empty = Response.make()
    assert (empty.status_code, empty.reason, empty.raw_content) == (200, "OK", b"")
    assert empty.headers.fields == []
    text = Response.make(201, "créé", [("X-A", "1"), ("x-a", "2")])
    assert text.raw_content == "créé".encode()
    assert text.headers.get_all("X-A") == ["1", "2"]


def test_make_with_a_status_without_a_phrase_has_an_empty_reason() -> None:
    assert Response.make(599).reason == ""


def test_make_checks_the_fields_it_is_given() -> None:
    with pytest.raises(ValueError):
        Response.make(200, b"", {"X-A": "a\r\nInjected: 1"})


# --- requests: url, host, query ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "url"),
    [
        ({}, "https://api.example.test/v1/items?id=7&q=a+b"),
        ({"scheme": "http", "port": 80, "path": "/"}, "http://api.example.test/"),
        ({"port": 8443}, "https://api.example.test:8443/v1/items?id=7&q=a+b"),
        ({"scheme": "http", "port": 443}, "http://api.example.test:443/v1/items?id=7&q=a+b"),
        ({"host": "2001:db8::1", "path": "/"}, "https://[2001:db8::1]/"),
        ({"method": "CONNECT", "port": 443}, "api.example.test:443"),
        ({"method": "OPTIONS", "path": "*"}, "https://api.example.test"),
        ({"scheme": "tcp", "port": 7}, "tcp://api.example.test:7"),
    ],
)
def test_the_url_is_as_a_user_would_type_it(changes: dict[str, object], url: str) -> None:
    assert _request(**changes).url == url


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "path"),
    [
        ("http://other.test/x?y=1", "http", "other.test", 80, "/x?y=1"),
        ("HTTPS://Other.TEST:8443", "https", "other.test", 8443, "/"),
        ("https://[::1]:9000?q", "https", "::1", 9000, "/?q"),
    ],
)
def test_setting_the_url_sends_the_request_there(
    url: str, scheme: str, host: str, port: int, path: str
) -> None:
    request = _request()
    request.url = url
    assert (request.scheme, request.host, request.port, request.path) == (
        scheme,
        host,
        port,
        path,
    )
    assert request.headers.fields == [(b"Host", b"api.example.test")]  # Host is left alone


@pytest.mark.parametrize("url", ["/relative", "/"])
def test_a_url_that_is_not_absolute_is_refused(url: str) -> None:
    request = _request()
    with pytest.raises(ValueError, match="not an absolute"):
        request.url = url
    assert request == _request()


@pytest.mark.parametrize(
    "url",
    ["ftp://files.test/", "other.test:443", "https://user@other.test/", "https://a.test/#x",
     "https://a.test/a b", ""],
)  # fmt: skip
def test_a_url_that_cannot_be_sent_is_a_value_error(url: str) -> None:
    request = _request()
    with pytest.raises(ValueError):
        request.url = url
    assert request == _request()


def test_the_query_is_decoded_pairs_in_order() -> None:
    request = _request(path="/s?q=a+b%20c&empty=&flag&q=2")
    assert request.query == [("q", "a b c"), ("empty", ""), ("flag", ""), ("q", "2")]
    assert _request(path="/").query == []


@pytest.mark.parametrize(
    ("host_field", "pretty"),
    [
        (None, "api.example.test"),
        (b"shown.test:8080", "shown.test"),
        (b"[2001:db8::1]:8080", "2001:db8::1"),  # as Request.host spells an IPv6 host
        (b"shown.test", "shown.test"),
        (b"[2001:db8::1]", "2001:db8::1"),
    ],
)
def test_pretty_host_is_the_host_the_client_named(host_field: bytes | None, pretty: str) -> None:
    fields = [(b"Host", host_field)] if host_field else []
    assert _request(fields).pretty_host == pretty


def test_requests_and_responses_compare_by_value() -> None:
    assert _request() == _request()
    assert _request() != _request(method="POST")
    assert _response([(b"A", b"1")], b"x") == _response([(b"A", b"1")], b"x")
    assert _response([(b"A", b"1")], b"x") != _response([(b"a", b"1")], b"x")


# --- what addons do to a flow --------------------------------------------------------------


def _flow() -> Flow:
    return Flow(("127.0.0.1", 50000), _request())


def test_kill_marks_the_flow_killed_with_the_killed_error() -> None:
    flow = _flow()
    assert not flow.killed and flow.error is None
    flow.kill()
    assert flow.killed
    assert flow.error is not None and flow.error.code == "killed"


def test_intercept_and_resume_flip_intercepted_and_wake_the_waiter_once() -> None:
    flow = _flow()
    woken: list[str] = []
    assert not flow.intercepted
    flow.intercept()
    assert flow.intercepted
    flow._on_resume = lambda: woken.append("resumed")
    flow.resume()
    assert not flow.intercepted and woken == ["resumed"]
    flow.resume()  # nothing waits any more
    assert woken == ["resumed"]


def test_resume_without_a_waiter_only_clears_intercepted() -> None:
    flow = _flow()
    flow.intercept()
    flow.resume()
    assert not flow.intercepted


def test_killing_an_intercepted_flow_resumes_it_so_it_can_end() -> None:
    flow = _flow()
    woken: list[bool] = []
    flow.intercept()
    flow._on_resume = lambda: woken.append(flow.killed)
    flow.kill()
    assert woken == [True]  # killed before the waiter wakes: it sees why
    assert not flow.intercepted and flow.killed


def test_the_filter_language_is_a_scripts_too() -> None:
    from waylay import FilterError, parse_filter

    matcher = parse_filter("~m POST & ~d api.example.test")
    assert matcher.matches(Flow(("127.0.0.1", 1), _request(method="POST")))
    assert not matcher.matches(Flow(("127.0.0.1", 1), _request(method="GET")))
    with pytest.raises(FilterError):
        parse_filter("~zz")
