"""Content codings (RFC 9110 §8.4): a body as the peers sent it, and as an addon reads it.

A message's `raw_content` is its body after the framing (chunking) is undone but with its
Content-Encoding still applied; `content` is what that encoding wraps. Decoding is bounded:
a few kilobytes of gzip can stand for gigabytes, and an addon that reads a body must not make
the proxy hold them, so output over ``max_size`` is an error, not an allocation.

Codings: gzip (and x-gzip), deflate (zlib-wrapped, or raw as some servers send it), br, zstd,
identity. Several codings apply in the order listed, so they are undone in reverse.
"""

from __future__ import annotations

import zlib

import brotli
import zstandard

# The most a body may decode to (an addon reading a compressed body).
MAX_DECODED_SIZE = 256 * 1024 * 1024

# The most output one byte of zstd data can stand for: a 4-byte RLE block repeats a byte up
# to the 128 KiB block maximum (RFC 8878 §3.1.1.2). Fed this many bytes at the least, a
# decoder can overshoot the size limit by 64 * 32 KiB = 2 MiB before the check stops it.
_ZSTD_MAX_RATIO = 128 * 1024 // 4
_ZSTD_MIN_STEP = 64

KNOWN = ("gzip", "x-gzip", "deflate", "br", "zstd", "identity")


class DecodeError(ValueError):
    """The body cannot be decoded as its Content-Encoding says (or decodes too large)."""


def codings(header: str | None) -> list[str]:
    """The codings a Content-Encoding value lists, lowercased, in the order applied."""
    if not header:
        return []
    return [c.strip().lower() for c in header.split(",") if c.strip()]


def decode(data: bytes, header: str | None, *, max_size: int = MAX_DECODED_SIZE) -> bytes:
    """``data`` with the codings of ``header`` (a Content-Encoding value) undone."""
    for coding in reversed(codings(header)):
        data = _decode_one(data, coding, max_size)
    return data


def encode(data: bytes, header: str | None) -> bytes:
    """``data`` with the codings of ``header`` applied, as a server would send it."""
    for coding in codings(header):
        if coding in ("gzip", "x-gzip"):
            data = _gzip(data)
        elif coding == "deflate":
            data = zlib.compress(data)
        elif coding == "br":
            data = brotli.compress(data)
        elif coding == "zstd":
            data = zstandard.ZstdCompressor().compress(data)
        elif coding != "identity":
            raise DecodeError(f"cannot encode with Content-Encoding {coding!r}")
    return data


def _gzip(data: bytes) -> bytes:
    # mtime 0: the same body encodes to the same bytes every time.
    import gzip

    return gzip.compress(data, mtime=0)


def _decode_one(data: bytes, coding: str, max_size: int) -> bytes:
    if coding == "identity" or not data:
        # No body at all (a HEAD response, a 304) decodes to none, whatever the coding.
        return data
    if coding in ("gzip", "x-gzip"):
        return _gzip_members(data, max_size)
    if coding == "deflate":
        if data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0:
            return _zlib(data, zlib.MAX_WBITS, coding, max_size)
        # RFC 9110 §8.4.1.2 says zlib-wrapped; some servers send raw deflate anyway (no
        # zlib header: CM 8 and a header checksum divisible by 31, RFC 1950 §2.2).
        return _zlib(data, -zlib.MAX_WBITS, coding, max_size)
    if coding == "br":
        return _brotli(data, max_size)
    if coding == "zstd":
        return _zstd(data, max_size)
    raise DecodeError(f"unknown Content-Encoding {coding!r}")


def _gzip_members(data: bytes, max_size: int) -> bytes:
    """Every member of a gzip body (RFC 1952 §2.2: a file may be several, one after another)."""
    out: list[bytes] = []
    size = 0
    while True:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        piece = _zlib(data, 16 + zlib.MAX_WBITS, "gzip", max_size - size, decompressor)
        size += len(piece)
        out.append(piece)
        data = decompressor.unused_data
        if not data:
            return b"".join(out)
        if data[:2] != b"\x1f\x8b":
            raise DecodeError("the gzip data is followed by bytes that are not gzip")


def _zlib(
    data: bytes,
    wbits: int,
    coding: str,
    max_size: int,
    decompressor: zlib._Decompress | None = None,
) -> bytes:
    decompressor = decompressor or zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(data, max_size + 1)
    except zlib.error as exc:
        raise DecodeError(f"not valid {coding} data: {exc}") from None
    _check_size(len(out), max_size)
    if not decompressor.eof:
        raise DecodeError(f"the {coding} data ends early")
    if coding == "deflate" and decompressor.unused_data:
        raise DecodeError("the deflate data is followed by other bytes")
    return out


def _brotli(data: bytes, max_size: int) -> bytes:
    decompressor = brotli.Decompressor()
    try:
        out: bytes = decompressor.process(data, output_buffer_limit=max_size + 1)
    except brotli.error as exc:
        raise DecodeError(f"not valid br data: {exc}") from None
    _check_size(len(out), max_size)
    if not decompressor.is_finished():
        raise DecodeError("the br data ends early")
    return out


def _zstd(data: bytes, max_size: int) -> bytes:
    # zstandard's stream reader bounds the output but returns what it has when the data ends
    # mid-frame; a decompressobj says whether each frame ended (eof) but has no output bound.
    # So the data is fed in slices that cannot decode to more than the room left.
    view = memoryview(data)
    out: list[bytes] = []
    size = pos = 0
    complete = False
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        while pos < len(view):
            if complete:  # RFC 8878 §3.1: frames follow one another, each decoded in turn
                decompressor = zstandard.ZstdDecompressor().decompressobj()
            step = max(_ZSTD_MIN_STEP, (max_size - size) // _ZSTD_MAX_RATIO)
            piece = decompressor.decompress(view[pos : pos + step])
            pos += step
            size += len(piece)
            _check_size(size, max_size)
            out.append(piece)
            complete = decompressor.eof
            if complete:
                pos = min(pos, len(view)) - len(decompressor.unused_data)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"not valid zstd data: {exc}") from None
    if not complete:
        raise DecodeError("the zstd data ends early")
    return b"".join(out)


def _check_size(size: int, max_size: int) -> None:
    if size > max_size:
        raise DecodeError(f"the body decodes to more than {max_size} bytes")
