"""HTTP/1 message heads and chunks as bytes for the wire (RFC 9112 §2-§7).

Theory of operation
-------------------
Everything waylay forwards is written by these functions, whatever the peer sent: CRLF line
ends, one ``name: value`` per line, chunks with lowercase hex sizes and no extensions. That is
what makes the lenient corners of the parser harmless: nothing it tolerated is passed on as is.

The functions do not re-validate names and values; they come from the strict parser or from
code and addons that are trusted to build fields. The one check kept is the cheap one that
stops a header injection: a head must contain exactly as many CR and LF as the lines it was
built from, so a value holding a CR or an LF raises ValueError instead of splitting the head.

Owns: heads, chunks, the last chunk with trailers. Does not own: deciding which fields to send
(``forwarding.py``) or writing to sockets.
"""

from __future__ import annotations

from collections.abc import Sequence

from waylay.http1.head import Fields


def request_head(
    method: bytes, target: bytes, headers: Fields, version: bytes = b"HTTP/1.1"
) -> bytes:
    """``method SP target SP version CRLF``, the field lines, and the empty line (RFC 9112 §3)."""
    parts = [method, b" ", target, b" ", version, b"\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return _checked(b"".join(parts), len(headers) + 2)


def response_head(version: bytes, status: int, reason: bytes, headers: Fields) -> bytes:
    """``version SP status SP reason CRLF``, the field lines, and the empty line (RFC 9112 §4)."""
    parts = [b"%s %d %s\r\n" % (version, status, reason)]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return _checked(b"".join(parts), len(headers) + 2)


def chunk(data: bytes) -> bytes:
    """One chunk holding ``data`` (RFC 9112 §7.1); b"" for empty data.

    An empty chunk would be ``0\\r\\n\\r\\n``, the last chunk: writing it by accident would end
    the body early, so empty data yields nothing.
    """
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


def last_chunk(trailers: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """``0 CRLF``, the trailer fields, and the final CRLF (RFC 9112 §7.1, §7.1.2)."""
    parts = [b"0\r\n"]
    for name, value in trailers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return _checked(b"".join(parts), len(trailers) + 2)


def _checked(head: bytes, lines: int) -> bytes:
    # RFC 9110 §5.5: field values never hold CR or LF; one there would start a new line, a new
    # field or a new message at the next hop (header injection, response splitting).
    if head.count(b"\n") != lines or head.count(b"\r") != lines:
        raise ValueError("CR or LF inside a start line, header name or value: refusing to send it")
    return head
