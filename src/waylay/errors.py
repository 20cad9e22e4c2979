"""The typed errors of waylay and the one place they become an HTTP error page.

Every error carries a one-line reason a user can act on, an HTTP status, and a short
reason code that goes into the ``X-Waylay-Error`` header, so scripts can tell a refused
upstream from a malformed request without parsing prose.
"""

from __future__ import annotations


class WaylayError(Exception):
    """Base of waylay's own errors: a reason, a status to answer with, and a code."""

    status = 500
    code = "internal-error"

    def __init__(self, reason: str, *, status: int | None = None, code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class ProtocolError(WaylayError):
    """A peer sent bytes that are not valid HTTP/1 (RFC 9112); the connection must close."""

    status = 400
    code = "bad-request"


class HeadTooLarge(ProtocolError):
    """A message head over the size limit or with too many header lines (RFC 6585 §5)."""

    status = 431
    code = "head-too-large"


class UpstreamError(WaylayError):
    """The server could not be reached or broke off: 502, or 504 for a timeout."""

    status = 502
    code = "upstream-error"


class ConfigError(WaylayError):
    """A flag, a file or a setting that cannot be used: the CLI exits with status 2."""

    status = 2
    code = "config-error"


_REASON_PHRASES = {
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    407: b"Proxy Authentication Required",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
}


class ProxyAuthRequired(WaylayError):
    """A request without valid proxy credentials (--proxyauth): 407 with a Basic challenge."""

    status = 407
    code = "proxy-auth-required"
    challenge = b'Basic realm="waylay", charset="UTF-8"'


def error_response(error: WaylayError, *, http_version: bytes = b"HTTP/1.1") -> bytes:
    """The complete response waylay sends for ``error``; the connection closes after it."""
    body = f"waylay: {error.reason}\n".encode("utf-8", "replace")
    phrase = _REASON_PHRASES.get(error.status, b"Error")
    return b"".join(
        (
            b"%s %d %s\r\n" % (http_version, error.status, phrase),
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Length: %d\r\n" % len(body),
            b"X-Waylay-Error: %s\r\n" % error.code.encode("ascii"),
            # RFC 9110 §11.7.1: a 407 carries the challenge the client must answer.
            b"Proxy-Authenticate: %s\r\n" % error.challenge
            if isinstance(error, ProxyAuthRequired)
            else b"",
            b"Connection: close\r\n\r\n",
            body,
        )
    )
