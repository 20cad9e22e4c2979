"""Property tests for the HTTP/1 parsers: round trips, and no exception but ProtocolError.

1. Valid heads serialised by ``serialize`` parse back to the same values.
2. A valid head cut anywhere, with random bytes after it: "need more", a head, or ProtocolError.
3. Random (and near-HTTP) bytes into every parser: a result or ProtocolError, nothing else.
4. Chunked bodies written by ``serialize`` decode to the same payload and trailers however the
   bytes are split; and for any bytes, splitting never changes the decoder's answer.
5. The end of a head found in part of a buffer is the end the whole buffer has.
6. An accepted head holds only clean names and values, and serialised it parses the same.
7. A Content-Length body is exactly its length, however it arrives.
8. The chunked decoder buffers no more than its limits, whatever it is fed.
"""

from __future__ import annotations

import contextlib
import itertools
import string

from hypothesis import given
from hypothesis import strategies as st

from tests.http1.test_differential import BASE, RESPONSE, mutated
from waylay.errors import HeadTooLarge, ProtocolError
from waylay.http1.body import ChunkedDecoder, Framing, request_framing, response_framing
from waylay.http1.head import (
    Fields,
    RequestHead,
    ResponseHead,
    find_head_end,
    parse_fields,
    parse_host,
    parse_request_head,
    parse_response_head,
    parse_target,
)
from waylay.http1.reframe import Reframer
from waylay.http1.serialize import chunk, last_chunk, request_head, response_head

TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
VCHAR = bytes(range(0x21, 0x7F))
VALUE_BYTES = list(b" \t" + VCHAR + bytes(range(0x80, 0x100)))

tokens = st.text(alphabet=TCHAR, min_size=1, max_size=16).map(str.encode)
values = (
    st.lists(st.sampled_from(VALUE_BYTES), max_size=40)
    .map(bytes)
    .map(lambda value: value.strip(b" \t"))
)
fields = st.lists(
    st.tuples(tokens, values).filter(lambda field: field[0].lower() != b"host"), max_size=12
)
labels = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=10)
hosts = st.builds(
    lambda names, tld, port: (".".join([*names, tld]) + port).encode(),
    st.lists(labels, max_size=3),
    st.text(alphabet=string.ascii_letters, min_size=1, max_size=6),
    st.sampled_from(["", ":80", ":8080", ":65535"]),
) | st.sampled_from([b"127.0.0.1", b"[::1]:443", b"[2001:db8::1]", b""])
targets = st.text(alphabet=VCHAR.decode(), max_size=40).map(lambda path: b"/" + path.encode())


@st.composite
def request_heads(draw: st.DrawFn) -> RequestHead:
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]))
    headers: Fields = draw(fields)
    if version == b"HTTP/1.1" or draw(st.booleans()):
        where = draw(st.integers(0, len(headers)))
        host_name = draw(st.sampled_from([b"Host", b"host", b"HOST"]))
        headers.insert(where, (host_name, draw(hosts)))
    return RequestHead(draw(tokens), draw(targets), version, headers)


@st.composite
def response_heads(draw: st.DrawFn) -> ResponseHead:
    reason = bytes(draw(st.lists(st.sampled_from(VALUE_BYTES), max_size=30)))
    return ResponseHead(
        draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"])),
        draw(st.integers(100, 999)),
        reason,
        draw(fields),
    )


def serialise_request(head: RequestHead) -> bytes:
    return request_head(head.method, head.target, head.headers, head.version)


def serialise_response(head: ResponseHead) -> bytes:
    return response_head(head.version, head.status, head.reason, head.headers)


# --- 1. round trips ---------------------------------------------------------------------------


@given(request_heads())
def test_request_round_trip(head: RequestHead) -> None:
    data = serialise_request(head)
    assert find_head_end(data) == len(data)
    assert parse_request_head(data) == head


@given(response_heads())
def test_response_round_trip(head: ResponseHead) -> None:
    data = serialise_response(head)
    assert find_head_end(data, response=True) == len(data)
    assert parse_response_head(data) == head


# --- 2. truncated valid heads with a random tail ----------------------------------------------

near_http = st.lists(
    st.sampled_from(
        [b"\r\n", b"\n", b"\r", b":", b" ", b"\t", b"\x00", b"0", b"5", b";", b"chunked", b","]
    )
    | st.binary(max_size=4),
    max_size=20,
).map(b"".join)


def request_pipeline(data: bytes) -> None:
    """What the proxy does with the bytes of a request head, up to framing."""
    end = find_head_end(data, max_head_size=4096)
    assert end == -1 or 0 < end <= len(data)
    if end > 0:
        head = parse_request_head(data[:end])
        parse_target(head.method, head.target)
        request_framing(head)


def response_pipeline(data: bytes) -> None:
    end = find_head_end(data, max_head_size=4096, response=True)
    assert end == -1 or 0 < end <= len(data)
    if end > 0:
        head = parse_response_head(data[:end])
        response_framing(head, b"GET")


@given(request_heads(), st.data(), near_http)
def test_truncated_request_with_tail(head: RequestHead, data: st.DataObject, tail: bytes) -> None:
    wire = serialise_request(head)
    cut = data.draw(st.integers(0, len(wire)))
    with contextlib.suppress(ProtocolError):
        request_pipeline(wire[:cut] + tail)


@given(response_heads(), st.data(), near_http)
def test_truncated_response_with_tail(head: ResponseHead, data: st.DataObject, tail: bytes) -> None:
    wire = serialise_response(head)
    cut = data.draw(st.integers(0, len(wire)))
    with contextlib.suppress(ProtocolError):
        response_pipeline(wire[:cut] + tail)


# --- 3. random bytes into every parser ---------------------------------------------------------

hostile = st.binary(max_size=200) | near_http


@given(hostile)
def test_random_bytes_head_parsers(data: bytes) -> None:
    for parse in (request_pipeline, response_pipeline, parse_request_head, parse_response_head):
        with contextlib.suppress(ProtocolError):
            parse(data)
    for response in (False, True):
        with contextlib.suppress(ProtocolError):
            parse_fields(data, response=response)


@given(st.sampled_from([b"GET", b"CONNECT", b"OPTIONS"]) | tokens, hostile)
def test_random_bytes_targets(method: bytes, target: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_target(method, target)
    with contextlib.suppress(ProtocolError):
        parse_host(target, 80)


framing_fields = st.lists(
    st.tuples(
        st.sampled_from([b"Content-Length", b"Transfer-Encoding", b"content-length", b"X"]),
        hostile,
    ),
    max_size=4,
)


@given(framing_fields, st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]), st.integers(100, 999))
def test_random_framing_values(headers: Fields, version: bytes, status: int) -> None:
    with contextlib.suppress(ProtocolError):
        request_framing(RequestHead(b"POST", b"/", version, headers))
    with contextlib.suppress(ProtocolError):
        response_framing(ResponseHead(version, status, b"", headers), b"GET")


def decode_split(
    data: bytes, cuts: list[int], decoder: ChunkedDecoder | None = None
) -> tuple[bytes, Fields, int]:
    """Feed ``data`` cut at ``cuts``: payload, trailers and how many bytes were consumed."""
    decoder = decoder or ChunkedDecoder()
    payload: list[bytes] = []
    consumed = 0
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        if decoder.done:
            break
        piece = data[start:end]
        out, used = decoder.feed(piece)
        assert 0 <= used <= len(piece)
        assert used == len(piece) or decoder.done
        payload += out
        consumed += used
    return b"".join(payload), decoder.trailers if decoder.done else [], consumed


def outcome(data: bytes, cuts: list[int]) -> tuple[bytes, Fields, int] | str:
    try:
        decoder = ChunkedDecoder(max_chunk_line=64, max_trailer_size=256, max_trailers=4)
        return decode_split(data, cuts, decoder)
    except ProtocolError as error:
        return type(error).__name__


chunky = st.lists(
    st.sampled_from([b"\r\n", b"0", b"1", b"5", b"a", b";x", b" ", b"X: y", b"\n", b"\r"])
    | st.binary(max_size=6),
    max_size=30,
).map(b"".join)


@given(chunky | st.binary(max_size=300), st.data())
def test_random_bytes_chunked_split_invariant(data: bytes, draw: st.DataObject) -> None:
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=6))
    assert outcome(data, cuts) == outcome(data, [])


# --- 4. chunked round trip at random split points -----------------------------------------------


@given(
    st.lists(st.binary(max_size=300), max_size=8),
    st.lists(st.tuples(tokens, values), max_size=5),
    st.binary(max_size=20),
    st.data(),
)
def test_chunked_round_trip(
    pieces: list[bytes], trailers: Fields, after: bytes, draw: st.DataObject
) -> None:
    body = b"".join(chunk(piece) for piece in pieces) + last_chunk(trailers)
    data = body + after
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=8))
    assert decode_split(data, cuts) == (b"".join(pieces), trailers, len(body))


# --- 5. answers are final on a growing buffer ---------------------------------------------------


def head_end(data: bytes, max_head_size: int) -> int | str:
    try:
        return find_head_end(data, max_head_size)
    except HeadTooLarge:
        return "too large"


@given(request_heads().map(serialise_request) | hostile, hostile, st.data())
def test_head_end_found_early_is_final(head: bytes, tail: bytes, data: st.DataObject) -> None:
    # The proxy calls find_head_end on a buffer that grows: an end (or a refusal) found in a
    # prefix must be the one the whole buffer has, or the head would depend on TCP segments.
    whole = head + tail
    limit = data.draw(st.sampled_from([16, 64, 4096]))
    early = head_end(whole[: data.draw(st.integers(0, len(whole)))], limit)
    if early != -1:
        assert head_end(whole, limit) == early


# --- 6. what an accepted head holds -------------------------------------------------------------


def assert_clean(headers: Fields) -> None:
    """Names are tokens; values hold no CR, LF or control byte but HTAB, and no outer OWS."""
    for name, value in headers:
        assert name and not name.translate(None, TCHAR.encode()), name
        assert not value.translate(None, bytes(VALUE_BYTES)), value
        assert value == value.strip(b" \t"), value


@given(mutated(BASE) | mutated(RESPONSE) | hostile)
def test_accepted_heads_are_clean_and_a_fixed_point(data: bytes) -> None:
    # Whatever the parser lets through is what forwarding writes out again (serialize.py):
    # it must hold nothing that could start a line, and read back as the same head.
    with contextlib.suppress(ProtocolError):
        head = parse_request_head(data)
        assert_clean(head.headers)
        assert not head.method.translate(None, TCHAR.encode())
        assert not head.target.translate(None, VCHAR)
        assert parse_request_head(serialise_request(head)) == head
    with contextlib.suppress(ProtocolError):
        response = parse_response_head(data)
        assert_clean(response.headers)
        assert parse_response_head(serialise_response(response)) == response


# --- 7. Content-Length bodies: exactly their length, however split ------------------------------


@given(st.integers(0, 200), st.binary(max_size=300), st.data())
def test_length_body_takes_exactly_its_length(
    length: int, data: bytes, draw: st.DataObject
) -> None:
    reframer = Reframer(Framing("length", length), response=False)
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=6)))
    out: list[bytes] = []
    rest = b""
    for start, end in itertools.pairwise([0, *cuts, len(data)]):
        pieces, after = reframer.feed(data[start:end])
        out += pieces
        rest += after
    assert b"".join(out) == data[:length]
    assert rest == data[length:]
    assert reframer.done == (len(data) >= length)
    assert reframer.size == min(length, len(data))


# --- 8. the chunked decoder holds no more than its limits -------------------------------------


@given(chunky | st.binary(max_size=400), st.data())
def test_chunked_decoder_buffers_within_its_limits(data: bytes, draw: st.DataObject) -> None:
    # A peer that never ends a size line or a trailer section must not grow waylay's memory:
    # the partial line and the trailer block (private slots, read here on purpose) stay under
    # the limits, whatever the bytes and however they are split.
    decoder = ChunkedDecoder(max_chunk_line=32, max_trailer_size=64, max_trailers=4)
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    with contextlib.suppress(ProtocolError):
        for start, end in itertools.pairwise([0, *cuts, len(data)]):
            decoder.feed(data[start:end])
            assert len(decoder._line) < 64
            assert len(decoder._trailer_block) <= 64
            if decoder.done:
                break
