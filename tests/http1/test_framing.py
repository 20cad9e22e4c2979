"""Body framing of requests and responses (RFC 9112 §6, RFC 9110 §8.6): the smuggling rules.

Each case is a list of header fields (as the head parser returns them) and the framing, or the
status of the refusal.
"""

from __future__ import annotations

import pytest

from waylay.errors import ProtocolError
from waylay.http1.body import Framing, request_framing, response_framing
from waylay.http1.head import Fields, RequestHead, ResponseHead, parse_request_head

CL = b"Content-Length"
TE = b"Transfer-Encoding"

NONE = Framing("none")
CHUNKED = Framing("chunked")
CLOSE = Framing("close")


def length(n: int) -> Framing:
    return Framing("length", n)


# --- requests ---------------------------------------------------------------------------------

REQUESTS: list[object] = [
    pytest.param([], NONE, id="no-body-6.3"),
    pytest.param([(CL, b"0")], length(0), id="cl-zero-6.3"),
    pytest.param([(CL, b"42")], length(42), id="cl-6.3"),
    pytest.param([(b"content-length", b"7")], length(7), id="cl-name-case-6.3"),
    pytest.param([(CL, b"0005")], length(5), id="cl-leading-zeros-8.6"),
    pytest.param([(CL, str(2**63 - 1).encode())], length(2**63 - 1), id="cl-max-8.6"),
    # RFC 9110 §8.6: identical repeated values are accepted as that value (our choice)
    pytest.param([(CL, b"5"), (CL, b"5")], length(5), id="cl-repeated-identical-8.6"),
    pytest.param([(CL, b"5, 5")], length(5), id="cl-list-identical-8.6"),
    pytest.param([(CL, b"5,5 ,\t5")], length(5), id="cl-list-ows-8.6"),
    pytest.param([(CL, b"05"), (CL, b"5")], length(5), id="cl-same-number-8.6"),
    # RFC 9112 §6.1: chunked, last, once; other known codings before it
    pytest.param([(TE, b"chunked")], CHUNKED, id="te-chunked-6.1"),
    pytest.param([(TE, b"Chunked")], CHUNKED, id="te-case-insensitive-7"),
    pytest.param([(TE, b"gzip, chunked")], CHUNKED, id="te-gzip-chunked-6.1"),
    pytest.param([(TE, b"gzip"), (TE, b"chunked")], CHUNKED, id="te-two-lines-6.1"),
    pytest.param(
        [(TE, b"x-gzip,deflate , compress,x-compress,chunked")], CHUNKED, id="te-known-codings-7"
    ),
    # RFC 9112 §6.1: Content-Length with Transfer-Encoding is refused (smuggling)
    pytest.param([(CL, b"5"), (TE, b"chunked")], 400, id="cl-and-te-6.1"),
    pytest.param([(TE, b"chunked"), (CL, b"5")], 400, id="te-and-cl-6.1"),
    pytest.param([(TE, b"chunked"), (CL, b"0")], 400, id="te-and-cl-zero-6.1"),
    # RFC 9112 §6.1: the final coding must be chunked
    pytest.param([(TE, b"chunked, identity")], 400, id="te-chunked-identity-6.1"),
    pytest.param([(TE, b"gzip")], 400, id="te-gzip-only-6.1"),
    pytest.param([(TE, b"chunked"), (TE, b"gzip")], 400, id="te-chunked-then-gzip-line-6.1"),
    pytest.param([(TE, b"identity")], 400, id="te-identity-6.1"),
    pytest.param([(TE, b"xchunked")], 400, id="te-xchunked-6.1"),
    pytest.param([(TE, b"chunked-false")], 400, id="te-chunked-prefix-6.1"),
    # RFC 9112 §7: chunked at most once
    pytest.param([(TE, b"chunked, chunked")], 400, id="te-chunked-twice-7"),
    pytest.param([(TE, b"chunked"), (TE, b"chunked")], 400, id="te-chunked-two-lines-7"),
    # RFC 9112 §6.1: 501 for codings waylay does not know (identity is not one of them)
    pytest.param([(TE, b"identity, chunked")], 501, id="te-identity-chunked-501-6.1"),
    pytest.param([(TE, b"br, chunked")], 501, id="te-unknown-501-6.1"),
    pytest.param([(TE, b"zstd"), (TE, b"chunked")], 501, id="te-unknown-line-501-6.1"),
    # Malformed Transfer-Encoding values
    pytest.param([(TE, b"")], 400, id="te-empty-6.1"),
    pytest.param([(TE, b", chunked")], 400, id="te-empty-element-6.1"),
    pytest.param([(TE, b"chunked,")], 400, id="te-trailing-comma-6.1"),
    pytest.param([(TE, b"chunked;q=1")], 400, id="te-parameter-7"),
    pytest.param([(TE, b"chunked x")], 400, id="te-junk-7"),
    pytest.param([(TE, b'"chunked"')], 400, id="te-quoted-7"),
    # RFC 9110 §8.6: Content-Length = 1*DIGIT
    pytest.param([(CL, b"+5")], 400, id="cl-plus-8.6"),
    pytest.param([(CL, b"-5")], 400, id="cl-minus-8.6"),
    pytest.param([(CL, b" 5")], 400, id="cl-leading-space-8.6"),
    pytest.param([(CL, b"5 ")], 400, id="cl-trailing-space-8.6"),
    pytest.param([(CL, b"5 5")], 400, id="cl-inner-space-8.6"),
    pytest.param([(CL, b"0x5")], 400, id="cl-hex-8.6"),
    pytest.param([(CL, b"5.0")], 400, id="cl-decimal-point-8.6"),
    pytest.param([(CL, b"1e3")], 400, id="cl-exponent-8.6"),
    pytest.param([(CL, b"5_0")], 400, id="cl-underscore-8.6"),
    pytest.param([(CL, b"")], 400, id="cl-empty-8.6"),
    pytest.param([(CL, "\u0665".encode())], 400, id="cl-arabic-digit-8.6"),
    pytest.param([(CL, b"5, 6")], 400, id="cl-list-differs-8.6"),
    pytest.param([(CL, b"5,")], 400, id="cl-list-empty-element-8.6"),
    pytest.param([(CL, b"5"), (CL, b"6")], 400, id="cl-lines-differ-6.3"),
    pytest.param([(CL, b"5"), (CL, b"")], 400, id="cl-second-empty-6.3"),
    pytest.param([(CL, str(2**63).encode())], 400, id="cl-over-2-63-8.6"),
    pytest.param([(CL, b"1" * 20)], 400, id="cl-20-digits-8.6"),
    pytest.param([(CL, b"9" * 5000)], 400, id="cl-huge-8.6"),
]


@pytest.mark.parametrize(("headers", "expected"), REQUESTS)
def test_request_framing(headers: Fields, expected: Framing | int) -> None:
    head = RequestHead(b"POST", b"/", b"HTTP/1.1", [(b"Host", b"a"), *headers])
    if isinstance(expected, Framing):
        assert request_framing(head) == expected
    else:
        with pytest.raises(ProtocolError) as error:
            request_framing(head)
        assert error.value.status == expected


def test_unknown_coding_error_code() -> None:
    head = RequestHead(b"POST", b"/", b"HTTP/1.1", [(TE, b"br, chunked")])
    with pytest.raises(ProtocolError) as error:
        request_framing(head)
    assert error.value.code == "not-implemented"


def test_transfer_encoding_in_http10_request() -> None:
    # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing
    head = RequestHead(b"POST", b"/", b"HTTP/1.0", [(TE, b"chunked")])
    with pytest.raises(ProtocolError) as error:
        request_framing(head)
    assert error.value.status == 400


WIRE = [
    # The same rules reached from wire bytes: OWS around values is not part of the value.
    pytest.param(b"Content-Length:   5  \r\n", length(5), id="cl-ows-5.5"),
    pytest.param(b"Transfer-Encoding:\tchunked\t\r\n", CHUNKED, id="te-ows-5.5"),
    pytest.param(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400, id="cl-te-6.1"),
    pytest.param(b"Content-Length: +5\r\n", 400, id="cl-plus-8.6"),
    pytest.param(b"Content-Length: 5 5\r\n", 400, id="cl-space-8.6"),
    pytest.param(b"Transfer-Encoding: chunked, identity\r\n", 400, id="te-identity-last-6.1"),
]


@pytest.mark.parametrize(("fields", "expected"), WIRE)
def test_request_framing_from_wire(fields: bytes, expected: Framing | int) -> None:
    head = parse_request_head(b"POST / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n")
    if isinstance(expected, Framing):
        assert request_framing(head) == expected
    else:
        with pytest.raises(ProtocolError) as error:
            request_framing(head)
        assert error.value.status == expected


# --- responses --------------------------------------------------------------------------------

RESPONSES: list[object] = [
    # RFC 9112 §6.3 item 1: no body after HEAD, 1xx, 204, 304, whatever the fields say
    pytest.param(b"HEAD", 200, [(CL, b"100")], NONE, id="head-6.3.1"),
    pytest.param(b"HEAD", 200, [(TE, b"chunked")], NONE, id="head-te-6.3.1"),
    pytest.param(b"GET", 100, [], NONE, id="100-6.3.1"),
    pytest.param(b"GET", 101, [], NONE, id="101-6.3.1"),
    pytest.param(b"GET", 103, [(CL, b"5")], NONE, id="103-6.3.1"),
    pytest.param(b"GET", 204, [(CL, b"5")], NONE, id="204-6.3.1"),
    pytest.param(b"GET", 304, [(TE, b"chunked")], NONE, id="304-6.3.1"),
    pytest.param(b"GET", 304, [(CL, b"junk")], NONE, id="304-bad-cl-ignored-6.3.1"),
    # RFC 9112 §6.3 item 2: a 2xx to CONNECT is a tunnel, not a body
    pytest.param(b"CONNECT", 200, [(CL, b"5")], NONE, id="connect-2xx-6.3.2"),
    pytest.param(b"CONNECT", 407, [(CL, b"5")], length(5), id="connect-407-has-body-6.3.2"),
    # RFC 9112 §6.3 item 3: chunked last → chunked
    pytest.param(b"GET", 200, [(TE, b"chunked")], CHUNKED, id="te-chunked-6.3.3"),
    pytest.param(b"GET", 200, [(TE, b"gzip, chunked")], CHUNKED, id="te-gzip-chunked-6.3.3"),
    pytest.param(b"GET", 200, [(TE, b"br, chunked")], CHUNKED, id="te-unknown-inner-6.3.3"),
    # ...and otherwise close-delimited, which waylay deliberately refuses with 502
    pytest.param(b"GET", 200, [(TE, b"gzip")], 502, id="te-not-chunked-502-6.3.3"),
    pytest.param(b"GET", 200, [(TE, b"chunked, identity")], 502, id="te-identity-last-6.3.3"),
    pytest.param(b"GET", 200, [(TE, b"chunked, chunked")], 502, id="te-chunked-twice-7"),
    pytest.param(b"GET", 200, [(TE, b"")], 502, id="te-empty-6.3.3"),
    pytest.param(b"GET", 200, [(TE, b"chunked;x=y")], 502, id="te-parameter-7"),
    # CL + TE in a response: refused (RFC 9112 §6.3 item 3 says a proxy ought to treat as error)
    pytest.param(b"GET", 200, [(CL, b"5"), (TE, b"chunked")], 502, id="cl-te-6.3.3"),
    # RFC 9112 §6.3 items 4-5: Content-Length
    pytest.param(b"GET", 200, [(CL, b"5")], length(5), id="cl-6.3.5"),
    pytest.param(b"POST", 201, [(CL, b"0")], length(0), id="cl-zero-6.3.5"),
    pytest.param(b"GET", 200, [(CL, b"5"), (CL, b"5")], length(5), id="cl-dup-same-8.6"),
    pytest.param(b"GET", 200, [(CL, b"5"), (CL, b"6")], 502, id="cl-dup-differ-6.3.5"),
    pytest.param(b"GET", 200, [(CL, b"+5")], 502, id="cl-plus-6.3.4"),
    pytest.param(b"GET", 200, [(CL, b"0x5")], 502, id="cl-hex-6.3.4"),
    pytest.param(b"GET", 200, [(CL, b"5, 6")], 502, id="cl-list-differ-6.3.4"),
    pytest.param(b"GET", 200, [(CL, b"")], 502, id="cl-empty-6.3.4"),
    # RFC 9112 §6.3 item 8: neither → read until close
    pytest.param(b"GET", 200, [], CLOSE, id="close-delimited-6.3.8"),
    pytest.param(b"GET", 404, [(b"X", b"y")], CLOSE, id="close-delimited-404-6.3.8"),
]


@pytest.mark.parametrize(("method", "status", "headers", "expected"), RESPONSES)
def test_response_framing(
    method: bytes, status: int, headers: Fields, expected: Framing | int
) -> None:
    head = ResponseHead(b"HTTP/1.1", status, b"", headers)
    if isinstance(expected, Framing):
        assert response_framing(head, method) == expected
    else:
        with pytest.raises(ProtocolError) as error:
            response_framing(head, method)
        assert error.value.status == expected
        assert error.value.code == "upstream-protocol-error"


def test_transfer_encoding_in_http10_response() -> None:
    # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing
    head = ResponseHead(b"HTTP/1.0", 200, b"OK", [(TE, b"chunked")])
    with pytest.raises(ProtocolError) as error:
        response_framing(head, b"GET")
    assert error.value.status == 502


def test_http10_response_without_length_is_close_delimited() -> None:
    assert response_framing(ResponseHead(b"HTTP/1.0", 200, b"OK", []), b"GET") == CLOSE
