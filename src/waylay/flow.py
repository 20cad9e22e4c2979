"""The flow model: one request, its response or error, and where and when they happened.

These are the classes addons see (exported as ``from waylay import Flow, Request, Response``),
and they read as mitmproxy's do: text for the method, path and reason, a case-insensitive
`Headers` multi-dict over the wire's own field lines, `content` decoded from its
Content-Encoding and `raw_content` as it was on the wire (framing undone). What an addon
changes in a hook is what goes on: waylay sends the request and the response from these
objects.

Bodies stream by default: `raw_content` is None unless something asked for the whole body —
an addon with a `request` or `response` hook, or a live filter that reads bodies (hooks.py);
the sizes count the body bytes that went through either way.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from waylay.encoding import decode, encode
from waylay.headers import Headers
from waylay.tls.clienthello import ClientHello

_flow_ids = itertools.count(1)

# A chunk transformer for a streamed body: each piece as it passes, to what is sent instead.
StreamTransform = Callable[[bytes], bytes]
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([\w.:-]+)", re.IGNORECASE)


class _Message:
    """What requests and responses share: their bodies, read and set as addons do."""

    __slots__ = ()
    headers: Headers
    raw_content: bytes | None

    @property
    def content(self) -> bytes | None:
        """The body with its Content-Encoding (gzip, deflate, br, zstd) undone; None while
        the body streams. ValueError when it cannot be decoded. Setting it encodes the new
        body the same way and sets Content-Length to match."""
        if self.raw_content is None:
            return None
        return decode(self.raw_content, self.headers.get("content-encoding"))

    @content.setter
    def content(self, value: bytes | None) -> None:
        # The subclasses' slots hold raw_content (mypy cannot see them from here).
        raw = None if value is None else encode(value, self.headers.get("content-encoding"))
        self.raw_content = raw  # type: ignore[misc]
        if raw is not None and "content-length" in self.headers:
            self.headers["content-length"] = str(len(raw))

    def get_content(self, *, strict: bool = True) -> bytes | None:
        """``content``; with ``strict=False``, the raw bytes when they cannot be decoded."""
        try:
            return self.content
        except ValueError:
            if strict:
                raise
            return self.raw_content

    @property
    def charset(self) -> str:
        """The Content-Type's charset, else UTF-8."""
        match = _CHARSET.search(self.headers.get("content-type", ""))
        return match.group(1) if match else "utf-8"

    @property
    def text(self) -> str | None:
        """The decoded body as text, in its charset (undecodable bytes replaced)."""
        content = self.content
        if content is None:
            return None
        try:
            return content.decode(self.charset, "replace")
        except LookupError:  # a charset Python does not know
            return content.decode("utf-8", "replace")

    @text.setter
    def text(self, value: str) -> None:
        try:
            self.content = value.encode(self.charset)
        except (LookupError, UnicodeEncodeError):
            self.content = value.encode("utf-8")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON (ValueError when it is not)."""
        content = self.content
        if content is None:
            raise ValueError("the body streamed: no content to parse (see docs/addons.md)")
        return json.loads(content, **kwargs)


@dataclass(slots=True)
class Request(_Message):
    """An HTTP request as waylay forwards it: change it in a hook and the server gets that."""

    # The method, as sent: "GET", "POST"; "CONNECT" for a tunnel; "" for a TCP flow.
    method: str
    # "http" or "https" (how waylay talks to the server), "tcp" for a TCP flow.
    scheme: str
    # The server the request goes to: a name or an address (IPv6 without brackets).
    host: str
    port: int
    # The origin-form target: the path and the query ("/search?q=1"), "*" for OPTIONS *.
    path: str
    # "HTTP/1.1" or "HTTP/1.0", as the client spoke (waylay speaks HTTP/1.1 to servers).
    http_version: str
    headers: Headers
    # The body as on the wire, framing undone, Content-Encoding still applied; None while it
    # streams (no request hook read it).
    raw_content: bytes | None = None
    # A chunked body's trailer fields, once it is complete.
    trailers: Headers | None = None
    # Set in a requestheaders hook: True streams the body even though a request hook would
    # see it whole; a function transforms each piece as it streams.
    stream: bool | StreamTransform = False

    @property
    def url(self) -> str:
        """The URL as a user would type it (for CONNECT, the `host:port` it names).

        Setting it changes the scheme, host, port and path: the request goes there instead.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.method == "CONNECT":
            return f"{host}:{self.port}"
        if self.scheme == "tcp":
            return f"tcp://{host}:{self.port}"
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        path = "" if self.path == "*" else self.path  # OPTIONS *
        return f"{self.scheme}://{host}{port}{path}"

    @url.setter
    def url(self, value: str) -> None:
        from waylay.errors import ProtocolError
        from waylay.http1.head import parse_target

        try:
            target = parse_target(b"GET", value.encode("utf-8"))
        except ProtocolError as exc:
            raise ValueError(f"{value!r}: {exc.reason}") from None
        if target.form != "absolute":
            raise ValueError(f"{value!r} is not an absolute http:// or https:// URL")
        self.scheme, self.host, self.port = target.scheme, target.host, target.port
        self.path = target.path.decode("ascii")

    @property
    def pretty_host(self) -> str:
        """The host the client asked for: its Host header, else the host it connected to."""
        from waylay.errors import ProtocolError
        from waylay.http1.head import parse_host

        value = self.headers.get("host")
        if value:
            try:
                return parse_host(value.encode("latin-1"), 80)[0]
            except ProtocolError:
                pass
        return self.host

    @property
    def query(self) -> list[tuple[str, str]]:
        """The query string's name/value pairs, decoded, in order."""
        from urllib.parse import parse_qsl

        _, _, query = self.path.partition("?")
        return parse_qsl(query, keep_blank_values=True)


@dataclass(slots=True)
class Response(_Message):
    """An HTTP response as waylay sends it to the client: change it in a response hook."""

    status_code: int
    # The reason phrase: "OK", "Not Found" (what the server sent, which may be anything).
    reason: str
    # "HTTP/1.1" or "HTTP/1.0", as the server spoke.
    http_version: str
    headers: Headers
    # The body as on the wire, framing undone, Content-Encoding still applied; None while it
    # streams (no response hook read it, or it was over --stream-large-bodies).
    raw_content: bytes | None = None
    # A chunked body's trailer fields, once it is complete.
    trailers: Headers | None = None
    # Set in a responseheaders hook: as Request.stream.
    stream: bool | StreamTransform = False

    @classmethod
    def make(
        cls,
        status_code: int = 200,
        content: bytes | str = b"",
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]] = (),
    ) -> Response:
        """A response an addon answers with: set it as ``flow.response`` in a requestheaders,
        request or http_connect hook and the server is never contacted. Text content is sent
        as UTF-8; the Content-Length is waylay's to set."""
        body = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        try:
            reason = HTTPStatus(status_code).phrase
        except ValueError:
            reason = ""
        response = cls(status_code, reason, "HTTP/1.1", Headers(headers), raw_content=body)
        return response


@dataclass(slots=True)
class Error:
    """Why a flow did not complete."""

    # One line a person can act on.
    reason: str
    # A short code, the `X-Waylay-Error` header's: "connection-refused", "killed".
    code: str


@dataclass(slots=True)
class Timestamps:
    """Seconds since the epoch; 0.0 until the event happened."""

    # The request head was read.
    start: float = 0.0
    # The request's last byte went to the server.
    request_sent: float = 0.0
    # The server's first response byte arrived.
    first_response_byte: float = 0.0
    # The flow ended: the response's last byte went to the client, or it failed.
    end: float = 0.0


@dataclass(slots=True)
class TcpMessage:
    """What one side of a TCP flow sent at once (the tcp_message hook may change content)."""

    # True for the client's bytes, False for the server's.
    from_client: bool
    # The bytes; what the hooks leave here is sent on instead (b"": nothing).
    content: bytes
    # When they arrived, in seconds since the epoch.
    timestamp: float


@dataclass(frozen=True, slots=True)
class TlsDetails:
    """One side's TLS on an intercepted connection: what was agreed, and the certificate."""

    # The protocol version agreed: "TLSv1.3", "TLSv1.2".
    version: str | None
    # The application protocol agreed by ALPN ("http/1.1"), or None.
    alpn: str | None
    # The server name: what the client asked for (client side), what waylay sent (server).
    sni: str | None = None
    # The names of the certificate this side was shown: the forged one's (client side), the
    # server's own CN and SANs (server side).
    cert_names: tuple[str, ...] = ()
    # Server side: the server certificate's issuer (RFC 4514) and validity (seconds since
    # the epoch).
    issuer: str | None = None
    not_before: float | None = None
    not_after: float | None = None


@dataclass(slots=True)
class ClientHelloData:
    """What the tls_clienthello hook sees of a TLS connection about to be intercepted."""

    client_hello: ClientHello
    client_address: tuple[str, int]
    # Where the connection goes: the CONNECT target, or the original destination.
    server_address: tuple[str, int]
    # Set True to relay the connection untouched instead (the real server's certificate).
    ignore_connection: bool = False


KILLED = Error("killed by an addon", "killed")


@dataclass(slots=True)
class Flow:
    """One HTTP exchange through waylay — or, with ``kind`` "tcp", one raw TCP connection.

    A TCP flow's request names only its server (scheme "tcp", no method, path or headers);
    its body sizes count the bytes each way, and its captured bodies hold the first bytes.
    """

    # Who sent the request: (address, port).
    client_address: tuple[str, int]
    request: Request
    # The server's (address, port) once connected.
    server_address: tuple[str, int] | None = None
    # None until the response head arrived (or an addon answered).
    response: Response | None = None
    # Why the flow failed, if it did (then the client was told, or its connection reset).
    error: Error | None = None
    timestamps: Timestamps = field(default_factory=Timestamps)
    # Body bytes that went through each way (payload, without chunk framing).
    request_body_size: int = 0
    response_body_size: int = 0
    # This process's number for the flow (the store's is store_id).
    id: int = field(default_factory=lambda: next(_flow_ids))
    # Set by waylay: the flow's id in the flow store, once it has one.
    store_id: int | None = None
    # Set by waylay: what of the bodies the store did not keep (store/schema.py).
    capture_flags: int = 0
    # The stored flow this one replays (waylay replay), if any.
    replay_of: int | None = None
    # "http", or "tcp" for a raw TCP connection (transparent mode).
    kind: str = "http"
    # Set in requestheaders: neither body is buffered for request/response hooks.
    stream: bool = False
    # An addon's own notes on the flow (mitmproxy's flow.metadata): waylay never reads it.
    metadata: dict[str, Any] = field(default_factory=dict)
    # An intercepted connection's TLS, each side (None for plain HTTP and TCP).
    client_tls: TlsDetails | None = None
    server_tls: TlsDetails | None = None
    # A TCP flow's last message, for tcp_message hooks (only the last: memory stays flat).
    messages: list[TcpMessage] | None = None
    # Paused by intercept(); who waits for resume() (the connection) is told through
    # _on_resume.
    _intercepted: bool = False
    _on_resume: Callable[[], None] | None = None

    @property
    def duration(self) -> float:
        """Seconds from the request's start to the flow's end (0.0 while it is open)."""
        if not self.timestamps.end:
            return 0.0
        return self.timestamps.end - self.timestamps.start

    # -- what addons do to a flow ---------------------------------------------------------

    @property
    def killed(self) -> bool:
        """flow.kill() was called (the flow's error says "killed")."""
        return self.error is not None and self.error.code == KILLED.code

    def kill(self) -> None:
        """Drop the flow: nothing more is sent for it, and its client's connection closes."""
        self.error = KILLED
        self.resume()

    @property
    def intercepted(self) -> bool:
        """The flow is paused by intercept() and waits for resume()."""
        return self._intercepted

    def intercept(self) -> None:
        """Pause the flow once the hooks of this moment have run, until resume() (other
        flows go on). resume() must be called on waylay's event loop (from another thread:
        loop.call_soon_threadsafe(flow.resume))."""
        self._intercepted = True

    def resume(self) -> None:
        """Let an intercepted flow go on, with whatever was changed meanwhile."""
        self._intercepted = False
        wake, self._on_resume = self._on_resume, None
        if wake is not None:
            wake()


@dataclass(slots=True)
class Client:
    """A client connection, as the client_connected and client_disconnected hooks see it."""

    # The client's (address, port).
    address: tuple[str, int]
    # Seconds since the epoch; disconnected_at is 0.0 while it is connected.
    connected_at: float
    disconnected_at: float = 0.0
