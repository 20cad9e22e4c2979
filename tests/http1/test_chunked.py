"""The chunked decoder (RFC 9112 §7.1): strict sizes, exact CRLFs, bounded lines and trailers.

Every valid body is decoded whole, byte by byte, and cut in two at every point: the payload,
the trailers and the bytes left for the next message must not depend on how bytes arrive.
"""

from __future__ import annotations

import pytest

from waylay.errors import HeadTooLarge, ProtocolError
from waylay.http1.body import ChunkedDecoder
from waylay.http1.head import Fields

NEXT = b"GET /next HTTP/1.1\r\n"

VALID: list[object] = [
    pytest.param(b"0\r\n\r\n", b"", [], id="empty-body-7.1"),
    pytest.param(b"5\r\nhello\r\n0\r\n\r\n", b"hello", [], id="one-chunk-7.1"),
    pytest.param(
        b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n", b"hello world", [], id="three-7.1"
    ),
    pytest.param(b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", [], id="uppercase-hex-7.1"),
    pytest.param(b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789", [], id="lowercase-hex-7.1"),
    pytest.param(b"0000000000000003\r\nabc\r\n0\r\n\r\n", b"abc", [], id="16-hex-digits-7.1"),
    pytest.param(b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n", [], id="crlf-in-data-7.1"),
    pytest.param(b"2\r\n\x00\xff\r\n000\r\n\r\n", b"\x00\xff", [], id="binary-last-zeros-7.1"),
    # RFC 9112 §7.1.1: chunk extensions are read and dropped
    pytest.param(b"3;name\r\nabc\r\n0\r\n\r\n", b"abc", [], id="ext-name-7.1.1"),
    pytest.param(
        b'3;a=b;c="d; e"\r\nabc\r\n0;last\r\n\r\n', b"abc", [], id="ext-values-last-ext-7.1.1"
    ),
    # Leniency decided in body.py: BWS before ";" is grammar (RFC 9112 §7.1.1)
    pytest.param(b"3 ;ext\r\nabc\r\n0\t;x\r\n\r\n", b"abc", [], id="bws-before-ext-7.1.1"),
    # RFC 9112 §7.1.2: trailers, parsed like header fields
    pytest.param(
        b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum:  1 \r\n\r\n",
        b"abc",
        [(b"Expires", b"never"), (b"X-Sum", b"1")],
        id="trailers-7.1.2",
    ),
]


def decode(
    pieces: list[bytes], decoder: ChunkedDecoder | None = None
) -> tuple[bytes, Fields, bytes]:
    """Feed ``pieces`` in order; the payload, the trailers and every byte not consumed."""
    decoder = decoder or ChunkedDecoder()
    payload = []
    rest = []
    for piece in pieces:
        if decoder.done:
            rest.append(piece)
            continue
        out, used = decoder.feed(piece)
        payload += out
        if used < len(piece):
            assert decoder.done, "bytes were left over before the body ended"
            rest.append(piece[used:])
    assert decoder.done
    return b"".join(payload), decoder.trailers, b"".join(rest)


@pytest.mark.parametrize(("body", "payload", "trailers"), VALID)
def test_whole(body: bytes, payload: bytes, trailers: Fields) -> None:
    assert decode([body + NEXT]) == (payload, trailers, NEXT)


@pytest.mark.parametrize(("body", "payload", "trailers"), VALID)
def test_byte_by_byte(body: bytes, payload: bytes, trailers: Fields) -> None:
    data = body + NEXT
    assert decode([data[i : i + 1] for i in range(len(data))]) == (payload, trailers, NEXT)


@pytest.mark.parametrize(("body", "payload", "trailers"), VALID)
def test_every_split_point(body: bytes, payload: bytes, trailers: Fields) -> None:
    data = body + NEXT
    for cut in range(len(data) + 1):
        assert decode([data[:cut], data[cut:]]) == (payload, trailers, NEXT), cut


INVALID = [
    # RFC 9112 §7.1: chunk-size = 1*HEXDIG, nothing else
    pytest.param(b"-1\r\n", id="negative-7.1"),
    pytest.param(b"+5\r\nhello\r\n0\r\n\r\n", id="plus-7.1"),
    pytest.param(b"0x5\r\nhello\r\n0\r\n\r\n", id="0x-prefix-7.1"),
    pytest.param(b" 5\r\nhello\r\n0\r\n\r\n", id="leading-space-7.1"),
    pytest.param(b"5 \r\nhello\r\n0\r\n\r\n", id="trailing-space-no-ext-7.1"),
    pytest.param(b"5x\r\nhello\r\n0\r\n\r\n", id="trailing-junk-7.1"),
    pytest.param(b"5_0\r\n", id="underscore-7.1"),
    pytest.param(b"\r\nhello\r\n", id="empty-size-7.1"),
    pytest.param(b";ext\r\nhello\r\n", id="ext-without-size-7.1"),
    pytest.param(b"g\r\n", id="not-hex-7.1"),
    pytest.param(b"\xd9\xa5\r\n", id="non-ascii-digit-7.1"),
    pytest.param(b"00000000000000005\r\nhello\r\n0\r\n\r\n", id="17-hex-digits-7.1"),
    pytest.param(b"ffffffffffffffffff\r\n", id="overflow-7.1"),
    # RFC 9112 §7.1, §2.2: CRLF only
    pytest.param(b"5\nhello\r\n0\r\n\r\n", id="size-bare-lf-2.2"),
    pytest.param(b"5\r\r\nhello\r\n0\r\n\r\n", id="size-bare-cr-2.2"),
    pytest.param(b"5;a\rb\r\nhello\r\n", id="ext-bare-cr-2.2"),
    pytest.param(b"0\n\r\n", id="last-chunk-bare-lf-2.2"),
    # RFC 9112 §7.1: chunk data followed by exactly CRLF (h11 CVE-2025-43859)
    pytest.param(b"5\r\nhelloXX0\r\n\r\n", id="data-then-junk-7.1"),
    pytest.param(b"5\r\nhello\n0\r\n\r\n", id="data-then-bare-lf-7.1"),
    pytest.param(b"5\r\nhello\rX0\r\n\r\n", id="data-then-cr-junk-7.1"),
    pytest.param(b"5\r\nhello0\r\n\r\n", id="data-then-next-size-7.1"),
    pytest.param(b"3\r\nhello\r\n0\r\n\r\n", id="data-longer-than-size-7.1"),
    # RFC 9112 §7.1.1: extensions without control bytes
    pytest.param(b"5;a=\x00\r\nhello\r\n0\r\n\r\n", id="ext-nul-7.1.1"),
    pytest.param(b"5;a=\x7f\r\nhello\r\n0\r\n\r\n", id="ext-del-7.1.1"),
    # RFC 9112 §7.1.2: trailer fields are checked like header fields
    pytest.param(b"0\r\nX: a\r\n b\r\n\r\n", id="trailer-obs-fold-5.2"),
    pytest.param(b"0\r\nX: a\n\r\n", id="trailer-bare-lf-2.2"),
    pytest.param(b"0\r\nX: a\rb\r\n\r\n", id="trailer-bare-cr-2.2"),
    pytest.param(b"0\r\nX: \x00\r\n\r\n", id="trailer-nul-5.5"),
    pytest.param(b"0\r\nNoColon\r\n\r\n", id="trailer-no-colon-5"),
    pytest.param(b"0\r\n: a\r\n\r\n", id="trailer-empty-name-5"),
]


@pytest.mark.parametrize("body", INVALID)
@pytest.mark.parametrize(("response", "status"), [(False, 400), (True, 502)])
def test_invalid(body: bytes, response: bool, status: int) -> None:
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):
        decoder = ChunkedDecoder(response=response)
        with pytest.raises(ProtocolError) as error:
            for piece in pieces:
                decoder.feed(piece)
        assert error.value.status == status


def test_space_before_colon_in_trailers() -> None:
    # RFC 9112 §5.1: refused from a client; removed from a server, as in a response head
    with pytest.raises(ProtocolError) as error:
        ChunkedDecoder().feed(b"0\r\nX : a\r\n\r\n")
    assert error.value.status == 400
    decoder = ChunkedDecoder(response=True)
    decoder.feed(b"0\r\nX : a\r\n\r\n")
    assert decoder.trailers == [(b"X", b"a")]


# --- limits -----------------------------------------------------------------------------------


def test_size_line_limit() -> None:
    line = b"5;" + b"x" * 90 + b"\r\n"
    assert len(line) == 94
    assert decode([line + b"hello\r\n0\r\n\r\n"], ChunkedDecoder(max_chunk_line=94))[0] == b"hello"
    for pieces in ([line], [line[:50], line[50:]]):
        decoder = ChunkedDecoder(max_chunk_line=93)
        with pytest.raises(ProtocolError, match="longer than 93"):
            for piece in pieces:
                decoder.feed(piece)


def test_endless_size_line_refused_without_its_end() -> None:
    decoder = ChunkedDecoder(max_chunk_line=64)
    decoder.feed(b"5;" + b"x" * 60)
    with pytest.raises(ProtocolError):
        decoder.feed(b"x" * 10)


def test_oversized_extension_with_default_limit() -> None:
    with pytest.raises(ProtocolError):
        ChunkedDecoder().feed(b"1;" + b"a" * 5000 + b"\r\nx\r\n0\r\n\r\n")


@pytest.mark.parametrize(("response", "status"), [(False, 431), (True, 502)])
def test_trailer_count_limit(response: bool, status: int) -> None:
    body = b"0\r\n" + b"X: y\r\n" * 3 + b"\r\n"
    assert len(decode([body], ChunkedDecoder(max_trailers=3))[1]) == 3
    with pytest.raises(HeadTooLarge) as error:
        ChunkedDecoder(response=response, max_trailers=2).feed(body)
    assert error.value.status == status


@pytest.mark.parametrize(("response", "status"), [(False, 431), (True, 502)])
def test_trailer_size_limit(response: bool, status: int) -> None:
    body = b"0\r\n" + b"X: " + b"y" * 50 + b"\r\n\r\n"
    assert decode([body], ChunkedDecoder(max_trailer_size=58))[1] == [(b"X", b"y" * 50)]
    for pieces in ([body], [body[i : i + 1] for i in range(len(body))]):
        decoder = ChunkedDecoder(response=response, max_trailer_size=50)
        with pytest.raises(HeadTooLarge) as error:
            for piece in pieces:
                decoder.feed(piece)
        assert error.value.status == status


# --- behaviour --------------------------------------------------------------------------------


def test_payload_is_not_copied() -> None:
    decoder = ChunkedDecoder()
    pieces, used = decoder.feed(b"100000\r\n")
    assert (pieces, used) == ([], 8)
    data = bytes(range(256)) * 4096
    pieces, used = decoder.feed(data)
    assert used == len(data)
    assert len(pieces) == 1
    assert pieces[0] is data


def test_nothing_consumed_after_done() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"0\r\n\r\nNEXT") == ([], 5)
    assert decoder.done
    assert decoder.feed(b"more") == ([], 0)


def test_not_done_until_trailer_section_ends() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r\n0\r\n") == ([b"abc"], 11)
    assert not decoder.done
    assert decoder.feed(b"X: y\r\n") == ([], 6)
    assert not decoder.done
    assert decoder.feed(b"\r\n") == ([], 2)
    assert decoder.done
    assert decoder.trailers == [(b"X", b"y")]


def test_large_chunk_sizes_are_streamed() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(b"ffffffffffffffff\r\n")
    pieces, used = decoder.feed(b"x" * 10)
    assert pieces == [b"x" * 10]
    assert used == 10
    assert not decoder.done
