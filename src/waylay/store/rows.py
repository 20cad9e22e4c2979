"""A flow as the rows of the flow database, and back: pure conversions, no IO.

The writer thread inserts what `flow_row` and `head_rows` return; the readers (`waylay
flows`, HAR export, replay, the web UI) rebuild flows with `flow_from_row`. Text columns are
decoded from the wire's bytes as Latin-1 (header fields, reasons) or ASCII with replacement
(URLs, which waylay's parser already limited to visible ASCII). A head's fields are one JSON
text, ``[["Host","example.test"],...]``: compact (no spaces), non-ASCII characters as they
are rather than escaped, so SQLite stores them as UTF-8. A flow's TLS is one compact JSON
text too, ``{"client":{"version":"TLSv1.3",...},"server":null}``, NULL when neither side had
any; only a flow's detail reads it (``flow_from_row(..., tls=False)`` leaves it unparsed).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring
from typing import Any

from waylay.flow import Error, Flow, Request, Response, Timestamps, TlsDetails
from waylay.headers import Headers
from waylay.http1.head import Fields, header_value
from waylay.store.schema import (
    REQUEST_HEADERS,
    REQUEST_TRAILERS,
    RESPONSE_HEADERS,
    RESPONSE_TRAILERS,
)

FLOW_COLUMNS = (
    "id",
    "kind",
    "started",
    "ended",
    "client_host",
    "client_port",
    "server_host",
    "server_port",
    "method",
    "scheme",
    "host",
    "port",
    "path",
    "url",
    "http_version",
    "request_content_type",
    "request_size",
    "status",
    "reason",
    "response_http_version",
    "response_content_type",
    "response_size",
    "error",
    "error_code",
    "flags",
    "replay_of",
    "request_sent",
    "first_response_byte",
    "tls",
)
INSERT_FLOW = (
    f"INSERT INTO flows ({', '.join(FLOW_COLUMNS)}) VALUES ({', '.join('?' for _ in FLOW_COLUMNS)})"
)
INSERT_HEAD = "INSERT INTO heads (flow, part, fields) VALUES (?, ?, ?)"
INSERT_BODY = "INSERT INTO bodies (flow, part, seq, data) VALUES (?, ?, ?, ?)"
SELECT_FLOWS = f"SELECT {', '.join('f.' + c for c in FLOW_COLUMNS)} FROM flows AS f"


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def flow_row(flow: Flow, store_id: int) -> tuple[Any, ...]:
    """The `flows` row of ``flow``, in FLOW_COLUMNS order."""
    request, response, error = flow.request, flow.response, flow.error
    server = flow.server_address
    http = flow.kind == "http"
    return (
        store_id,
        flow.kind,
        flow.timestamps.start,
        flow.timestamps.end or None,
        flow.client_address[0],
        flow.client_address[1],
        server[0] if server else None,
        server[1] if server else None,
        request.method if http else None,
        request.scheme,
        request.host,
        request.port,
        request.path if http else None,
        request.url,
        request.http_version if http else None,
        _text(header_value(request.headers.fields, b"content-type")),
        flow.request_body_size,
        response.status_code if response else None,
        response.reason if response else None,
        response.http_version if response else None,
        _text(header_value(response.headers.fields, b"content-type")) if response else None,
        flow.response_body_size,
        error.reason if error else None,
        error.code if error else None,
        flow.capture_flags,
        flow.replay_of,
        flow.timestamps.request_sent or None,
        flow.timestamps.first_response_byte or None,
        tls_json(flow.client_tls, flow.server_tls),
    )


def tls_fields(details: TlsDetails | None) -> dict[str, Any] | None:
    """One side's TLS as JSON-ready fields (the store's `tls` and the web UI's DETAIL)."""
    if details is None:
        return None
    return {
        "version": details.version,
        "alpn": details.alpn,
        "sni": details.sni,
        "cert_names": list(details.cert_names),
        "issuer": details.issuer,
        "not_before": details.not_before,
        "not_after": details.not_after,
    }


@functools.lru_cache(maxsize=256)
def tls_json(client: TlsDetails | None, server: TlsDetails | None) -> str | None:
    """The `flows.tls` text of a flow's two sides; None when neither had TLS.

    Every flow of an intercepted connection has the same two sides (frozen, hashable): the
    text is made once per connection, not once per recorded flow on the proxy's loop.
    """
    if client is None and server is None:
        return None
    sides = {"client": tls_fields(client), "server": tls_fields(server)}
    return json.dumps(sides, ensure_ascii=False, separators=(",", ":"))


def _details(side: dict[str, Any] | None) -> TlsDetails | None:
    if side is None:
        return None
    return TlsDetails(
        version=side["version"],
        alpn=side["alpn"],
        sni=side["sni"],
        cert_names=tuple(side["cert_names"]),
        issuer=side["issuer"],
        not_before=side["not_before"],
        not_after=side["not_after"],
    )


def tls_from_json(text: str | None) -> tuple[TlsDetails | None, TlsDetails | None]:
    """The client and server sides from a `flows.tls` text (None: neither)."""
    if text is None:
        return None, None
    sides = json.loads(text)
    return _details(sides["client"]), _details(sides["server"])


def header_parts(flow: Flow) -> list[tuple[int, Fields]]:
    """``flow``'s heads and trailers by `heads.part`, as they are (bytes, no copy)."""
    request, response = flow.request, flow.response
    # (`is not None`, not truth: a Headers' length counts its distinct names.)
    parts: list[tuple[int, Fields]] = []
    if request.headers.fields:
        parts.append((REQUEST_HEADERS, request.headers.fields))
    if request.trailers is not None and request.trailers.fields:
        parts.append((REQUEST_TRAILERS, request.trailers.fields))
    if response is not None:
        if response.headers.fields:
            parts.append((RESPONSE_HEADERS, response.headers.fields))
        if response.trailers is not None and response.trailers.fields:
            parts.append((RESPONSE_TRAILERS, response.trailers.fields))
    return parts


def fields_json(fields: Fields) -> str:
    """The `heads.fields` text of one head: a JSON array of ``[name, value]`` pairs, in order."""
    # encode_basestring is json's own C quoting, without the cost of json.dumps walking lists:
    # this runs for every head the proxy records.
    return (
        "["
        + ",".join(
            [
                f"[{encode_basestring(name.decode('latin-1'))},"
                f"{encode_basestring(value.decode('latin-1'))}]"
                for name, value in fields
            ]
        )
        + "]"
    )


def fields_from_json(text: str) -> list[tuple[str, str]]:
    """A head's fields from its `heads.fields` text, as (name, value) strings."""
    return [(name, value) for name, value in json.loads(text)]


def encoded_head_rows(
    store_id: int, parts: list[tuple[int, Fields]]
) -> Iterator[tuple[int, int, str]]:
    """The `heads` rows of ``header_parts``, encoded one at a time (for executemany)."""
    for part, fields in parts:
        yield (store_id, part, fields_json(fields))


def head_rows(flow: Flow, store_id: int) -> list[tuple[int, int, str]]:
    """The `heads` rows of ``flow``: its heads and trailers, one row each."""
    return list(encoded_head_rows(store_id, header_parts(flow)))


def _encode(fields: Sequence[tuple[str, str]]) -> Headers:
    return Headers.wrap(
        [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fields]
    )


def flow_from_row(
    row: Sequence[Any],
    headers: dict[int, list[tuple[str, str]]] | None = None,
    *,
    tls: bool = True,
) -> Flow:
    """A Flow from a `flows` row (FLOW_COLUMNS order) and its heads' fields by part.

    ``tls=False`` leaves the flow's TLS sides None without parsing their JSON: for listings.
    """
    values = dict(zip(FLOW_COLUMNS, row, strict=True))
    headers = headers or {}
    request = Request(
        method=values["method"] or "",
        scheme=values["scheme"] or "",
        host=values["host"] or "",
        port=values["port"] or 0,
        path=values["path"] or "",
        http_version=values["http_version"] or "",
        headers=_encode(headers.get(REQUEST_HEADERS, [])),
        trailers=_encode(headers[REQUEST_TRAILERS]) if REQUEST_TRAILERS in headers else None,
    )
    response = None
    if values["status"] is not None:
        response = Response(
            status_code=values["status"],
            reason=values["reason"] or "",
            http_version=values["response_http_version"] or "",
            headers=_encode(headers.get(RESPONSE_HEADERS, [])),
            trailers=(
                _encode(headers[RESPONSE_TRAILERS]) if RESPONSE_TRAILERS in headers else None
            ),
        )
    server = values["server_host"]
    flow = Flow(
        client_address=(values["client_host"], values["client_port"]),
        request=request,
        server_address=(server, values["server_port"]) if server is not None else None,
        response=response,
        error=(
            Error(values["error"], values["error_code"] or "")
            if values["error"] is not None
            else None
        ),
        timestamps=Timestamps(
            start=values["started"],
            request_sent=values["request_sent"] or 0.0,
            first_response_byte=values["first_response_byte"] or 0.0,
            end=values["ended"] or 0.0,
        ),
        request_body_size=values["request_size"],
        response_body_size=values["response_size"],
        store_id=values["id"],
        capture_flags=values["flags"],
        replay_of=values["replay_of"],
        kind=values["kind"],
    )
    if tls:
        flow.client_tls, flow.server_tls = tls_from_json(values["tls"])
    return flow
