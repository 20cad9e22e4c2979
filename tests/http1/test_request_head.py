"""Request heads: boundaries, the request line, header fields and Host (RFC 9112 §2-§5).

Tables of (wire bytes, expected head or expected error status), grouped by rule.
"""

from __future__ import annotations

import pytest

from waylay.errors import HeadTooLarge, ProtocolError
from waylay.http1.head import (
    RequestHead,
    find_head_end,
    header_value,
    header_values,
    parse_request_head,
)

H = b"Host: example.com\r\n"

# --- find_head_end ----------------------------------------------------------------------------

HEAD_END = [
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"\r\n", 37, id="complete"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"\r\nBODY", 37, id="body-follows"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H, -1, id="needs-more"),
    pytest.param(b"GET / HTTP/1.1\r\n" + H + b"\r", -1, id="needs-last-lf"),
    pytest.param(b"", -1, id="empty"),
    pytest.param(b"\r\n", -1, id="only-crlf-needs-more"),
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 18, id="no-headers"),
    # RFC 9112 §2.2: leading empty lines are skipped, not taken for the end of an empty head.
    pytest.param(b"\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n", 41, id="leading-crlfs-2.2"),
    # Bare-LF endings get an end too, so the parser can refuse them instead of waiting.
    pytest.param(b"GET / HTTP/1.1\nHost: a\n\nX", 24, id="bare-lf-end-2.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\n\nX", 26, id="crlf-lf-end-2.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\n\r\nX", 26, id="lf-crlf-end-2.2"),
]


@pytest.mark.parametrize(("data", "end"), HEAD_END)
def test_find_head_end(data: bytes, end: int) -> None:
    assert find_head_end(data) == end
    assert find_head_end(bytearray(data)) == end


def test_find_head_end_limit() -> None:
    head = b"GET / HTTP/1.1\r\n" + H + b"\r\n"
    assert find_head_end(head, max_head_size=len(head)) == len(head)
    with pytest.raises(HeadTooLarge) as error:
        find_head_end(head, max_head_size=len(head) - 1)
    assert error.value.status == 431


def test_find_head_end_unterminated_head_over_limit() -> None:
    with pytest.raises(HeadTooLarge):
        find_head_end(b"GET / HTTP/1.1\r\nX: " + b"a" * 100, max_head_size=64)
    assert find_head_end(b"GET / HTTP/1.1\r\nX: " + b"a" * 10, max_head_size=64) == -1


def test_find_head_end_endless_empty_lines_hit_the_limit() -> None:
    with pytest.raises(HeadTooLarge):
        find_head_end(b"\r\n" * 100, max_head_size=64)


def test_find_head_end_response_side_is_502() -> None:
    with pytest.raises(HeadTooLarge) as error:
        find_head_end(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20, max_head_size=64, response=True)
    assert error.value.status == 502
    assert error.value.code == "upstream-protocol-error"


# --- valid requests ---------------------------------------------------------------------------

VALID = [
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        RequestHead(b"GET", b"/", b"HTTP/1.1", [(b"Host", b"example.com")]),
        id="simple",
    ),
    pytest.param(
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        RequestHead(b"GET", b"/", b"HTTP/1.1", [(b"Host", b"a")]),
        id="leading-empty-lines-skipped-2.2",
    ),
    pytest.param(
        b"GET /x HTTP/1.0\r\n\r\n",
        RequestHead(b"GET", b"/x", b"HTTP/1.0", []),
        id="http10-without-host-3.2",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-A:   spaced \t \r\nX-B:\r\nX-C:\tv\r\n\r\n",
        RequestHead(
            b"GET",
            b"/",
            b"HTTP/1.1",
            [(b"Host", b"a"), (b"X-A", b"spaced"), (b"X-B", b""), (b"X-C", b"v")],
        ),
        id="ows-stripped-empty-value-5.1",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nhOsT: a\r\nX: a\tb : c\r\nX: caf\xc3\xa9\xff\r\n\r\n",
        RequestHead(
            b"GET",
            b"/",
            b"HTTP/1.1",
            [(b"hOsT", b"a"), (b"X", b"a\tb : c"), (b"X", b"caf\xc3\xa9\xff")],
        ),
        id="name-case-kept-htab-colon-obs-text-in-value-5.5",
    ),
    pytest.param(
        b"M-SEARCH * HTTP/1.1\r\nHost: 239.255.255.250:1900\r\n\r\n",
        RequestHead(b"M-SEARCH", b"*", b"HTTP/1.1", [(b"Host", b"239.255.255.250:1900")]),
        id="method-is-any-token-9.1",
    ),
    pytest.param(
        b"GET http://a.example/p?q=%20 HTTP/1.1\r\nHost: a.example\r\n\r\n",
        RequestHead(b"GET", b"http://a.example/p?q=%20", b"HTTP/1.1", [(b"Host", b"a.example")]),
        id="absolute-form-target-kept-3.2.2",
    ),
    pytest.param(
        b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n",
        RequestHead(b"CONNECT", b"[::1]:443", b"HTTP/1.1", [(b"Host", b"[::1]:443")]),
        id="ipv6-host-3.2",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        RequestHead(b"GET", b"/", b"HTTP/1.1", [(b"Host", b"")]),
        id="empty-host-allowed-3.2",
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Host: b\r\nhost-name: c\r\n\r\n",
        RequestHead(
            b"GET",
            b"/",
            b"HTTP/1.1",
            [(b"Host", b"a"), (b"X-Host", b"b"), (b"host-name", b"c")],
        ),
        id="only-host-counts-as-host-3.2",
    ),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid_request_head(data: bytes, expected: RequestHead) -> None:
    assert parse_request_head(data) == expected
    assert find_head_end(data) == len(data)


def test_max_headers_is_inclusive() -> None:
    head = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: y\r\n" * 9 + b"\r\n"
    assert len(parse_request_head(head, max_headers=10).headers) == 10
    with pytest.raises(HeadTooLarge) as error:
        parse_request_head(head, max_headers=9)
    assert error.value.status == 431


# --- invalid requests -------------------------------------------------------------------------

INVALID = [
    # RFC 9112 §3: request-line = method SP request-target SP HTTP-version, single spaces
    pytest.param(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="double-space-3"),
    pytest.param(b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, id="trailing-space-3"),
    pytest.param(b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="leading-space-3"),
    pytest.param(b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="htab-separator-3"),
    pytest.param(b"GET / x HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="space-in-target-3"),
    pytest.param(b"GET /\r\nHost: a\r\n\r\n", 400, id="no-version-3"),
    pytest.param(b"\r\n\r\n", 400, id="empty-request-line-3"),
    pytest.param(b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="method-not-token-3.1"),
    pytest.param(b"G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="method-obs-text-3.1"),
    pytest.param(b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="target-non-ascii-3.2"),
    pytest.param(b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="target-del-3.2"),
    # RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT; others well-formed → 505
    pytest.param(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, id="http20-505-2.3"),
    pytest.param(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, id="http12-505-2.3"),
    pytest.param(b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, id="http09-505-2.3"),
    pytest.param(b"GET / http/1.1\r\nHost: a\r\n\r\n", 400, id="lowercase-name-2.3"),
    pytest.param(b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, id="two-digit-minor-2.3"),
    pytest.param(b"GET / HTTP/1\r\nHost: a\r\n\r\n", 400, id="no-minor-2.3"),
    pytest.param(b"GET / HTTP/a.b\r\nHost: a\r\n\r\n", 400, id="letters-2.3"),
    # RFC 9112 §5.1: no whitespace between field name and colon in a request
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nFoo : bar\r\n\r\n", 400, id="space-before-colon-5.1"
    ),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nFoo\t: bar\r\n\r\n", 400, id="htab-before-colon-5.1"
    ),
    pytest.param(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, id="host-space-before-colon-5.1"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
        400,
        id="te-space-before-colon-smuggling-5.1",
    ),
    # RFC 9112 §5.2: obs-fold; §2.2: whitespace before the first field line
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, id="obs-fold-sp-5.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400, id="obs-fold-htab-5.2"),
    pytest.param(b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, id="space-before-first-field-2.2"),
    # RFC 9112 §5, RFC 9110 §5.1: field-name = token, then ":"
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nFoo bar\r\n\r\n", 400, id="no-colon-5"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\n: bar\r\n\r\n", 400, id="empty-name-5"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nFo o: bar\r\n\r\n", 400, id="space-in-name-5"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nFoo@: bar\r\n\r\n", 400, id="delimiter-in-name-5"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nF\xc3\xa9: b\r\n\r\n", 400, id="obs-text-in-name-5"
    ),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nX: y\r\n\r\n", 400, id="empty-line-inside-5"),
    # RFC 9112 §2.2: bare LF and bare CR (we reject both)
    pytest.param(b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, id="bare-lf-after-request-line-2.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400, id="bare-lf-between-fields-2.2"),
    pytest.param(b"GET / HTTP/1.1\nHost: a\n\n", 400, id="all-bare-lf-2.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400, id="bare-lf-final-2.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400, id="bare-lf-last-field-2.2"),
    pytest.param(b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="leading-bare-lf-2.2"),
    pytest.param(b"\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="leading-bare-cr-2.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, id="bare-cr-in-value-2.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400, id="cr-cr-lf-2.2"),
    pytest.param(b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400, id="bare-cr-line-end-2.2"),
    # RFC 9110 §5.5: NUL and other controls (HTAB only inside values)
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, id="nul-in-value-5.5"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX\x00: b\r\n\r\n", 400, id="nul-in-name-5.5"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n", 400, id="soh-in-value-5.5"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n", 400, id="del-in-value-5.5"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n", 400, id="vt-in-value-5.5"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0cb\r\n\r\n", 400, id="ff-in-value-5.5"),
    pytest.param(
        b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n",
        400,
        id="vt-before-chunked-smuggling-5.5",
    ),
    pytest.param(b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400, id="nul-in-target-5.5"),
    pytest.param(b"GET / HTTP/1.1\r\nX\t: b\r\nHost: a\r\n\r\n", 400, id="htab-in-name-5.5"),
    # RFC 9112 §3.2: exactly one Host in HTTP/1.1, at most one anywhere, and a valid value
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", 400, id="http11-no-host-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, id="http11-no-host-with-fields-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, id="two-hosts-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, id="two-hosts-case-3.2"),
    pytest.param(b"GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", 400, id="two-hosts-http10-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, id="host-with-space-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, id="host-with-userinfo-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a:0\r\n\r\n", 400, id="host-port-zero-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400, id="host-port-too-big-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a:x\r\n\r\n", 400, id="host-port-junk-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, id="host-unclosed-ipv6-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: 127.1\r\n\r\n", 400, id="host-short-ipv4-3.2"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, id="host-with-slash-3.2"),
    # RFC 9112 §2.1: the parser is given a whole head
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\n", 400, id="incomplete-head-2.1"),
    pytest.param(b"", 400, id="empty-2.1"),
]


@pytest.mark.parametrize(("data", "status"), INVALID)
def test_invalid_request_head(data: bytes, status: int) -> None:
    with pytest.raises(ProtocolError) as error:
        parse_request_head(data)
    assert error.value.status == status
    assert not isinstance(error.value, HeadTooLarge)


def test_version_error_code() -> None:
    with pytest.raises(ProtocolError) as error:
        parse_request_head(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n")
    assert error.value.code == "http-version-not-supported"


def test_errors_say_why() -> None:
    with pytest.raises(ProtocolError, match=r"RFC 9112 §5\.1"):
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nFoo : bar\r\n\r\n")
    with pytest.raises(ProtocolError, match="bare LF"):
        parse_request_head(b"GET / HTTP/1.1\nHost: a\r\n\r\n")
    with pytest.raises(ProtocolError, match="bare CR"):
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n")
    with pytest.raises(ProtocolError, match="0x00"):
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX: \x00\r\n\r\n")
    with pytest.raises(ProtocolError, match="folding"):
        parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n")


# --- looking fields up ------------------------------------------------------------------------


def test_header_value_and_values() -> None:
    headers = [(b"Accept", b"a"), (b"X-Y", b"1"), (b"ACCEPT", b"b"), (b"x-y", b"2")]
    assert header_value(headers, b"accept") == b"a"
    assert header_value(headers, b"missing") is None
    assert header_values(headers, b"x-y") == [b"1", b"2"]
    assert header_values(headers, b"missing") == []


def test_bytearray_input_gives_bytes() -> None:
    head = parse_request_head(bytearray(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
    assert head == RequestHead(b"GET", b"/", b"HTTP/1.1", [(b"Host", b"a")])
    assert all(type(part) is bytes for part in (head.method, head.target, *head.headers[0]))
