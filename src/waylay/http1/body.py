"""HTTP/1 body framing and a strict incremental chunked decoder (RFC 9112 §6-§7).

Theory of operation
-------------------
Request smuggling lives here. When two parsers disagree about where a body ends, the bytes one
of them thinks are body become the next request for the other. So the framing decision refuses
every message whose length could be read two ways: Content-Length with Transfer-Encoding, a
Content-Length that is not plain digits, differing lengths, a transfer coding list that does not
end in ``chunked``, ``chunked`` twice. A chunked body is decoded byte-exactly: hex sizes of at
most 16 digits, each chunk's data followed by exactly CRLF, size lines and trailers bounded.

The proxy re-frames what it forwards (a decoded chunked body is chunked again by
``serialize.chunk``, and ``forwarding.py`` sends Content-Length and Transfer-Encoding in
canonical form), so what the next hop sees is always waylay's own framing; the strictness here
is about refusing input that the *previous* hop or an observer could have framed differently.

Owns: ``request_framing``, ``response_framing``, ``ChunkedDecoder``. Does not own: the head
(``head.py``), reading from sockets, decoding content codings (gzip etc. pass through).
Limits: the chunk-size line, the trailer section's size and its field count are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from waylay.errors import ProtocolError
from waylay.http1.head import (
    Fields,
    RequestHead,
    ResponseHead,
    parse_fields,
    protocol_error,
    too_large,
)

_HEXDIG = b"0123456789abcdefABCDEF"
_TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# What a chunk extension may hold: no controls but HTAB (RFC 9112 §7.1.1, RFC 9110 §5.6.4).
_EXT_BYTES = b"\t " + bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
_MAX_LENGTH = 2**63 - 1

# Transfer codings waylay can frame a body under (RFC 9112 §7, IANA HTTP Transfer Coding
# Registry). "identity" is left out on purpose: RFC 7230 removed it, it has no defined meaning
# as a transfer coding, and parsers that still know it read it as "no framing" — exactly the
# disagreement smuggling needs. So ``identity, chunked`` gets 501 and ``chunked, identity`` 400.
KNOWN_TRANSFER_CODINGS = frozenset(
    {b"chunked", b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"}
)


@dataclass(frozen=True, slots=True)
class Framing:
    """How a message body is delimited: not at all, by a length, by chunks, or by close."""

    kind: Literal["none", "length", "chunked", "close"]
    length: int = 0


_NONE = Framing("none")
_CHUNKED = Framing("chunked")
_CLOSE = Framing("close")


def request_framing(head: RequestHead) -> Framing:
    """The body framing of a request (RFC 9112 §6.3, items 4-6), or ProtocolError."""
    lengths, codings = _framing_fields(head.headers)
    if codings:
        if lengths:
            # RFC 9112 §6.1: a server MAY reject a request with both; we always do (smuggling).
            raise protocol_error(
                "request has both Content-Length and Transfer-Encoding (RFC 9112 §6.1)"
            )
        if head.version == b"HTTP/1.0":
            # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
            raise protocol_error("Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)")
        transfer_codings = _transfer_codings(codings, response=False)
        _check_codings(transfer_codings, response=False)
        for coding in transfer_codings:
            if coding not in KNOWN_TRANSFER_CODINGS:
                # RFC 9112 §6.1: a server SHOULD answer 501 to a coding it does not understand.
                raise ProtocolError(
                    f"transfer coding {coding.decode('ascii')!r} is not implemented "
                    "(RFC 9112 §6.1)",
                    status=501,
                    code="not-implemented",
                )
        return _CHUNKED
    if lengths:
        return Framing("length", _content_length(lengths, response=False))
    return _NONE  # RFC 9112 §6.3 item 6: no body


def response_framing(head: ResponseHead, request_method: bytes) -> Framing:
    """The body framing of a response to ``request_method`` (RFC 9112 §6.3), or ProtocolError."""
    status = head.status
    # RFC 9112 §6.3 item 1: no body after HEAD, 1xx, 204, 304, whatever the headers say.
    # Item 2: a 2xx to CONNECT makes the connection a tunnel; there is no body to frame.
    if (
        request_method == b"HEAD"
        or status < 200
        or status == 204
        or status == 304
        or (request_method == b"CONNECT" and status < 300)
    ):
        return _NONE
    lengths, codings = _framing_fields(head.headers)
    if codings:
        if lengths:
            # RFC 9112 §6.3 item 3 says Transfer-Encoding wins; a response with both "ought to
            # be handled as an error" by a proxy. We refuse it: one of them was a lie.
            raise protocol_error(
                "response has both Content-Length and Transfer-Encoding (RFC 9112 §6.3)",
                response=True,
            )
        if head.version == b"HTTP/1.0":
            raise protocol_error(
                "Transfer-Encoding in an HTTP/1.0 response (RFC 9112 §6.1)", response=True
            )
        # RFC 9112 §6.3 item 3 makes a response whose final coding is not chunked
        # close-delimited. waylay deliberately answers 502 instead: such a response is a
        # framing the client may read differently, and no correct server needs it.
        # Other codings under chunked are passed through untouched; they do not move the end.
        _check_codings(_transfer_codings(codings, response=True), response=True)
        return _CHUNKED
    if lengths:
        return Framing("length", _content_length(lengths, response=True))
    return _CLOSE  # RFC 9112 §6.3 item 8: read until the server closes


def _framing_fields(headers: Fields) -> tuple[list[bytes], list[bytes]]:
    lengths: list[bytes] = []
    codings: list[bytes] = []
    for name, value in headers:
        size = len(name)
        if size == 14 and name.lower() == b"content-length":
            lengths.append(value)
        elif size == 17 and name.lower() == b"transfer-encoding":
            codings.append(value)
    return lengths, codings


def _transfer_codings(values: list[bytes], *, response: bool) -> list[bytes]:
    """The lowercased codings of every Transfer-Encoding line, in order (RFC 9112 §6.1)."""
    codings: list[bytes] = []
    for value in values:
        for item in value.split(b","):
            coding = item.strip(b" \t").lower()  # RFC 9112 §7: coding names are case-insensitive
            # RFC 9110 §5.6.1 lets a recipient skip empty list elements; we refuse them here
            # ("Transfer-Encoding: , chunked", an empty value) because parsers that do not skip
            # them see a coding called "" and frame the body differently.
            if not coding:
                raise protocol_error(
                    "empty element in Transfer-Encoding (RFC 9112 §6.1)", response=response
                )
            # RFC 9112 §7: transfer-coding = token *( OWS ";" OWS transfer-parameter ). No
            # registered coding takes parameters, so parameters are refused.
            if coding.translate(None, _TCHAR):
                raise protocol_error(
                    "Transfer-Encoding coding is not a plain token (RFC 9112 §7)",
                    response=response,
                )
            codings.append(coding)
    return codings


def _check_codings(codings: list[bytes], *, response: bool) -> None:
    # RFC 9112 §6.1: chunked MUST be the final coding of a request, else 400; a response is
    # refused with 502 as explained in response_framing.
    if codings[-1] != b"chunked":
        raise protocol_error(
            "Transfer-Encoding does not end with chunked (RFC 9112 §6.1)", response=response
        )
    # RFC 9112 §7: a sender MUST NOT apply chunked more than once.
    if codings.count(b"chunked") > 1:
        raise protocol_error(
            "Transfer-Encoding applies chunked more than once (RFC 9112 §7)", response=response
        )


def _content_length(values: list[bytes], *, response: bool) -> int:
    """The one length that every Content-Length value agrees on (RFC 9112 §6.3 item 5)."""
    length = -1
    for value in values:
        items = value.split(b",")
        if len(items) > 1:
            # RFC 9110 §8.6: a list of identical values ("5, 5", or repeated lines) MAY be
            # accepted as that value. We accept it: servers do send duplicated lengths, browsers
            # accept them, and the length is the same whichever one a parser reads.
            items = [item.strip(b" \t") for item in items]
        for item in items:
            # RFC 9110 §8.6: Content-Length = 1*DIGIT. No sign, space, hex or empty value.
            # Nineteen digits hold every length up to 2**63 - 1 and keep int() cheap.
            if not item.isdigit() or len(item) > 19:
                raise protocol_error(
                    "Content-Length is not a plain decimal number (RFC 9110 §8.6)",
                    response=response,
                )
            number = int(item)
            if number > _MAX_LENGTH:
                raise protocol_error(
                    "Content-Length is larger than 2**63 - 1 (RFC 9110 §8.6)", response=response
                )
            if length != -1 and number != length:
                raise protocol_error(
                    "Content-Length values differ (RFC 9112 §6.3)", response=response
                )
            length = number
    return length


# ChunkedDecoder states
_SIZE = 0  # reading a chunk-size line
_DATA = 1  # inside chunk data
_DATA_END = 2  # expecting the CRLF after chunk data
_TRAILER = 3  # reading the trailer section
_DONE = 4


class ChunkedDecoder:
    """Incremental strict decoder for a chunked body (RFC 9112 §7.1).

    ``feed`` takes the bytes as they arrive and returns the payload found in them. Partial
    size lines and trailer lines are kept across calls; chunk data is never buffered.
    """

    __slots__ = (
        "_crlf_seen",
        "_line",
        "_max_chunk_line",
        "_max_trailer_size",
        "_max_trailers",
        "_remaining",
        "_response",
        "_state",
        "_trailer_block",
        "_trailer_lines",
        "done",
        "trailers",
    )

    def __init__(
        self,
        *,
        response: bool = False,
        max_chunk_line: int = 4096,
        max_trailer_size: int = 64 * 1024,
        max_trailers: int = 100,
    ) -> None:
        self._response = response
        self._max_chunk_line = max_chunk_line
        self._max_trailer_size = max_trailer_size
        self._max_trailers = max_trailers
        self._state = _SIZE
        self._remaining = 0
        self._crlf_seen = 0
        self._line = bytearray()
        self._trailer_block = bytearray()
        self._trailer_lines = 0
        self.done = False
        self.trailers: Fields = []

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """Decode as much of ``data`` as possible.

        Returns the payload pieces (in order) and the number of bytes of ``data`` consumed.
        Fewer than ``len(data)`` are consumed only once ``done`` is True: the rest belongs to
        the next message. Raises ProtocolError (502 when ``response=True``).
        """
        pieces: list[bytes] = []
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                remaining = self._remaining
                if end - pos <= remaining:
                    # All the rest is payload: hand it on, without a copy when that is all of it.
                    pieces.append(data if pos == 0 else data[pos:])
                    self._remaining = remaining - (end - pos)
                    if not self._remaining:
                        self._state = _DATA_END
                    return pieces, end
                pieces.append(data[pos : pos + remaining])
                pos += remaining
                self._remaining = 0
                self._state = _DATA_END
            elif state == _DATA_END:
                # RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF. Exactly
                # CRLF, nothing else: accepting any two bytes here was h11's CVE-2025-43859.
                if data[pos] != (0x0A if self._crlf_seen else 0x0D):
                    raise protocol_error(
                        "chunk data is not followed by CRLF (RFC 9112 §7.1)",
                        response=self._response,
                    )
                pos += 1
                if self._crlf_seen:
                    self._crlf_seen = 0
                    self._state = _SIZE
                else:
                    self._crlf_seen = 1
            elif state == _SIZE:
                line, pos = self._take_line(data, pos, self._max_chunk_line, trailer=False)
                if line is None:
                    break
                size = self._chunk_size(line)
                if size:
                    self._remaining = size
                    self._state = _DATA
                else:
                    self._state = _TRAILER  # RFC 9112 §7.1: last-chunk = 1*("0") [ chunk-ext ] CRLF
            elif state == _TRAILER:
                budget = self._max_trailer_size - len(self._trailer_block)
                line, pos = self._take_line(data, pos, budget, trailer=True)
                if line is None:
                    break
                if self._trailer_line(line):
                    return pieces, pos
            else:
                break
        return pieces, pos

    def _take_line(
        self, data: bytes, pos: int, limit: int, *, trailer: bool
    ) -> tuple[bytes | None, int]:
        """The next whole line (with its LF) if it is in ``data``; else keep what there is."""
        room = limit - len(self._line)
        newline = data.find(b"\n", pos, pos + room)
        if newline == -1:
            if len(data) - pos >= room:
                if trailer:
                    # RFC 9110 §5.4: a trailer section is bounded as a head is (431 or 502).
                    raise too_large(
                        f"trailer section longer than {self._max_trailer_size} bytes",
                        response=self._response,
                    )
                raise protocol_error(
                    f"chunk-size line (with its extensions) longer than {limit} bytes "
                    "(RFC 9112 §7.1.1)",
                    response=self._response,
                )
            self._line += data[pos:]
            return None, len(data)
        line = data[pos : newline + 1]
        if self._line:
            line = bytes(self._line) + line
            self._line.clear()
        return line, newline + 1

    def _chunk_size(self, line: bytes) -> int:
        # RFC 9112 §2.2, §7.1: chunk-size lines end with CRLF; no bare LF or CR.
        if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
            raise protocol_error(
                "chunk-size line does not end with CRLF (RFC 9112 §7.1)", response=self._response
            )
        size, semicolon, extensions = line[:-2].partition(b";")
        if semicolon:
            # RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS
            # chunk-ext-val ] ), so "5 ;name" is valid and the BWS goes. Extensions are
            # otherwise checked loosely (no control bytes, bounded line): they are dropped when
            # the body is chunked again, so their inner grammar cannot reach the next hop.
            size = size.rstrip(b" \t")
            if extensions.translate(None, _EXT_BYTES):
                raise protocol_error(
                    "control character in a chunk extension (RFC 9112 §7.1.1)",
                    response=self._response,
                )
        # RFC 9112 §7.1: chunk-size = 1*HEXDIG. No sign, space, "0x" or trailing junk (int()
        # would take all of those). Sixteen digits fit 64 bits; more is an overflow attempt.
        if not size or len(size) > 16 or size.translate(None, _HEXDIG):
            raise protocol_error(
                "chunk size is not 1 to 16 hex digits (RFC 9112 §7.1)", response=self._response
            )
        return int(size, 16)

    def _trailer_line(self, line: bytes) -> bool:
        """Take one trailer-section line; True once the section (and the body) has ended."""
        if not line.endswith(b"\r\n"):
            raise protocol_error(
                "trailer line does not end with CRLF (RFC 9112 §2.2)", response=self._response
            )
        if line != b"\r\n":
            self._trailer_lines += 1
            if self._trailer_lines > self._max_trailers:
                raise too_large(
                    f"more than {self._max_trailers} trailer fields (RFC 9110 §5.4)",
                    response=self._response,
                )
            self._trailer_block += line
            return False
        # RFC 9112 §7.1.2: trailer fields are field lines, checked as header fields are.
        self.trailers = parse_fields(
            bytes(self._trailer_block), response=self._response, max_fields=self._max_trailers
        )
        self._trailer_block.clear()
        self._state = _DONE
        self.done = True
        return True
