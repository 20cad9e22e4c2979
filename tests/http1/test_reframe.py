"""Reframer: one body's received bytes in, the bytes to send out, the next message left over."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waylay.errors import ProtocolError
from waylay.http1.body import Framing
from waylay.http1.reframe import Reframer

LENGTH_5 = Framing("length", 5)
CHUNKED = Framing("chunked")
CLOSE = Framing("close")
NONE = Framing("none")

CHUNKED_WIRE = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n"


def run(reframer: Reframer, pieces: list[bytes]) -> tuple[bytes, bytes]:
    """Feed ``pieces``; return (everything sent, everything left after the body)."""
    sent, rest = [], b""
    for piece in pieces:
        out, leftover = reframer.feed(piece)
        sent += out
        rest += leftover
    return b"".join(sent), rest


@pytest.mark.parametrize(
    ("framing", "dechunk", "wire", "sent", "rest", "size"),
    [
        (LENGTH_5, False, b"hello", b"hello", b"", 5),
        (LENGTH_5, False, b"helloGET / HTTP/1.1\r\n", b"hello", b"GET / HTTP/1.1\r\n", 5),
        (Framing("length", 0), False, b"next", b"", b"next", 0),
        (NONE, False, b"GET /next", b"", b"GET /next", 0),
        # Chunked is decoded strictly and chunked again: extensions dropped, trailers kept.
        (
            CHUNKED,
            False,
            CHUNKED_WIRE + b"NEXT",
            b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 11\r\n\r\n",
            b"NEXT",
            11,
        ),
        # For an HTTP/1.0 peer: the payload alone, which it reads until the connection closes.
        (CHUNKED, True, CHUNKED_WIRE, b"hello world", b"", 11),
        (CLOSE, False, b"anything at all", b"anything at all", b"", 15),
    ],
)
def test_reframe(
    framing: Framing, dechunk: bool, wire: bytes, sent: bytes, rest: bytes, size: int
) -> None:
    whole = Reframer(framing, response=True, dechunk=dechunk)
    assert run(whole, [wire]) == (sent, rest)
    assert whole.size == size
    # Fed byte by byte, chunk boundaries may differ but the payload and the rest may not.
    bytewise = Reframer(framing, response=True, dechunk=dechunk)
    sent_bytewise, rest_bytewise = run(bytewise, [wire[i : i + 1] for i in range(len(wire))])
    assert rest_bytewise == rest and bytewise.size == size
    if framing is CHUNKED and not dechunk:
        assert dechunked(sent_bytewise) == dechunked(sent)
    else:
        assert sent_bytewise == sent


def dechunked(wire: bytes) -> bytes:
    return run(Reframer(CHUNKED, response=True, dechunk=True), [wire])[0]


def test_done_and_trailers() -> None:
    reframer = Reframer(CHUNKED, response=False)
    run(reframer, [CHUNKED_WIRE])
    assert reframer.done and reframer.trailers == [(b"X-Sum", b"11")]


def test_close_delimited_ends_only_at_end_of_stream() -> None:
    reframer = Reframer(CLOSE, response=True)
    run(reframer, [b"abc"])
    assert reframer.close_delimited and not reframer.done
    assert reframer.end_of_stream() and reframer.done


@pytest.mark.parametrize("framing", [LENGTH_5, CHUNKED])
def test_end_of_stream_before_the_end_is_incomplete(framing: Framing) -> None:
    reframer = Reframer(framing, response=True)
    run(reframer, [b"5\r\nhe" if framing is CHUNKED else b"he"])
    assert not reframer.end_of_stream()


def test_bad_chunk_gives_out_nothing_of_it() -> None:
    reframer = Reframer(CHUNKED, response=False)
    out, _ = reframer.feed(b"5\r\nhello\r\n")
    assert out == [b"5\r\nhello\r\n"]
    with pytest.raises(ProtocolError):
        reframer.feed(b"zz\r\nGET /smuggled HTTP/1.1\r\n\r\n")


@given(
    payload=st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_rechunked_body_carries_the_same_payload(payload: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in payload) + b"0\r\n\r\n"
    bounds = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    pieces = [wire[a:b] for a, b in itertools.pairwise(bounds)]
    sent, rest = run(Reframer(CHUNKED, response=True, dechunk=True), pieces)
    assert sent == b"".join(payload) and rest == b""


def test_trailers_that_may_not_be_trailers_are_kept_in_the_flow_but_not_sent() -> None:
    # RFC 9110 §6.5.1: a next hop that merged these into the header section would read a
    # second Content-Length or Host; the flow still shows what the client sent.
    wire = b"0\r\nContent-Length: 5\r\nHost: evil.test\r\nX-Sum: 11\r\n\r\n"
    reframer = Reframer(CHUNKED, response=False)
    sent, rest = run(reframer, [wire])
    assert sent == b"0\r\nX-Sum: 11\r\n\r\n" and rest == b""
    assert reframer.trailers == [
        (b"Content-Length", b"5"),
        (b"Host", b"evil.test"),
        (b"X-Sum", b"11"),
    ]
