"""Where a request goes and what is sent for it, once the addons had their say (PURE).

The connection's coroutine asks two questions per request, after the hooks: which server
(`Route`: the tunnel's, or the one the request's URL names now, with what TLS), and which
bytes (`sent_request`: the head and framing the hooks left). Without request-side addons the
answer is the parsed head itself; with them, everything an addon may have set is checked
here, so nothing an addon does can make waylay write a malformed request line.
"""

from __future__ import annotations

from dataclasses import dataclass

from waylay.errors import UpstreamError
from waylay.flow import Request, TlsDetails
from waylay.http1.body import Framing
from waylay.http1.forwarding import authority, with_body_length
from waylay.http1.head import RequestHead, Target

_TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VCHAR = bytes(range(0x21, 0x7F)).replace(b"#", b"")


@dataclass(frozen=True, slots=True)
class InnerServer:
    """The one server the requests inside an intercepted CONNECT tunnel go to."""

    scheme: str  # "https", or "http" for plain HTTP inside the tunnel
    host: str  # the name flows show: the SNI, else the CONNECT host
    port: int
    connect_host: str  # what the CONNECT named: where connections go
    server_hostname: str | None = None  # the SNI sent and the name verified
    alpn: tuple[str, ...] = ()  # offered to the server
    # The server's TLS failed (untrusted, expired...): every request is answered with it.
    failure: UpstreamError | None = None
    # Transparent HTTP: each request's Host names its flow (connections go to connect_host).
    named_by_host: bool = False
    # The intercepted connection's TLS, each side: every flow inside shows them.
    client_tls: TlsDetails | None = None
    server_tls: TlsDetails | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Where one request goes, and how: the connection key, the address, TLS to the server."""

    key: tuple[str, int]  # idle connections are kept and found by it
    host: str
    port: int
    tls_name: str | None = None  # TLS to the server: the name its context is chosen by
    server_hostname: str | None = None  # the SNI sent and the name verified
    alpn: tuple[str, ...] = ()
    host_header: bytes = b""  # the Host sent (but see keep_host)
    # Inside a tunnel the client already names the server in Host: its words are kept.
    keep_host: bool = False


@dataclass(frozen=True, slots=True)
class SentRequest:
    """The request as it goes to the server, after the hooks."""

    head: RequestHead  # method, origin-form target, the client's version, fields to forward
    framing: Framing  # the body's framing as the exchange reads it
    streamed: bool  # the body is still to come from the client (not read whole)


def sent_request(
    request: Request, head: RequestHead, target: Target, framing: Framing, body: bytes | None
) -> SentRequest:
    """What to send for ``request`` (ValueError when an addon made it unsendable)."""
    if request.headers.fields is head.headers:
        # No request-side addon (they get a copy of the fields): the request is the head's,
        # checked by the parser already.
        return SentRequest(RequestHead(head.method, target.path, head.version, head.headers),
                            framing, True)  # fmt: skip
    method = request.method.encode("latin-1")
    if not method or method.translate(None, _TCHAR):
        raise ValueError(f"{request.method!r} is not a method (RFC 9110 §9.1 token)")
    try:
        path = request.path.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"the path {request.path!r} is not ASCII: percent-encode it") from None
    if not (path.startswith(b"/") or path == b"*") or path.translate(None, _VCHAR):
        raise ValueError(f"the path {request.path!r} is not an origin-form target (RFC 9112 §3.2)")
    fields = request.headers.fields
    if body is not None:
        # Read whole: it goes with its own length (what the hooks made of it). An Expect was
        # answered by waylay already.
        if body or framing.kind != "none":
            fields = [f for f in with_body_length(fields, len(body)) if f[0].lower() != b"expect"]
            framing = Framing("length", len(body))
    elif callable(request.stream) and framing.kind != "none":
        fields = with_body_length(fields, None)  # transformed as it streams: chunked anew
    return SentRequest(RequestHead(method, path, head.version, fields), framing, body is None)


def route_for(
    request: Request, target: Target, inner: InnerServer | None, *, alpn: tuple[str, ...]
) -> Route:
    """Where the request goes: the tunnel's server, or — explicit absolute-form, or a
    request an addon sent elsewhere — the server its URL names (offered ``alpn``)."""
    default = 443 if request.scheme == "https" else 80
    host_header = authority(request.host, request.port, default)
    if inner is not None and (request.scheme, request.host, request.port) == (
        target.scheme,
        target.host,
        target.port,
    ):
        tls = inner.scheme == "https"
        return Route(
            key=(inner.connect_host, inner.port),
            host=inner.connect_host,
            port=inner.port,
            tls_name=inner.host if tls else None,
            server_hostname=inner.server_hostname,
            alpn=inner.alpn,
            host_header=host_header,
            keep_host=True,
        )
    if request.scheme == "https":
        # A TLS connection, never to be mistaken for a plain one to the same host:port.
        return Route(
            key=(f"https://{request.host}", request.port),
            host=request.host,
            port=request.port,
            tls_name=request.host,
            server_hostname=request.host,
            alpn=alpn,
            host_header=host_header,
        )
    return Route(
        key=(request.host, request.port),
        host=request.host,
        port=request.port,
        host_header=host_header,
    )
