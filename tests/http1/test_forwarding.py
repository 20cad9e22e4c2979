"""What waylay changes on the way: hop-by-hop fields, Host, Upgrade, keep-alive.

RFC 9110 §7.6.1 (Connection), §7.8 (Upgrade), RFC 9112 §3.2 (Host), §9.3 (persistence).
"""

from __future__ import annotations

import pytest

from waylay.http1.forwarding import (
    HOP_BY_HOP,
    authority,
    client_keep_alive,
    connection_tokens,
    forward_request_headers,
    forward_response_headers,
    forward_trailers,
    is_upgrade_request,
    server_keep_alive,
)
from waylay.http1.head import Fields, RequestHead, ResponseHead


def test_hop_by_hop_set() -> None:
    assert (
        frozenset(
            {
                b"connection",
                b"keep-alive",
                b"proxy-connection",
                b"proxy-authorization",
                b"te",
                b"trailer",
                b"upgrade",
            }
        )
        == HOP_BY_HOP
    )


CONNECTION_TOKENS = [
    pytest.param([], frozenset(), id="none"),
    pytest.param([(b"Connection", b"close")], frozenset({b"close"}), id="one"),
    pytest.param(
        [(b"connection", b" Keep-Alive ,X-Foo,,"), (b"CONNECTION", b"Upgrade")],
        frozenset({b"keep-alive", b"x-foo", b"upgrade"}),
        id="lists-lines-case-empty-elements-7.6.1",
    ),
    pytest.param([(b"X-Connection", b"close")], frozenset(), id="other-field"),
]


@pytest.mark.parametrize(("headers", "tokens"), CONNECTION_TOKENS)
def test_connection_tokens(headers: Fields, tokens: frozenset[bytes]) -> None:
    assert connection_tokens(headers) == tokens


AUTHORITIES = [
    pytest.param("example.com", 80, 80, b"example.com", id="default-port-omitted"),
    pytest.param("example.com", 8080, 80, b"example.com:8080", id="other-port"),
    pytest.param("example.com", 443, 80, b"example.com:443", id="https-port-on-http"),
    pytest.param("::1", 443, 443, b"[::1]", id="ipv6-bracketed"),
    pytest.param("2001:db8::1", 8443, 443, b"[2001:db8::1]:8443", id="ipv6-port"),
    pytest.param("192.0.2.1", 81, 80, b"192.0.2.1:81", id="ipv4"),
]


@pytest.mark.parametrize(("host", "port", "default", "expected"), AUTHORITIES)
def test_authority(host: str, port: int, default: int, expected: bytes) -> None:
    assert authority(host, port, default) == expected


# --- requests ---------------------------------------------------------------------------------

FORWARD_REQUEST = [
    pytest.param(
        [(b"host", b"old"), (b"Accept", b"*/*")],
        [(b"host", b"new.example"), (b"Accept", b"*/*")],
        id="host-replaced-in-place-3.2.2",
    ),
    pytest.param(
        [(b"Accept", b"*/*"), (b"X-B", b"1")],
        [(b"Host", b"new.example"), (b"Accept", b"*/*"), (b"X-B", b"1")],
        id="host-inserted-first-3.2",
    ),
    pytest.param(
        [
            (b"Host", b"old"),
            (b"Connection", b"keep-alive, X-Secret"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Proxy-Connection", b"keep-alive"),
            (b"Proxy-Authorization", b"Basic Zm9vOmJhcg=="),
            (b"TE", b"trailers"),
            (b"Trailer", b"X-Sum"),
            (b"Upgrade", b"websocket"),
            (b"x-secret", b"1"),
            (b"X-Kept", b"2"),
            (b"Transfer-Encoding", b"chunked"),
        ],
        [(b"Host", b"new.example"), (b"X-Kept", b"2"), (b"Transfer-Encoding", b"chunked")],
        id="hop-by-hop-and-connection-named-dropped-7.6.1",
    ),
    pytest.param(
        [
            (b"Host", b"old"),
            (b"Connection", b"Content-Length, Transfer-Encoding, Host"),
            (b"Content-Length", b"5"),
        ],
        [(b"Host", b"new.example"), (b"Content-Length", b"5")],
        id="framing-never-dropped-by-connection",
    ),
    pytest.param(
        [(b"Host", b"old"), (b"X-A", b"1"), (b"x-b", b"2"), (b"X-A", b"3")],
        [(b"Host", b"new.example"), (b"X-A", b"1"), (b"x-b", b"2"), (b"X-A", b"3")],
        id="case-and-order-kept",
    ),
]


@pytest.mark.parametrize(("headers", "expected"), FORWARD_REQUEST)
def test_forward_request_headers(headers: Fields, expected: Fields) -> None:
    assert forward_request_headers(headers, b"new.example") == expected


CANONICAL_FRAMING = [
    pytest.param(
        [(b"Transfer-Encoding", b"Chunked")],
        [(b"Transfer-Encoding", b"chunked")],
        id="te-lowercased",
    ),
    pytest.param(
        [(b"transfer-encoding", b"GZIP"), (b"X", b"1"), (b"Transfer-Encoding", b"chunked")],
        [(b"transfer-encoding", b"gzip, chunked"), (b"X", b"1")],
        id="te-lines-joined-at-first",
    ),
    pytest.param(
        [(b"Content-Length", b"5, 5"), (b"X", b"1"), (b"content-length", b"5")],
        [(b"Content-Length", b"5"), (b"X", b"1")],
        id="cl-repeats-collapsed",
    ),
]


@pytest.mark.parametrize(("framing", "expected"), CANONICAL_FRAMING)
def test_framing_fields_forwarded_in_canonical_form(framing: Fields, expected: Fields) -> None:
    assert forward_request_headers([(b"Host", b"h"), *framing], b"h") == [
        (b"Host", b"h"),
        *expected,
    ]
    assert forward_response_headers(framing) == expected


def test_forward_request_headers_upgrade() -> None:
    headers = [
        (b"Host", b"old"),
        (b"Connection", b"keep-alive, Upgrade"),
        (b"Upgrade", b"websocket"),
        (b"Sec-WebSocket-Key", b"k"),
        (b"Keep-Alive", b"5"),
    ]
    assert forward_request_headers(headers, b"a", upgrade=True) == [
        (b"Host", b"a"),
        (b"Upgrade", b"websocket"),
        (b"Sec-WebSocket-Key", b"k"),
        (b"Connection", b"Upgrade"),
    ]


def test_forward_request_headers_does_not_change_its_input() -> None:
    headers = [(b"Connection", b"close"), (b"Host", b"old")]
    forward_request_headers(headers, b"a", upgrade=True)
    assert headers == [(b"Connection", b"close"), (b"Host", b"old")]


UPGRADE_REQUESTS = [
    pytest.param([(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")], True, id="yes-7.8"),
    pytest.param(
        [(b"Connection", b"keep-alive, upgrade"), (b"upgrade", b"h2c")], True, id="list-7.8"
    ),
    pytest.param([(b"Upgrade", b"websocket")], False, id="not-in-connection-7.8"),
    pytest.param([(b"Connection", b"Upgrade")], False, id="no-upgrade-field-7.8"),
]


@pytest.mark.parametrize(("headers", "expected"), UPGRADE_REQUESTS)
def test_is_upgrade_request(headers: Fields, expected: bool) -> None:
    head = RequestHead(b"GET", b"/", b"HTTP/1.1", [(b"Host", b"a"), *headers])
    assert is_upgrade_request(head) is expected


def test_http10_request_is_never_an_upgrade() -> None:
    # RFC 9110 §7.8: a server must ignore Upgrade in an HTTP/1.0 request.
    fields = [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")]
    assert not is_upgrade_request(RequestHead(b"GET", b"/", b"HTTP/1.0", fields))


def test_http10_request_loses_its_expectation() -> None:
    # RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 is ignored, not passed on.
    fields = [(b"Host", b"h"), (b"Expect", b"100-continue"), (b"X-A", b"1")]
    assert forward_request_headers(fields, b"h", http10=True) == [(b"Host", b"h"), (b"X-A", b"1")]
    assert forward_request_headers(fields, b"h") == fields


# --- responses --------------------------------------------------------------------------------

RESPONSE_FIELDS = [
    (b"Connection", b"keep-alive, X-Hop"),
    (b"Keep-Alive", b"timeout=5"),
    (b"Content-Type", b"text/plain"),
    (b"Transfer-Encoding", b"chunked"),
    (b"X-Hop", b"1"),
    (b"Upgrade", b"websocket"),
    (b"set-cookie", b"a=b"),
]


def test_forward_response_headers() -> None:
    assert forward_response_headers(RESPONSE_FIELDS) == [
        (b"Content-Type", b"text/plain"),
        (b"Transfer-Encoding", b"chunked"),
        (b"set-cookie", b"a=b"),
    ]


def test_forward_response_headers_close_and_dechunk() -> None:
    assert forward_response_headers(RESPONSE_FIELDS, close=True, dechunk=True) == [
        (b"Content-Type", b"text/plain"),
        (b"set-cookie", b"a=b"),
        (b"Connection", b"close"),
    ]


def test_forward_response_headers_upgrade() -> None:
    headers = [(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"), (b"Sec-WS", b"x")]
    assert forward_response_headers(headers, upgrade=True) == [
        (b"Upgrade", b"websocket"),
        (b"Sec-WS", b"x"),
        (b"Connection", b"Upgrade"),
    ]


def test_forward_response_headers_keep_framing_named_in_connection() -> None:
    headers = [(b"Connection", b"content-length"), (b"Content-Length", b"3")]
    assert forward_response_headers(headers) == [(b"Content-Length", b"3")]


# --- keep-alive (RFC 9112 §9.3) ---------------------------------------------------------------

CLIENT_KEEP_ALIVE = [
    pytest.param(b"HTTP/1.1", [], True, id="http11-default-9.3"),
    pytest.param(b"HTTP/1.1", [(b"Connection", b"close")], False, id="http11-close-9.3"),
    pytest.param(b"HTTP/1.1", [(b"connection", b"foo, CLOSE")], False, id="close-in-list-9.3"),
    pytest.param(b"HTTP/1.0", [], False, id="http10-9.3"),
    pytest.param(b"HTTP/1.0", [(b"Connection", b"keep-alive")], False, id="http10-ka-closed"),
]


@pytest.mark.parametrize(("version", "headers", "expected"), CLIENT_KEEP_ALIVE)
def test_client_keep_alive(version: bytes, headers: Fields, expected: bool) -> None:
    assert client_keep_alive(RequestHead(b"GET", b"/", version, headers)) is expected


SERVER_KEEP_ALIVE = [
    pytest.param(b"HTTP/1.1", [], True, id="http11-default-9.3"),
    pytest.param(b"HTTP/1.1", [(b"Connection", b"close")], False, id="http11-close-9.3"),
    pytest.param(b"HTTP/1.0", [], False, id="http10-default-9.3"),
    pytest.param(b"HTTP/1.0", [(b"Connection", b"Keep-Alive")], True, id="http10-ka-9.3"),
    pytest.param(
        b"HTTP/1.0", [(b"Connection", b"keep-alive, close")], False, id="http10-ka-close-9.3"
    ),
]


@pytest.mark.parametrize(("version", "headers", "expected"), SERVER_KEEP_ALIVE)
def test_server_keep_alive(version: bytes, headers: Fields, expected: bool) -> None:
    assert server_keep_alive(ResponseHead(version, 200, b"OK", headers)) is expected


# --- trailers (RFC 9110 §6.5.1) ---------------------------------------------------------------


def test_trailers_that_frame_route_or_belong_to_the_connection_are_not_forwarded() -> None:
    trailers: Fields = [
        (b"X-Checksum", b"abc"),
        (b"Content-Length", b"5"),
        (b"transfer-encoding", b"chunked"),
        (b"Host", b"evil.test"),
        (b"Connection", b"close"),
        (b"TE", b"trailers"),
        (b"Trailer", b"X-Checksum"),
        (b"x-sum", b"1"),
    ]
    assert forward_trailers(trailers) == [(b"X-Checksum", b"abc"), (b"x-sum", b"1")]
