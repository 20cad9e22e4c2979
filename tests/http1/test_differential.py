"""Differential: waylay's parsing never accepts what h11 refuses, and agrees with it.

h11 is a well-fuzzed HTTP/1 parser. A request both accept must mean the same thing to both
(method, target, version, headers); a request waylay accepts and h11 refuses would be a
leniency of ours, which is how smuggling starts. The only known difference goes the other
way or is named here: waylay skips empty lines before a request line (RFC 9112 §2.2), h11
does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import h11
from hypothesis import example, given
from hypothesis import strategies as st

from waylay.errors import ProtocolError
from waylay.http1.body import request_framing, response_framing
from waylay.http1.head import find_head_end, parse_request_head, parse_response_head

BASE = (
    b"POST http://api.example.test:8080/a?b=1 HTTP/1.1\r\n"
    b"Host: api.example.test:8080\r\n"
    b"Content-Length: 5\r\n"
    b"X-Thing:  spaced value \t\r\n"
    b"\r\n"
)
# Bytes that sit on the boundaries of the grammar: separators, controls, line ends, obs-text.
EDGY = list(b' \t\r\n:;,"\\\x00\x01\x0b\x7f\x80\xff/?#@[]HTTP01.-')


@st.composite
def mutated(draw: st.DrawFn, base: bytes = BASE) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        kind = draw(st.sampled_from(["insert", "replace", "delete"]))
        byte = draw(st.sampled_from(EDGY) | st.integers(min_value=0, max_value=255))
        if kind == "insert":
            data.insert(at, byte)
        elif kind == "replace" and at < len(data):
            data[at] = byte
        elif at < len(data):
            del data[at]
    return bytes(data)


def comparable(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Names lowercased, and Transfer-Encoding's value too: h11 normalises it."""
    return [
        (name.lower(), value.lower() if name.lower() == b"transfer-encoding" else value)
        for name, value in headers
    ]


def h11_request(data: bytes) -> h11.Request | None:
    conn = h11.Connection(h11.SERVER)
    try:
        conn.receive_data(data)
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    return event if isinstance(event, h11.Request) else None


@given(mutated())
@example(BASE)
@example(BASE.replace(b"X-Thing:", b"X-Thing :"))
@example(BASE.replace(b"\r\nX-Thing", b"\r\n X-Thing"))
@example(BASE.replace(b"5\r\n", b"5\n"))
def test_waylay_accepts_nothing_h11_refuses(data: bytes) -> None:
    try:
        end = find_head_end(data)
        if end < 0:
            return
        ours = parse_request_head(data[:end])
        request_framing(ours)  # h11 checks Content-Length and Transfer-Encoding with the head
    except ProtocolError:
        return
    theirs = h11_request(data[:end].lstrip(b"\r\n"))  # the one documented leniency
    assert theirs is not None, f"waylay accepted a head h11 refuses: {data[:end]!r}"
    assert ours.method == theirs.method
    assert ours.target == theirs.target
    assert ours.version == b"HTTP/" + theirs.http_version
    assert comparable(ours.headers) == comparable(theirs.headers.raw_items())


RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"X-Thing:  spaced value \t\r\n"
    b"\r\n"
)


def h11_response(data: bytes) -> h11.Response | None:
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "a.test")]))
    conn.send(h11.EndOfMessage())
    try:
        conn.receive_data(data)
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    return event if isinstance(event, h11.Response) else None


@given(mutated(RESPONSE))
@example(RESPONSE)
@example(RESPONSE.replace(b"200 OK", b"200"))
def test_waylay_accepts_no_response_h11_refuses(data: bytes) -> None:
    try:
        end = find_head_end(data, response=True)
        if end < 0:
            return
        ours = parse_response_head(data[:end])
        response_framing(ours, b"GET")
    except ProtocolError:
        return
    if ours.status < 200:
        return  # interim responses: h11 reports them as another event type
    # The one deliberate leniency: whitespace before a colon is removed in a response
    # (RFC 9112 §5.1), where h11 refuses the response.
    theirs = h11_response(re.sub(rb"(?m)^([^:\s]+)[ \t]+:", rb"\1:", data[:end]))
    assert theirs is not None, f"waylay accepted a response h11 refuses: {data[:end]!r}"
    assert (ours.status, ours.reason) == (theirs.status_code, theirs.reason)
    assert ours.version == b"HTTP/" + theirs.http_version
    assert comparable(ours.headers) == comparable(theirs.headers.raw_items())
