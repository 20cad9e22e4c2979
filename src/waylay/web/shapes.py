"""The JSON the web UI's API answers with: SUMMARY and DETAIL of docs/web.md, from a Flow.

Pure: a stored flow (rebuilt by `store.rows.flow_from_row`) and a live one (paused in the
proxy) go through the same two functions, so the list, the detail pane and the intercept view
read the same fields the same way. Header fields are the wire's bytes decoded as Latin-1, as
the store keeps them. A timestamp that is not known (a flow recorded before schema version 3
has only its start and end) is null, not 0. Each side's TLS has the store's fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waylay.flow import Flow, Request, Response
from waylay.store.rows import tls_fields
from waylay.store.schema import (
    REQUEST_BODY,
    REQUEST_DROPPED,
    REQUEST_TRUNCATED,
    RESPONSE_BODY,
    RESPONSE_DROPPED,
    RESPONSE_TRUNCATED,
)


def _when(timestamp: float) -> float | None:
    return timestamp or None


def summary(flow: Flow) -> dict[str, Any]:
    """SUMMARY: what a row of the flow list shows."""
    request, response, error = flow.request, flow.response, flow.error
    content_type = (response or request).headers.get("content-type")
    return {
        "id": flow.store_id,
        "kind": flow.kind,
        "started": flow.timestamps.start,
        "duration": round(flow.duration, 6),
        "method": request.method,
        "url": request.url,
        "scheme": request.scheme,
        "host": request.host,
        "port": request.port,
        "path": request.path,
        "status": response.status_code if response else None,
        "reason": response.reason if response else None,
        "content_type": content_type,
        "request_size": flow.request_body_size,
        "response_size": flow.response_body_size,
        "error": {"reason": error.reason, "code": error.code} if error else None,
    }


def _message(message: Request | Response, size: int, truncated: bool) -> dict[str, Any]:
    trailers = message.trailers
    return {
        "headers": [[name, value] for name, value in message.headers.items_multi()],
        "trailers": (
            None if trailers is None else [[name, value] for name, value in trailers.items_multi()]
        ),
        "size": size,
        "truncated": truncated,
    }


def detail(
    flow: Flow, *, stored: Mapping[int, int] | None = None, live: bool = False
) -> dict[str, Any]:
    """DETAIL: SUMMARY and everything about the flow but its bodies.

    ``stored``: the body bytes the store kept, by part (`REQUEST_BODY`, `RESPONSE_BODY`),
    when known; a body that went by with nothing kept (--body-limit 0) is truncated too.
    ``live``: a flow paused in the proxy, not (yet) the store's: its id is null.
    """
    flags = flow.capture_flags

    def truncated(part: int, size: int, flagged: int) -> bool:
        if flags & flagged:
            return True
        return stored is not None and size > 0 and not stored.get(part)

    request, response, stamps = flow.request, flow.response, flow.timestamps
    shown = summary(flow)
    if live:
        shown["id"] = None
    shown_response = None
    if response is not None:
        size = flow.response_body_size
        cut = truncated(RESPONSE_BODY, size, RESPONSE_TRUNCATED | RESPONSE_DROPPED)
        shown_response = _message(response, size, cut) | {
            "status": response.status_code,
            "reason": response.reason,
            "http_version": response.http_version,
        }
    size = flow.request_body_size
    cut = truncated(REQUEST_BODY, size, REQUEST_TRUNCATED | REQUEST_DROPPED)
    return shown | {
        "client": list(flow.client_address),
        "server": list(flow.server_address) if flow.server_address else None,
        "http_version": request.http_version,
        "timestamps": {
            "start": _when(stamps.start),
            "request_sent": _when(stamps.request_sent),
            "first_response_byte": _when(stamps.first_response_byte),
            "end": _when(stamps.end),
        },
        "tls": {"client": tls_fields(flow.client_tls), "server": tls_fields(flow.server_tls)},
        "request": _message(request, size, cut),
        "response": shown_response,
    }
