"""Differential: waylay's request parsing never accepts what h11 refuses, and agrees with it.

h11 is a well-fuzzed HTTP/1 parser. A request both accept must mean the same thing to both
(method, target, version, headers); a request waylay accepts and h11 refuses would be a
leniency of ours, which is how smuggling starts. The only known difference goes the other
way or is named here: waylay skips empty lines before a request line (RFC 9112 §2.2), h11
does not.
"""

from __future__ import annotations

import h11
from hypothesis import example, given
from hypothesis import strategies as st

from waylay.errors import ProtocolError
from waylay.http1.body import request_framing
from waylay.http1.head import find_head_end, parse_request_head

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
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(BASE)
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
    assert [(n.lower(), v) for n, v in ours.headers] == [
        (n.lower(), v) for n, v in theirs.headers.raw_items()
    ]
