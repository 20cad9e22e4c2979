"""Response heads: the status line and header fields from a server (RFC 9112 §4-§5).

Every refusal of a server's bytes is a 502 with code ``upstream-protocol-error``.
"""

from __future__ import annotations

import pytest

from waylay.errors import HeadTooLarge, ProtocolError
from waylay.http1.head import ResponseHead, find_head_end, parse_response_head

VALID = [
    pytest.param(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        ResponseHead(b"HTTP/1.1", 200, b"OK", [(b"Content-Length", b"0")]),
        id="simple-4",
    ),
    pytest.param(
        b"HTTP/1.0 404 Not Found\r\n\r\n",
        ResponseHead(b"HTTP/1.0", 404, b"Not Found", []),
        id="http10-reason-with-spaces-4",
    ),
    # Leniency: no SP and no reason (real servers send it); documented in head.py.
    pytest.param(
        b"HTTP/1.1 200\r\nX: y\r\n\r\n",
        ResponseHead(b"HTTP/1.1", 200, b"", [(b"X", b"y")]),
        id="no-reason-no-space-leniency-4",
    ),
    pytest.param(
        b"HTTP/1.1 204 \r\n\r\n", ResponseHead(b"HTTP/1.1", 204, b"", []), id="empty-reason-4"
    ),
    pytest.param(
        b"HTTP/1.1 200 caf\xc3\xa9\tok  \r\n\r\n",
        ResponseHead(b"HTTP/1.1", 200, b"caf\xc3\xa9\tok  ", []),
        id="reason-obs-text-htab-4",
    ),
    pytest.param(
        b"HTTP/1.1 100 Continue\r\n\r\n",
        ResponseHead(b"HTTP/1.1", 100, b"Continue", []),
        id="lowest-status-4",
    ),
    pytest.param(
        b"HTTP/1.1 999 Odd\r\n\r\n", ResponseHead(b"HTTP/1.1", 999, b"Odd", []), id="highest-4"
    ),
    # RFC 9112 §5.1: whitespace before the colon is removed from a response (a proxy MUST).
    pytest.param(
        b"HTTP/1.1 200 OK\r\nFoo : bar\r\nBaz\t \t: qux\r\nOk: 1\r\n\r\n",
        ResponseHead(b"HTTP/1.1", 200, b"OK", [(b"Foo", b"bar"), (b"Baz", b"qux"), (b"Ok", b"1")]),
        id="space-before-colon-removed-5.1",
    ),
    pytest.param(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=b\r\nset-cookie: c=d\r\nX:  \r\n\r\n",
        ResponseHead(
            b"HTTP/1.1",
            200,
            b"OK",
            [(b"Set-Cookie", b"a=b"), (b"set-cookie", b"c=d"), (b"X", b"")],
        ),
        id="repeated-fields-kept-in-order-5.3",
    ),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid_response_head(data: bytes, expected: ResponseHead) -> None:
    assert parse_response_head(data) == expected
    assert find_head_end(data, response=True) == len(data)


INVALID = [
    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    pytest.param(b"HTTP/1.1 20 OK\r\n\r\n", id="two-digit-status-4"),
    pytest.param(b"HTTP/1.1 2000 OK\r\n\r\n", id="four-digit-status-4"),
    pytest.param(b"HTTP/1.1 099 Low\r\n\r\n", id="status-below-100-4"),
    pytest.param(b"HTTP/1.1 +20 OK\r\n\r\n", id="signed-status-4"),
    pytest.param(b"HTTP/1.1 2a0 OK\r\n\r\n", id="hex-status-4"),
    pytest.param(b"HTTP/1.1  200 OK\r\n\r\n", id="double-space-4"),
    pytest.param(b"HTTP/1.1\t200 OK\r\n\r\n", id="htab-separator-4"),
    pytest.param(b"HTTP/1.1\r\n\r\n", id="no-status-4"),
    pytest.param(b"HTTP/1.1 \r\n\r\n", id="empty-status-4"),
    pytest.param(b"HTTP/2 200 OK\r\n\r\n", id="http2-2.3"),
    pytest.param(b"HTTP/1.2 200 OK\r\n\r\n", id="http12-2.3"),
    pytest.param(b"http/1.1 200 OK\r\n\r\n", id="lowercase-version-2.3"),
    pytest.param(b"ICY 200 OK\r\n\r\n", id="not-http-2.3"),
    # RFC 9112 §2.2: no empty lines are skipped before a status line
    pytest.param(b"\r\nHTTP/1.1 200 OK\r\n\r\n", id="leading-crlf-2.2"),
    # RFC 9112 §5.2, §2.2, RFC 9110 §5.5: as for requests
    pytest.param(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", id="obs-fold-5.2"),
    pytest.param(b"HTTP/1.1 200 OK\r\n X: a\r\n\r\n", id="space-before-first-field-2.2"),
    pytest.param(b"HTTP/1.1 200 OK\nX: a\r\n\r\n", id="bare-lf-2.2"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX: a\n\n", id="bare-lf-end-2.2"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", id="bare-cr-2.2"),
    pytest.param(b"HTTP/1.1 200 O\x00K\r\n\r\n", id="nul-in-reason-5.5"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", id="nul-in-value-5.5"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX: \x1b[31m\r\n\r\n", id="esc-in-value-5.5"),
    pytest.param(b"HTTP/1.1 200 OK\r\n: a\r\n\r\n", id="empty-name-5"),
    pytest.param(b"HTTP/1.1 200 OK\r\n : a\r\n\r\n", id="blank-name-5"),
    pytest.param(b"HTTP/1.1 200 OK\r\nA B: c\r\n\r\n", id="space-in-name-5"),
    pytest.param(b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", id="no-colon-5"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX: a\r\n", id="incomplete-2.1"),
]


@pytest.mark.parametrize("data", INVALID)
def test_invalid_response_head(data: bytes) -> None:
    with pytest.raises(ProtocolError) as error:
        parse_response_head(data)
    assert error.value.status == 502
    assert error.value.code == "upstream-protocol-error"


def test_too_many_response_headers_is_502() -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 11 + b"\r\n"
    assert len(parse_response_head(head, max_headers=11).headers) == 11
    with pytest.raises(HeadTooLarge) as error:
        parse_response_head(head, max_headers=10)
    assert error.value.status == 502
    assert error.value.code == "upstream-protocol-error"


def test_bytearray_input_gives_bytes() -> None:
    head = parse_response_head(bytearray(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\n"))
    assert head == ResponseHead(b"HTTP/1.1", 200, b"OK", [(b"X", b"y")])
    assert all(type(part) is bytes for part in (head.reason, *head.headers[0]))
