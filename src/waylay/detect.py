"""What a client speaks, told from its first bytes: TLS, HTTP/1, or something else.

Pure: bytes in, a verdict out. The verdict is decided by content, never by port, so HTTPS
on port 80 or HTTP on 443 is recognised as what it is. ``None`` means "not enough bytes
yet"; the caller decides how long to wait (a server-speaks-first protocol sends nothing,
and its connection is relayed once the wait is over).
"""

from __future__ import annotations

import re
from typing import Literal

from waylay.tls.clienthello import looks_like_tls

Verdict = Literal["tls", "http", "other"]

# RFC 9112 §3: request-line = method SP request-target SP HTTP-version CRLF, with the method
# a token (RFC 9110 §5.6.2). The target is checked later by the HTTP parser; here it only has
# to be visible ASCII.
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(_TOKEN + rb" [\x21-\x7e]+ HTTP/1\.[01]\r?\n")
_METHOD = re.compile(_TOKEN)
_TARGET = re.compile(rb"[\x21-\x7e]*")

# A request line longer than this is not worth waiting for (the head limit applies after).
MAX_REQUEST_LINE = 8 * 1024


def classify(data: bytes | bytearray) -> Verdict | None:
    """TLS, HTTP/1, other — or None while ``data`` is a prefix of more than one of them."""
    if not data:
        return None
    tls = looks_like_tls(bytes(data[:3]))
    if tls:
        return "tls"
    if tls is None:
        return None
    line_end = data.find(b"\n", 0, MAX_REQUEST_LINE + 1)
    if line_end >= 0:
        return "http" if _REQUEST_LINE.fullmatch(data, 0, line_end + 1) else "other"
    if len(data) > MAX_REQUEST_LINE:
        return "other"
    return None if _could_become_request_line(bytes(data)) else "other"


def _could_become_request_line(data: bytes) -> bool:
    method, space, rest = data.partition(b" ")
    if not _METHOD.fullmatch(method):
        return False
    if not space:
        return True
    target, space, version = rest.partition(b" ")
    if not space:
        return _TARGET.fullmatch(target) is not None
    return bool(target) and any(v.startswith(version) for v in (b"HTTP/1.1\r", b"HTTP/1.0\r"))
