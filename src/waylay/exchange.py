"""One request and its response, on their way between a client and a server.

The connection's coroutine decides (parse, hooks, connect) and then hands the exchange to
this object, which runs on transport callbacks only: request body bytes from the client go
to the server, response heads and body bytes from the server go to the client, each side's
full write buffer pausing the other side's reading. When both messages are complete — or
something failed — ``done`` resolves with an `Outcome`, and the coroutine takes over again.

A failure before the response head reached the client becomes an error page; after it, the
only honest signal left is to abort the client connection.

When an addon reads whole responses (a `response` hook) the response body is collected
instead of relayed: ``response_buffered`` resolves once it is whole, the hooks run, and
`send_buffered` sends what they left — up to a limit, past which the body streams after all.
A body an addon transforms as it streams (``Response.stream`` set to a function) is
re-chunked, or sent close-delimited to an HTTP/1.0 client, since its length changes.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from waylay.errors import HeadTooLarge, ProtocolError, UpstreamError, WaylayError
from waylay.flow import Flow, Response
from waylay.headers import Headers
from waylay.http1.body import Framing, response_framing
from waylay.http1.forwarding import (
    client_keep_alive,
    forward_response_headers,
    forward_trailers,
    server_keep_alive,
    with_body_length,
)
from waylay.http1.head import (
    Fields,
    RequestHead,
    ResponseHead,
    find_head_end,
    header_value,
    parse_response_head,
)
from waylay.http1.reframe import Reframer
from waylay.http1.serialize import chunk, last_chunk, response_head

if TYPE_CHECKING:
    from collections.abc import Callable

    from waylay.backpressure import ReadGate
    from waylay.flow import StreamTransform
    from waylay.options import Limits
    from waylay.upstream import UpstreamConnection


log = logging.getLogger("waylay.exchange")

# RFC 9110 §9.2.2: the methods a proxy may send again on its own.
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


@dataclass(slots=True)
class Outcome:
    """How an exchange ended, and what may be reused after it."""

    kind: Literal["complete", "upgraded", "retry", "failed"]
    error: WaylayError | None = None
    keep_client: bool = False
    reuse_upstream: bool = False
    upstream_pending: bytes = b""


class BodyOut:
    """A streamed body's payload pieces on their way out: through an addon's transform, then
    chunked (when the length is not known in advance) or as they are (close-delimited)."""

    __slots__ = ("_chunked", "_transform")

    def __init__(self, transform: StreamTransform | None, *, chunked: bool) -> None:
        self._transform = transform
        self._chunked = chunked

    def __call__(self, pieces: list[bytes], done: bool, trailers: Fields | None) -> list[bytes]:
        transform = self._transform
        if transform is not None:
            pieces = [_transformed(transform, piece) for piece in pieces]
            if done:
                # As in mitmproxy: b"" at the end lets a function flush what it held back.
                pieces.append(_transformed(transform, b""))
        if not self._chunked:
            return [piece for piece in pieces if piece]
        out = [chunk(piece) for piece in pieces if piece]
        if done:
            out.append(last_chunk(forward_trailers(trailers or [])))
        return out


def _transformed(transform: StreamTransform, piece: bytes) -> bytes:
    try:
        out = transform(piece)
        if isinstance(out, bytes | bytearray | memoryview):
            return bytes(out)
        log.error("addon stream function %r returned %s, not bytes", transform, type(out))
    except Exception:
        log.exception("addon stream function %r failed", transform)
    return piece  # the flow goes on with the piece as it was


class Exchange:
    __slots__ = (
        "_awaiting_continue",
        "_awaiting_send",
        "_buffer_limit",
        "_capture_response",
        "_clean",
        "_client",
        "_client_gate",
        "_collected",
        "_collected_size",
        "_dechunk",
        "_limits",
        "_out",
        "_rbuf",
        "_replayable",
        "_request",
        "_request_out",
        "_server",
        "_server_ended",
        "_server_error",
        "_server_keeps",
        "_upstream",
        "client_http10",
        "done",
        "flow",
        "keep_client",
        "request_body",
        "request_complete",
        "response_body",
        "response_buffered",
        "response_framing",
        "response_head",
        "response_started",
        "sent_at",
        "upgrade",
    )

    def __init__(
        self,
        *,
        client: asyncio.Transport,
        client_gate: ReadGate,
        upstream: UpstreamConnection,
        flow: Flow,
        request: RequestHead,
        request_framing: Framing,
        upgrade: bool,
        hold_response_head: bool,
        watch_request: bool,
        client_full: bool,
        limits: Limits,
        # Where each body's payload is copied as it passes (the flow store's capture).
        capture: tuple[Callable[[bytes], None] | None, Callable[[bytes], None] | None] = (
            None,
            None,
        ),
        # A response hook reads whole responses: collect bodies up to this size (0: never).
        buffer_response: int = 0,
        # The request body streams through an addon's transform (re-chunked to the server).
        request_transform: StreamTransform | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if loop is None:
            loop = asyncio.get_running_loop()
        self._client = client
        self._client_gate = client_gate
        self._upstream = upstream
        self._request = request
        self._limits = limits
        self._rbuf = bytearray()
        self._dechunk = False
        self._server_keeps = False
        self._server_ended = False
        self._server_error: Exception | None = None
        self._replayable = request.method in _IDEMPOTENT and (
            request_framing.kind == "none"
            or (request_framing.kind == "length" and request_framing.length == 0)
        )
        self.flow = flow
        self.upgrade = upgrade
        self.client_http10 = request.version == b"HTTP/1.0"
        self.keep_client = client_keep_alive(request)
        self.done: asyncio.Future[Outcome] = loop.create_future()
        # When a responseheaders hook must see the head first, the head waits here.
        self.response_head: asyncio.Future[ResponseHead | None] | None = (
            loop.create_future() if hold_response_head else None
        )
        # When a request hook waits for the whole request, it is told here — or when the
        # server answers first, or the exchange ends, whichever comes first.
        self.request_complete: asyncio.Future[None] | None = (
            loop.create_future() if watch_request else None
        )
        assert upstream.transport is not None
        self._server = upstream.transport
        self._capture_response = capture[1]
        self._request_out: BodyOut | None = None
        if request_transform is not None and request_framing.kind != "none":
            self._request_out = BodyOut(request_transform, chunked=True)
        self.request_body = Reframer(
            request_framing,
            response=False,
            dechunk=self._request_out is not None,
            sink=capture[0],
        )
        self._buffer_limit = buffer_response
        # While a response body is collected for a response hook: its pieces so far.
        self._collected: list[bytes] | None = None
        self._collected_size = 0
        self._clean = True
        # A collected response is whole and waits for its hooks (then send_buffered).
        self._awaiting_send = False
        self._out: BodyOut | None = None
        # Resolves True once a collected response is whole (the hooks may run), False when
        # the response streams after all or the exchange ended first.
        self.response_buffered: asyncio.Future[bool] | None = (
            loop.create_future() if buffer_response else None
        )
        self.response_body: Reframer | None = None
        self.response_framing: Framing | None = None
        self.response_started = False
        # When waylay last sent the server something: the server's silence is timed from it.
        self.sent_at = 0.0
        # The client waits for `100 Continue` before its body (RFC 9110 §10.1.1), so the
        # server owes an answer before the body is complete.
        self._awaiting_continue = (
            request.version == b"HTTP/1.1"
            and (header_value(request.headers, b"expect") or b"").lower() == b"100-continue"
        )
        upstream.gate.resume("unclaimed")
        # Back-pressure that was on before this exchange stays on (see ReadGate).
        if client_full:
            upstream.gate.pause("client-full")
        if upstream.writing_paused:
            client_gate.pause("upstream-full")

    # -- the request side ---------------------------------------------------------------

    def start(self, head_bytes: bytes, pending: bytes) -> bytes:
        """Send the request head and whatever body is already here; return what follows."""
        self._upstream.exchange = self
        self.sent_at = time.monotonic()
        return self.client_data(pending, head=head_bytes)

    def client_data(self, data: bytes, head: bytes = b"") -> bytes:
        """Body bytes from the client (after ``head``, if given); returns what follows."""
        body = self.request_body
        try:
            out, rest = body.feed(data)
        except ProtocolError as exc:
            self.fail(exc)
            return b""
        if self._request_out is not None:
            out = self._request_out(out, body.done, body.trailers)
        if head:
            out.insert(0, head)
        if out:
            _write(self._server, out)
            self.sent_at = time.monotonic()
        self.flow.request_body_size = body.size
        if body.done:
            if body.trailers is not None:
                self.flow.request.trailers = Headers.wrap(body.trailers)
            self.flow.timestamps.request_sent = time.time()
            self._request_seen()
        return rest

    def _request_seen(self) -> None:
        waiter = self.request_complete
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def client_eof(self) -> None:
        if not self.request_body.done:
            self.fail(ProtocolError("the client closed before the request body was complete"))

    def client_lost(self) -> None:
        if not self.done.done():
            self._upstream.abort()
            self._finish(
                Outcome("failed", ProtocolError("the client disconnected", code="client-gone"))
            )

    def client_pause_writing(self) -> None:
        self._upstream.gate.pause("client-full")

    def client_resume_writing(self) -> None:
        self._upstream.gate.resume("client-full")

    # -- the response side (UpstreamEvents) ---------------------------------------------

    def upstream_data(self, data: bytes) -> None:
        if self.done.done():
            return
        if self._awaiting_send:
            self._clean = False  # bytes after the response: the connection is not reused
            return
        body = self.response_body
        if body is not None:
            self._feed_body(body, data)
            return
        if not self._rbuf and not self.flow.timestamps.first_response_byte:
            self.flow.timestamps.first_response_byte = time.time()
        self._rbuf += data
        if self.response_framing is None:
            self._read_response_heads()

    def _read_response_heads(self) -> None:
        buf = self._rbuf
        while True:
            try:
                end = find_head_end(buf, self._limits.max_head_size)
                if end < 0:
                    return
                head = parse_response_head(bytes(buf[:end]), max_headers=self._limits.max_headers)
            except HeadTooLarge as exc:
                self.fail(UpstreamError(f"the server sent {exc.reason}", code="bad-response"))
                return
            except ProtocolError as exc:
                self.fail(exc)
                return
            del buf[:end]
            status = head.status
            if status == 101:
                self._upgraded(head)
                return
            if status < 200:
                self._awaiting_continue = False
                # 1xx interim responses (100 Continue, 103 Early Hints) go to an HTTP/1.1
                # client as they come; HTTP/1.0 has none (RFC 9110 §15.2).
                if not self.client_http10:
                    headers = forward_response_headers(head.headers)
                    self._client.write(response_head(b"HTTP/1.1", status, head.reason, headers))
                continue
            self._final_head(head)
            return

    def _final_head(self, head: ResponseHead) -> None:
        try:
            framing = response_framing(head, self._request.method)
        except ProtocolError as exc:
            self.fail(exc)
            return
        self.response_framing = framing
        self._request_seen()
        self._server_keeps = server_keep_alive(head)
        self.flow.response = Response(
            status_code=head.status,
            reason=head.reason.decode("latin-1"),
            http_version=head.version.decode("latin-1"),
            headers=Headers.wrap(head.headers),
        )
        if self.response_head is not None:
            self._upstream.gate.pause("hook")
            self.response_head.set_result(head)
            return
        self.begin_response()

    def begin_response(self) -> None:
        """Start relaying the response body: to the client, or into a buffer for the hooks."""
        response = self.flow.response
        framing = self.response_framing
        assert response is not None and framing is not None
        if self.done.done():
            return
        stream = self.flow.stream or response.stream
        if self._buffer_limit and not stream:
            self._collect(framing)
            return
        self._resolve_buffered(False)
        transform = stream if callable(stream) else None
        self._start_streaming(framing, transform=transform)

    def _start_streaming(
        self,
        framing: Framing,
        *,
        transform: StreamTransform | None = None,
        collected: list[bytes] | None = None,
    ) -> None:
        """Send the response head to the client and relay the body from here on.

        ``collected``: the body's payload read so far for a response hook that gave up on
        it (over the limit) — sent first, and the body is then re-chunked (or, for HTTP/1.0,
        close-delimited) unless it had a Content-Length.
        """
        response = self.flow.response
        assert response is not None
        reframe = framing.kind != "none" and (
            transform is not None or (bool(collected) and framing.kind == "chunked")
        )
        self._dechunk = (framing.kind == "chunked" or reframe) and self.client_http10
        if reframe and not self.client_http10:
            self._out = BodyOut(transform, chunked=True)
        elif transform is not None:
            self._out = BodyOut(transform, chunked=False)
        # The client connection closes after a close-delimited or de-chunked body, and after
        # an answer that came before the whole request (RFC 9112 §9.6): the head says so.
        if framing.kind == "close" or self._dechunk or not self.request_body.done:
            self.keep_client = False
        fields = response.headers.fields
        if reframe:
            fields = with_body_length(fields, None)
        headers = forward_response_headers(
            # No Transfer-Encoding ever reaches an HTTP/1.0 client (RFC 9112 §6.1), also
            # on a response without a body (HEAD, 304).
            fields,
            close=not self.keep_client,
            dechunk=self._dechunk or self.client_http10,
        )
        head = response_head(
            b"HTTP/1.1", response.status_code, response.reason.encode("latin-1"), headers
        )
        body = self.response_body
        if body is None:
            body = Reframer(
                framing,
                response=True,
                dechunk=self._dechunk or self._out is not None,
                sink=self._capture_response,
            )
            self.response_body = body
        self.response_started = True
        self._upstream.gate.resume("hook")
        first = [head]
        if collected:
            # Up to --stream-large-bodies of them: each piece is let go once written, so the
            # body is never held twice (and never joined into one more copy).
            self._client.write(head)
            first = []
            collected.reverse()
            while collected:
                piece = collected.pop()
                for data in self._out([piece], False, None) if self._out else [piece]:
                    self._client.write(data)
        # The head and the first body bytes leave in one write.
        self._feed_pending(body, first)

    def _feed_body(self, body: Reframer, data: bytes, first: list[bytes] | None = None) -> None:
        """Body bytes from the server: sent on (after ``first``, the head, in one write) or
        collected for a hook; a framing error fails the exchange, the body's end completes it."""
        try:
            out, rest = body.feed(data)
        except ProtocolError as exc:
            if first:
                _write(self._client, first)
            self.fail(exc)
            return
        self._send_body(out, body, first)
        if body.done:
            self._response_complete(clean=not rest)

    def _feed_pending(self, body: Reframer, first: list[bytes] | None = None) -> None:
        """What came with the head, or while a hook held it; then, if the server has closed
        meanwhile, what that close means for the body."""
        pending = bytes(self._rbuf)
        self._rbuf.clear()
        self._feed_body(body, pending, first)
        if not body.done and not self.done.done() and self._server_ended:
            self._upstream_ended(self._server_error)

    def _send_body(
        self, out: list[bytes], body: Reframer, first: list[bytes] | None = None
    ) -> None:
        """Relay body pieces to the client — or keep them, while collecting for a hook."""
        collected = self._collected
        if collected is not None:
            collected += out
            self._collected_size += sum(map(len, out))
            self.flow.response_body_size = body.size
            if self._collected_size > self._buffer_limit and not body.done:
                self._give_up_collecting()
            return
        if self._out is not None:
            out = self._out(out, body.done, body.trailers)
        if first:
            out = first + out
        if out:
            _write(self._client, out)
        self.flow.response_body_size = body.size

    def _collect(self, framing: Framing) -> None:
        """Read the response body whole, for the response hooks, before any of it is sent."""
        # The payload without its framing; the store gets what is finally sent.
        body = Reframer(framing, response=True, dechunk=True)
        self.response_body = body
        self._collected = []
        self._upstream.gate.resume("hook")
        self._feed_pending(body)

    def _give_up_collecting(self) -> None:
        """Over --stream-large-bodies: stream the rest; the hooks will see no content."""
        collected = self._collected
        assert collected is not None and self.response_framing is not None
        self._collected = None
        log.info(
            "%s: the response body is over %d bytes (--stream-large-bodies): it streams, and "
            "response hooks see no content",
            self.flow.request.url,
            self._buffer_limit,
        )
        self._resolve_buffered(False)
        # What was collected was not captured: the store gets it now, then the rest as it
        # passes.
        capture = self._capture_response
        if capture is not None:
            for piece in collected:
                capture(piece)
        assert self.response_body is not None
        self.response_body.set_sink(capture)
        self._start_streaming(self.response_framing, collected=collected)

    def send_buffered(self) -> None:
        """Send the collected response as the hooks left it: its body whole, with its length."""
        if self.done.done():
            return
        response = self.flow.response
        framing = self.response_framing
        assert response is not None and framing is not None
        body = response.raw_content or b""
        # A HEAD response, a 204 or a 304 keeps the fields the server sent (its Content-Length
        # describes another body) unless a hook gave it a body.
        fields = response.headers.fields
        if framing.kind != "none" or body:
            fields = with_body_length(fields, len(body))
        if not self.request_body.done:
            self.keep_client = False
        headers = forward_response_headers(
            fields, close=not self.keep_client, dechunk=self.client_http10
        )
        head = response_head(
            b"HTTP/1.1", response.status_code, response.reason.encode("latin-1"), headers
        )
        if self._request.method == b"HEAD":
            body = b""
        self.response_started = True
        _write(self._client, [head, body] if body else [head])
        capture = self._capture_response
        if capture is not None and body:
            capture(body)
        self.flow.response_body_size = len(body)
        self._awaiting_send = False
        self._finish_response(self._clean)

    def _resolve_buffered(self, whole: bool) -> None:
        waiter = self.response_buffered
        if waiter is not None and not waiter.done():
            waiter.set_result(whole)

    def _upgraded(self, head: ResponseHead) -> None:
        if not self.upgrade:
            self.fail(
                ProtocolError(
                    "the server switched protocols without being asked to",
                    status=502,
                    code="upstream-protocol-error",
                )
            )
            return
        self.flow.response = Response(
            status_code=101,
            reason=head.reason.decode("latin-1"),
            http_version=head.version.decode("latin-1"),
            headers=Headers.wrap(head.headers),
        )
        headers = forward_response_headers(head.headers, upgrade=True)
        self._client.write(response_head(b"HTTP/1.1", 101, head.reason, headers))
        self.response_started = True
        pending = bytes(self._rbuf)
        self._rbuf.clear()
        self._finish(Outcome("upgraded", upstream_pending=pending))
        # What the server sends next belongs to the tunnel, which does not exist yet.
        self._upstream.gate.pause("unclaimed")

    def _response_complete(self, *, clean: bool) -> None:
        response = self.flow.response
        body = self.response_body
        if response is not None and body is not None and body.trailers is not None:
            response.trailers = Headers.wrap(body.trailers)
        collected = self._collected
        if collected is not None and response is not None:
            # Whole: the hooks run now (the coroutine calls send_buffered after them). The
            # server's connection rests meanwhile: anything more from it would be garbage.
            self._collected = None
            response.raw_content = b"".join(collected)
            self._clean = clean
            self._awaiting_send = True
            self._upstream.gate.pause("hook")
            self._resolve_buffered(True)
            return
        self._finish_response(clean)

    def _finish_response(self, clean: bool) -> None:
        request_done = self.request_body.done
        reuse = (
            clean
            and request_done
            and self.response_framing is not None
            and self.response_framing.kind != "close"
            and self._server_keeps
            and self._upstream.usable
        )
        # A response that ends before its request (an early 4xx) leaves the client mid-body:
        # neither connection is in a known state, so both close (RFC 9112 §9.6).
        self._finish(
            Outcome(
                "complete",
                keep_client=self.keep_client and request_done,
                reuse_upstream=reuse,
            )
        )

    def upstream_eof(self) -> None:
        self._upstream_ended(None)

    def upstream_lost(self, exc: Exception | None) -> None:
        self._upstream_ended(exc)

    def _upstream_ended(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if self._awaiting_send:
            self._clean = False  # the server closed: its connection cannot be reused
            return
        body = self.response_body
        if body is not None:
            # A close ends a read-until-close body (RFC 9112 §6.3); a reset never does: the
            # server broke off, and the client must be told the same way (see fail).
            if exc is None and body.end_of_stream():
                self.flow.response_body_size = body.size
                self._response_complete(clean=True)
            else:
                how = "a reset" if isinstance(exc, ConnectionResetError) else "a close"
                self.fail(
                    UpstreamError(
                        f"the server closed the connection mid-response ({how} after "
                        f"{body.size} bytes of the body)",
                        code="truncated-response",
                    )
                )
            return
        if self.response_framing is not None:
            # The head waits for a responseheaders hook: begin_response ends the body (or
            # the response hooks run on a collected one: send_buffered sends it).
            self._server_ended = True
            self._server_error = exc
            return
        if isinstance(exc, ssl.SSLError):
            # The server ended its TLS session with an alert after the handshake: TLS 1.3
            # servers refuse a missing or bad client certificate only then. Not a stale
            # connection: sending the request again would meet the same refusal.
            self.fail(_tls_alert_error(exc))
            return
        if isinstance(exc, ConnectionResetError):
            error = UpstreamError(
                "the server reset the connection before responding", code="connection-reset"
            )
        else:
            error = UpstreamError(
                "the server closed the connection without a response", code="empty-response"
            )
        if not self._rbuf and self._upstream.used and self._replayable:
            # A reused connection the server had already closed: an idempotent request with
            # no body may be sent again (RFC 9112 §9.3.1); if it is not, the error stands.
            self._upstream.abort()
            self._finish(Outcome("retry", error))
            return
        self.fail(error)

    def upstream_pause_writing(self) -> None:
        self._client_gate.pause("upstream-full")

    def upstream_resume_writing(self) -> None:
        self._client_gate.resume("upstream-full")

    # -- ending ---------------------------------------------------------------------------

    def check_timeouts(self, now: float) -> None:
        """Fail the exchange if whoever owes the next bytes is overdue.

        Until the response head, that is the server once it has the whole request (or the
        client waits for `100 Continue`): 504 after the upstream timeout. While the client is
        still sending its body, it is the client: 408 after the client idle timeout. Once the
        response streams, the transports' back-pressure decides and no clock runs.
        """
        if self.done.done() or self.response_framing is not None:
            return
        limits = self._limits
        silence = now - self.sent_at
        if self.request_body.done or (self._awaiting_continue and not self.request_body.size):
            if silence >= limits.upstream_timeout:
                self.fail(
                    UpstreamError(
                        f"the server sent no response within {limits.upstream_timeout:g}s",
                        status=504,
                        code="upstream-timeout",
                    )
                )
        elif silence >= limits.client_idle_timeout:
            self.fail(
                ProtocolError(
                    f"the request body stalled for {limits.client_idle_timeout:g}s",
                    status=408,
                    code="request-timeout",
                )
            )

    def fail(self, error: WaylayError) -> None:
        if self.done.done():
            return
        self._upstream.abort()
        self._finish(Outcome("failed", error))

    def _finish(self, outcome: Outcome) -> None:
        self.flow.timestamps.end = time.time()
        self._upstream.exchange = None
        self._upstream.gate.clear()
        self._client_gate.resume("upstream-full")
        self._request_seen()
        if self.response_head is not None and not self.response_head.done():
            self.response_head.set_result(None)
        self._resolve_buffered(False)
        if not self.done.done():
            self.done.set_result(outcome)


def _tls_alert_error(exc: ssl.SSLError) -> UpstreamError:
    reason = exc.reason or str(exc)
    if "CERTIFICATE_REQUIRED" in reason:
        return UpstreamError(
            "the server requires a client certificate (TLS alert certificate_required): "
            "give one with --client-cert [HOST=]FILE",
            code="upstream-client-cert-required",
        )
    described = reason.replace("_", " ").lower()
    return UpstreamError(
        f"the server ended the TLS session before responding ({described})",
        code="upstream-tls-failed",
    )


def _write(transport: asyncio.Transport, pieces: list[bytes]) -> None:
    """Write ``pieces`` in one call.

    Not ``writelines``: on CPython 3.12 and 3.13 the selector transport's writelines never
    calls pause_writing, which would silently switch back-pressure off.
    """
    transport.write(pieces[0] if len(pieces) == 1 else b"".join(pieces))
