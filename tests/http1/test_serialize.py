"""What waylay writes: heads and chunks in canonical form (RFC 9112 §3, §4, §7.1)."""

from __future__ import annotations

import pytest

from waylay.http1.body import ChunkedDecoder
from waylay.http1.head import parse_request_head, parse_response_head
from waylay.http1.serialize import chunk, last_chunk, request_head, response_head


def test_request_head() -> None:
    assert (
        request_head(b"GET", b"/x?y", [(b"Host", b"a"), (b"X-Case", b"V")])
        == b"GET /x?y HTTP/1.1\r\nHost: a\r\nX-Case: V\r\n\r\n"
    )
    assert request_head(b"GET", b"/", [], b"HTTP/1.0") == b"GET / HTTP/1.0\r\n\r\n"


def test_response_head() -> None:
    assert (
        response_head(b"HTTP/1.1", 200, b"OK", [(b"Content-Length", b"0")])
        == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    )
    # An empty reason keeps its SP (RFC 9112 §4: the SP is not optional).
    assert response_head(b"HTTP/1.1", 204, b"", []) == b"HTTP/1.1 204 \r\n\r\n"


def test_heads_parse_back() -> None:
    headers = [(b"Host", b"a"), (b"Empty", b""), (b"X", b"caf\xc3\xa9")]
    data = request_head(b"POST", b"/", headers)
    assert parse_request_head(data).headers == headers
    response = parse_response_head(response_head(b"HTTP/1.0", 404, b"Not Found", headers))
    assert (response.version, response.status, response.reason) == (b"HTTP/1.0", 404, b"Not Found")


INJECTIONS = [
    pytest.param([(b"X", b"a\r\nInjected: 1")], id="crlf-in-value"),
    pytest.param([(b"X", b"a\nInjected: 1")], id="lf-in-value"),
    pytest.param([(b"X", b"a\rb")], id="cr-in-value"),
    pytest.param([(b"X\r\nY", b"a")], id="crlf-in-name"),
]


@pytest.mark.parametrize("headers", INJECTIONS)
def test_header_injection_refused(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(ValueError):
        request_head(b"GET", b"/", headers)
    with pytest.raises(ValueError):
        response_head(b"HTTP/1.1", 200, b"OK", headers)
    with pytest.raises(ValueError):
        last_chunk(headers)
    with pytest.raises(ValueError):
        request_head(b"GET", b"/\r\nX: y", [])


CHUNKS = [
    pytest.param(b"", b"", id="empty-is-not-the-last-chunk"),
    pytest.param(b"a", b"1\r\na\r\n", id="one-byte"),
    pytest.param(b"x" * 255, b"ff\r\n" + b"x" * 255 + b"\r\n", id="lowercase-hex"),
    pytest.param(b"\r\n0\r\n\r\n", b"7\r\n\r\n0\r\n\r\n\r\n", id="data-that-looks-like-framing"),
]


@pytest.mark.parametrize(("data", "expected"), CHUNKS)
def test_chunk(data: bytes, expected: bytes) -> None:
    assert chunk(data) == expected


def test_last_chunk() -> None:
    assert last_chunk() == b"0\r\n\r\n"
    assert last_chunk([(b"X-Sum", b"1"), (b"b", b"")]) == b"0\r\nX-Sum: 1\r\nb: \r\n\r\n"


def test_chunks_decode_back() -> None:
    body = chunk(b"hello ") + chunk(b"") + chunk(b"world") + last_chunk([(b"T", b"v")])
    decoder = ChunkedDecoder()
    pieces, used = decoder.feed(body)
    assert (b"".join(pieces), used, decoder.done, decoder.trailers) == (
        b"hello world",
        len(body),
        True,
        [(b"T", b"v")],
    )
