"""Content codings (RFC 9110 §8.4): bodies other tools compressed decode, and decoding is bounded.

The compressed inputs are made by the standard libraries themselves (gzip, zlib, brotli,
zstandard), not by encoding.py, so a round trip cannot hide a mistake made the same way twice.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from waylay.encoding import KNOWN, DecodeError, codings, decode, encode

MiB = 1024 * 1024
TEXT = b"hello, compressed world " * 200


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def _zstd_streamed(data: bytes) -> bytes:
    # Without the content size in the frame header, as a streaming server writes it.
    compressor = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    return compressor.compress(data) + compressor.flush()


# Each coding as another implementation writes it.
COMPRESSORS: list[tuple[str, str, Callable[[bytes], bytes]]] = [
    ("gzip", "gzip", gzip.compress),
    ("x-gzip", "x-gzip", gzip.compress),  # RFC 9110 §8.4.1.3: the same coding
    ("deflate zlib", "deflate", zlib.compress),  # RFC 9110 §8.4.1.2: zlib-wrapped
    ("deflate raw", "deflate", _raw_deflate),  # what some servers send instead
    ("br", "br", brotli.compress),
    ("zstd", "zstd", _zstd),
    ("zstd streamed", "zstd", _zstd_streamed),
    ("identity", "identity", lambda data: data),
]
IDS = [name for name, _, _ in COMPRESSORS]
COMPRESSED = [(header, compress) for _, header, compress in COMPRESSORS]


@pytest.mark.parametrize(("header", "compress"), COMPRESSED, ids=IDS)
def test_a_body_compressed_elsewhere_decodes(
    header: str, compress: Callable[[bytes], bytes]
) -> None:
    assert decode(compress(TEXT), header) == TEXT


@pytest.mark.parametrize(("header", "compress"), COMPRESSED, ids=IDS)
def test_an_empty_body_compressed_elsewhere_decodes_to_empty(
    header: str, compress: Callable[[bytes], bytes]
) -> None:
    assert decode(compress(b""), header) == b""


@pytest.mark.parametrize("header", ["gzip", "x-gzip", "deflate", "br", "zstd", "identity"])
def test_what_encode_writes_decodes_back(header: str) -> None:
    encoded = encode(TEXT, header)
    assert decode(encoded, header) == TEXT
    if header != "identity":
        assert len(encoded) < len(TEXT)


def test_encoded_bodies_are_what_the_libraries_read() -> None:
    assert gzip.decompress(encode(TEXT, "gzip")) == TEXT
    assert zlib.decompress(encode(TEXT, "deflate")) == TEXT
    assert brotli.decompress(encode(TEXT, "br")) == TEXT
    assert zstandard.ZstdDecompressor().decompress(encode(TEXT, "zstd")) == TEXT
    assert encode(TEXT, "gzip") == encode(TEXT, "gzip")  # mtime 0: the same bytes each time


def test_stacked_codings_are_undone_in_reverse() -> None:
    # RFC 9110 §8.4: "gzip, br" is gzip applied first, then br.
    sent = brotli.compress(gzip.compress(TEXT))
    assert decode(sent, "gzip, br") == TEXT
    assert gzip.decompress(brotli.decompress(encode(TEXT, "gzip, br"))) == TEXT
    with pytest.raises(DecodeError):
        decode(sent, "br, gzip")


@pytest.mark.parametrize(
    ("header", "listed"),
    [
        (None, []),
        ("", []),
        ("gzip", ["gzip"]),
        ("GZip", ["gzip"]),  # RFC 9110 §8.4.1: coding names are case-insensitive
        (" gzip ,br", ["gzip", "br"]),
        ("gzip,, identity,", ["gzip", "identity"]),
    ],
)
def test_codings_lists_a_content_encoding_value(header: str | None, listed: list[str]) -> None:
    assert codings(header) == listed


def test_no_coding_or_only_identity_is_the_body_itself() -> None:
    for header in (None, "", "identity", "identity, IDENTITY"):
        assert decode(b"\x00 anything \xff", header) == b"\x00 anything \xff"
        assert encode(b"\x00 anything \xff", header) == b"\x00 anything \xff"


def test_upper_case_codings_decode() -> None:
    assert decode(gzip.compress(TEXT), "GZIP") == TEXT
    assert decode(brotli.compress(TEXT), " Br ") == TEXT


# --- what is refused -----------------------------------------------------------------------


@pytest.mark.parametrize("header", ["compress", "x-compress", "rot13", "gzip, pack200-gzip"])
def test_an_unknown_coding_is_a_decode_error(header: str) -> None:
    with pytest.raises(DecodeError, match="unknown Content-Encoding"):
        decode(gzip.compress(TEXT), header)
    with pytest.raises(DecodeError, match="cannot encode"):
        encode(TEXT, header)


def test_a_decode_error_is_a_value_error() -> None:
    # What flow.content documents, and what get_content(strict=False) catches.
    assert issubclass(DecodeError, ValueError)
    assert "rot13" not in KNOWN


# Half the bytes of a body that does not compress well: the data ends mid-stream.
_NOISE = bytes((i * 7919 + i // 3) % 251 for i in range(20_000))
_TRUNCATED = [
    ("gzip", gzip.compress(_NOISE)),
    ("deflate", zlib.compress(_NOISE)),
    ("deflate", _raw_deflate(_NOISE)),
    ("br", brotli.compress(_NOISE)),
    ("zstd", _zstd(_NOISE)),
    ("zstd", _zstd_streamed(_NOISE)),
]
_TRUNCATED_IDS = ["gzip", "deflate zlib", "deflate raw", "br", "zstd", "zstd streamed"]


@pytest.mark.parametrize(("header", "whole"), _TRUNCATED, ids=_TRUNCATED_IDS)
@pytest.mark.parametrize("keep", [0.5, 0.99, "all but one"])
def test_truncated_data_is_a_decode_error_not_a_shorter_body(
    header: str, whole: bytes, keep: float | str
) -> None:
    assert decode(whole, header) == _NOISE
    cut = len(whole) - 1 if keep == "all but one" else int(len(whole) * float(keep))
    with pytest.raises(DecodeError):
        decode(whole[:cut], header)


@pytest.mark.parametrize("header", ["gzip", "deflate", "br", "zstd"])
@pytest.mark.parametrize("data", [b"not compressed at all", b"\x00" * 64, b"\xff" * 64])
def test_data_that_is_not_in_the_coding_is_a_decode_error(header: str, data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode(data, header)


@pytest.mark.parametrize(
    ("header", "whole"),
    [
        ("gzip", gzip.compress(_NOISE)),  # RFC 1952: CRC-32
        ("deflate", zlib.compress(_NOISE)),  # RFC 1950: Adler-32
        ("zstd", zstandard.ZstdCompressor(write_checksum=True).compress(_NOISE)),
    ],
    ids=["gzip", "deflate zlib", "zstd with checksum"],
)
def test_a_corrupted_byte_is_a_decode_error_where_the_coding_has_a_checksum(
    header: str, whole: bytes
) -> None:
    # br, raw deflate and zstd without its optional checksum carry none: a flipped bit in
    # their literals decodes to other bytes, which no decoder can tell.
    middle = len(whole) // 2
    corrupt = whole[:middle] + bytes([whole[middle] ^ 0xFF]) + whole[middle + 1 :]
    with pytest.raises(DecodeError):
        decode(corrupt, header)


def test_two_zstd_frames_are_one_body() -> None:
    # RFC 8878 §3.1: a zstd stream is frames one after another.
    assert decode(_zstd(b"first ") + _zstd_streamed(b"second"), "zstd") == b"first second"
    with pytest.raises(DecodeError):
        decode(_zstd(b"first ") + _zstd(b"second")[:-3], "zstd")


# --- bombs: a small body that decodes to far more than the limit ---------------------------

_ZEROS = b"\x00" * (10 * MiB)


@pytest.mark.parametrize(("header", "compress"), COMPRESSED[:-1], ids=IDS[:-1])
def test_a_body_over_the_decoded_size_limit_is_a_decode_error(
    header: str, compress: Callable[[bytes], bytes]
) -> None:
    bomb = compress(_ZEROS)
    assert len(bomb) < 64 * 1024  # small on the wire
    with pytest.raises(DecodeError):
        decode(bomb, header, max_size=MiB)


_BOMB_REASONS = [
    pytest.param(header, compress, id=name) for name, header, compress in COMPRESSORS[:-1]
]


@pytest.mark.parametrize(("header", "compress"), _BOMB_REASONS)
def test_the_error_of_a_body_over_the_limit_says_so(
    header: str, compress: Callable[[bytes], bytes]
) -> None:
    with pytest.raises(DecodeError, match=f"more than {MiB} bytes"):
        decode(compress(_ZEROS), header, max_size=MiB)


@pytest.mark.parametrize(("header", "compress"), COMPRESSED[:-1], ids=IDS[:-1])
def test_a_body_of_exactly_the_limit_decodes(
    header: str, compress: Callable[[bytes], bytes]
) -> None:
    body = _ZEROS[:MiB]
    assert decode(compress(body), header, max_size=MiB) == body
    with pytest.raises(DecodeError):
        decode(compress(body + b"\x00"), header, max_size=MiB)


def test_the_limit_holds_through_stacked_codings() -> None:
    bomb = brotli.compress(gzip.compress(_ZEROS))
    with pytest.raises(DecodeError, match="more than"):
        decode(bomb, "gzip, br", max_size=MiB)


# --- a property ----------------------------------------------------------------------------


@given(
    data=st.binary(max_size=2000),
    stack=st.lists(st.sampled_from(["gzip", "x-gzip", "deflate", "br", "zstd", "identity"]),
                   max_size=3),
)  # fmt: skip
def test_any_body_under_any_stack_of_codings_comes_back(data: bytes, stack: list[str]) -> None:
    header = ", ".join(stack)
    assert decode(encode(data, header), header) == data
