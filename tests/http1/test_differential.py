"""Differential: waylay's parsing never accepts what h11 refuses, and agrees with it.

h11 (>= 0.16, with the fix for CVE-2025-43859) is a well-fuzzed HTTP/1 parser. A message both
accept must mean the same thing to both; a message waylay accepts and h11 refuses would be a
leniency of ours, which is how smuggling starts. Three levels:

1. Heads (requests and responses): method, target, version, status and headers.
2. Whole messages, heads and bodies (Content-Length and chunked, with extensions and trailers)
   followed by the next message, mutated: whether the message is complete, where it ends, its
   body, headers and trailers. This is the smuggling question itself.
3. What waylay forwards for any request it accepts is exactly one message to h11, with the same
   body and trailers, and nothing after it.

The known differences are named where they are allowed: waylay skips empty lines before a
request line (RFC 9112 §2.2), removes whitespace before a colon in a response (§5.1), reads
BWS before a chunk extension (§7.1.1), and frames a body whose final coding is chunked
whatever codings come first (§6.1; a request's must be ones waylay knows); h11 does none of
these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import h11
from hypothesis import example, given
from hypothesis import strategies as st

from waylay.errors import ProtocolError
from waylay.http1.body import request_framing, response_framing
from waylay.http1.forwarding import forward_request_headers, forward_trailers
from waylay.http1.head import (
    RequestHead,
    ResponseHead,
    find_head_end,
    parse_request_head,
    parse_response_head,
)
from waylay.http1.reframe import Reframer
from waylay.http1.serialize import request_head

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
    """Headers as h11 normalises them: names and Transfer-Encoding's value lowercased, and
    identical Content-Length values ("4, 4", or two lines) kept once, in the first line."""
    fields = []
    length_seen = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            if length_seen:
                continue
            length_seen = True
            value = value.split(b",", 1)[0].strip(b" \t")
        elif lower == b"transfer-encoding":
            value = value.lower()
        fields.append((lower, value))
    return fields


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


# --- whole messages: where a message ends, its body and its trailers ---------------------------

CHUNKED_POST = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
NEXT_REQUEST = b"GET /next HTTP/1.1\r\nHost: a.test\r\n\r\n"
NEXT_RESPONSE = b"HTTP/1.1 204 No Content\r\n\r\n"
INCOMPLETE = "incomplete"  # a valid start: both sides must wait for more
REFUSED = "refused"


@dataclass(frozen=True)
class Message:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    trailers: list[tuple[bytes, bytes]]
    end: int  # offset just past the message: the next one starts there


Parsed = Message | str

ext = st.sampled_from([b"", b";a", b";a=b", b';q="x y"', b";a;b=1"])
trailer_lines = st.lists(
    st.sampled_from([b"X-Sum: 1\r\n", b"Expires: never\r\n", b"x-t:\tv \r\n"]), max_size=2
)


@st.composite
def chunked_body(draw: st.DrawFn) -> bytes:
    """A valid chunked body: chunks of random sizes (hex in either case), extensions, trailers."""
    out = b""
    for piece in draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4)):
        size = b"%x" % len(piece)
        if draw(st.booleans()):
            size = size.upper()
        out += size + draw(ext) + b"\r\n" + piece + b"\r\n"
    return out + b"0" + draw(ext) + b"\r\n" + b"".join(draw(trailer_lines)) + b"\r\n"


@st.composite
def framed(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """Fields that frame a body, and that body."""
    if draw(st.booleans()):
        coding = draw(st.sampled_from([b"chunked", b"Chunked", b" chunked "]))
        return b"Transfer-Encoding:" + coding + b"\r\n", draw(chunked_body())
    body = draw(st.binary(max_size=30))
    return b"Content-Length: %d\r\n" % len(body), body


@st.composite
def whole_requests(draw: st.DrawFn) -> bytes:
    fields, body = draw(framed())
    head = b"POST /upload HTTP/1.1\r\nHost: a.test\r\n" + fields + b"X-A: b\r\n\r\n"
    return draw(mutated(head + body + NEXT_REQUEST))


@st.composite
def whole_responses(draw: st.DrawFn) -> bytes:
    fields, body = draw(framed())
    head = b"HTTP/1.1 200 OK\r\n" + fields + b"X-A: b\r\n\r\n"
    return draw(mutated(head + body + NEXT_RESPONSE))


def ours(data: bytes, *, response: bool) -> Parsed:
    """waylay's parse of one message at the start of ``data``, as the proxy reads it."""
    try:
        end = find_head_end(data, response=response)
        if end < 0:
            return INCOMPLETE
        head: RequestHead | ResponseHead
        if response:
            head = parse_response_head(data[:end])
            if head.status < 200:
                return REFUSED  # interim responses are the exchange's, not a message here
            framing = response_framing(head, b"GET")
        else:
            head = parse_request_head(data[:end])
            framing = request_framing(head)
        body = Reframer(framing, response=response, dechunk=True)
        out, rest = body.feed(data[end:])
    except ProtocolError:
        return REFUSED
    if not body.done:
        return INCOMPLETE  # a close-delimited response too: no EOF is given to either side
    return Message(head.headers, b"".join(out), body.trailers or [], len(data) - len(rest))


def theirs(data: bytes, *, response: bool) -> Parsed:
    """h11's parse of the same bytes."""
    conn = h11.Connection(h11.CLIENT if response else h11.SERVER)
    if response:
        conn.send(h11.Request(method="GET", target="/", headers=[("Host", "a.test")]))
        conn.send(h11.EndOfMessage())
    headers: list[tuple[bytes, bytes]] = []
    body = b""
    skipped = 0
    if not response:
        # The one leniency of waylay's that h11 lacks in requests: empty lines before the
        # request line are skipped (RFC 9112 §2.2). They are counted in where the message ends.
        skipped = len(data) - len(data.lstrip(b"\r\n"))
        data = data[skipped:]
    if not data:
        return INCOMPLETE  # receive_data(b"") would tell h11 that the peer closed
    conn.receive_data(data)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return INCOMPLETE
            if isinstance(event, h11.InformationalResponse):
                return REFUSED
            if isinstance(event, h11.Request | h11.Response):
                headers = list(event.headers.raw_items())
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                trailers = list(event.headers.raw_items())
                end = skipped + len(data) - len(conn.trailing_data[0])
                return Message(headers, body, trailers, end)
    except h11.RemoteProtocolError:
        return REFUSED


# What waylay accepts and h11 does not, each where the grammar allows it or the RFC says what a
# proxy does: BWS before a chunk extension's ";" (RFC 9112 §7.1.1); whitespace before a colon,
# removed from a response (RFC 9112 §5.1); codings under the final chunked (RFC 9112 §6.1,
# §6.3 item 3: chunked last frames the body, whatever comes before it), which h11 does not
# implement at all; framing fields in a trailer section, whose values h11 checks and waylay
# does not, since it never forwards them (RFC 9110 §6.5.1, forwarding.forward_trailers). None
# of them moves the end of a message.
_CHUNK_EXT_BWS = re.compile(rb"\n[0-9A-Fa-f]+[ \t]+;")
_SPACE_BEFORE_COLON = re.compile(rb"\n[!-9;-~]+[ \t]+:")


def _a_named_leniency(message: Message, accepted: bytes, *, response: bool) -> bool:
    codings = [
        coding.strip(b" \t").lower()
        for name, value in message.headers
        if name.lower() == b"transfer-encoding"
        for coding in value.split(b",")
    ]
    trailer_names = {name.lower() for name, _ in message.trailers}
    return bool(
        _CHUNK_EXT_BWS.search(accepted)
        or (response and _SPACE_BEFORE_COLON.search(accepted))
        or codings not in ([], [b"chunked"])
        or trailer_names & {b"content-length", b"transfer-encoding"}
    )


def assert_same_message(data: bytes, *, response: bool) -> None:
    mine = ours(data, response=response)
    other = theirs(data, response=response)
    if isinstance(mine, Message) and other == REFUSED:
        accepted = data[: mine.end]
        assert _a_named_leniency(mine, accepted, response=response), (
            f"waylay accepted a message h11 refuses: {accepted!r}"
        )
    if REFUSED in (mine, other):
        return
    assert type(mine) is type(other), f"waylay: {mine!r}, h11: {other!r} for {data!r}"
    if isinstance(mine, Message) and isinstance(other, Message):
        assert mine.end == other.end, f"the message ends at {mine.end} or {other.end}: {data!r}"
        assert mine.body == other.body
        assert comparable(mine.headers) == comparable(other.headers)
        assert comparable(mine.trailers) == comparable(other.trailers)


@given(whole_requests())
@example(b"")
@example(CHUNKED_POST + b"0\r\nContent-Length: x\r\n\r\n")
@example(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd")
@example(b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n")
@example(CHUNKED_POST + b"5\r\nhelloXX0\r\n\r\n")
@example(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n")
@example(CHUNKED_POST + b"0\r\nX: y\r\n\r\nZ")
def test_requests_end_where_h11_says(data: bytes) -> None:
    assert_same_message(data, response=False)


@given(whole_responses())
@example(b"")
@example(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;a\r\nx\r\n0\r\n\r\nHTTP/1.1")
@example(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n")
@example(
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ch`nked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
)
def test_responses_end_where_h11_says(data: bytes) -> None:
    assert_same_message(data, response=True)


# --- what waylay forwards: one message, read the same way by the next hop ----------------------


def forwarded_request(data: bytes) -> tuple[bytes, Message] | None:
    """The bytes waylay would send upstream for the first request in ``data``, and what it read.

    None when waylay refuses the request or needs more bytes.
    """
    mine = ours(data, response=False)
    if not isinstance(mine, Message):
        return None
    end = find_head_end(data)
    head = parse_request_head(data[:end])
    reframer = Reframer(request_framing(head), response=False)
    out, _ = reframer.feed(data[end:])
    fields = forward_request_headers(head.headers, b"a.test")
    wire = request_head(head.method, b"/upload", fields) + b"".join(out)
    return wire, mine


@given(whole_requests())
def test_what_waylay_forwards_is_one_message_to_h11(data: bytes) -> None:
    forwarded = forwarded_request(data)
    if forwarded is None:
        return
    wire, mine = forwarded
    # Whatever waylay accepted, the next hop reads exactly one message, with the same body
    # and trailers, and nothing after it: no byte of the client's is left to become a request.
    other = theirs(wire + NEXT_REQUEST, response=False)
    assert isinstance(other, Message), f"h11 reads {other!r} from what waylay sends: {wire!r}"
    assert other.end == len(wire)
    assert other.body == mine.body
    assert comparable(other.trailers) == comparable(forward_trailers(mine.trailers))
