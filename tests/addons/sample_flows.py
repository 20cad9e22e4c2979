"""Flows built in a test, as the data path hands them to addons: heads, and bodies when whole."""

from __future__ import annotations

from collections.abc import Iterable

from waylay.flow import Flow, Request, Response
from waylay.headers import Headers

Fields = Iterable[tuple[str, str]]


def request_flow(
    url: str = "http://origin.example.test/a/b?c=1",
    *,
    method: str = "GET",
    headers: Fields = (),
    body: bytes | None = None,
    http_version: str = "HTTP/1.1",
) -> Flow:
    """A flow whose request head (and ``body``, if given) arrived; no response yet."""
    request = Request(method, "http", "", 0, "/", http_version, Headers())
    if method == "CONNECT":
        host, _, port = url.rpartition(":")
        request.host, request.port, request.path = host, int(port), ""
    else:
        request.url = url
    fields = list(headers)
    if not any(name.lower() == "host" for name, _ in fields) and method != "CONNECT":
        fields.insert(0, ("Host", url.split("://", 1)[1].split("/", 1)[0]))
    request.headers = Headers(fields)
    request.raw_content = body
    return Flow(("127.0.0.1", 50000), request)


def respond(
    flow: Flow, status: int = 200, *, headers: Fields = (), body: bytes | None = None
) -> Flow:
    """``flow`` with a response head (and ``body``, if given) from the server."""
    flow.response = Response(status, "OK", "HTTP/1.1", Headers(list(headers)), raw_content=body)
    return flow
