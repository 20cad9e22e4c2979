"""What every test checks the same way: requests written for a proxy, and waylay's error pages.

An error waylay generates is an HTTP response with a one-line reason in the body and an
``X-Waylay-Error`` header naming the reason (INTERFACE.md, "Errors a client sees").
"""

from __future__ import annotations

from .origin import ORIGIN_HOST, Origin
from .wire import Response, request_bytes


def proxy_request(
    origin: Origin,
    method: str,
    path: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    host: str = ORIGIN_HOST,
    version: str = "HTTP/1.1",
) -> bytes:
    """An absolute-form request for ``origin`` (RFC 9112 §3.2.2), Host first, then ``headers``.

    A Content-Length is added for a body unless ``headers`` already frame it.
    """
    all_headers = [("Host", f"{host}:{origin.port}"), *(headers or [])]
    framed = any(name.lower() in ("content-length", "transfer-encoding") for name, _ in all_headers)
    if body and not framed:
        all_headers.append(("Content-Length", str(len(body))))
    return request_bytes(method, origin.url(path, host), all_headers, body, version)


def assert_waylay_error(response: Response, status: int, reason_contains: bytes = b"") -> bytes:
    """``response`` is waylay's own error page with ``status``; return its one-line reason."""
    shown = response.head + response.body
    assert response.status == status, shown
    code = response.header("X-Waylay-Error")
    assert code, f"no X-Waylay-Error header: {shown!r}"
    reason = response.body.strip()
    assert reason, f"empty reason: {shown!r}"
    assert b"\n" not in reason, f"reason is more than one line: {shown!r}"
    assert reason_contains.lower() in reason.lower(), shown
    return reason
