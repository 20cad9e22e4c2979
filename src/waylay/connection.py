"""One client connection: read request heads, decide, and hand each exchange to the data path.

Theory of operation. The transport's callbacks (this class as an asyncio Protocol) only move
bytes: into the head buffer, or — while an exchange is streaming a request body — straight
into that exchange. One coroutine per connection holds the decisions, in order: wait for a
complete head, parse and validate it, run the hooks, take an idle upstream connection for the
same host:port or connect a new one, start the `Exchange`, and wait for its outcome. A
`101` upgrade turns the connection into a `Tunnel` for the rest of its life.

A CONNECT is answered once its server accepted the connection; then the tunnel's first bytes
decide (detect.py). A TLS ClientHello is intercepted: the server's handshake first, with the
client's SNI and ALPN, then a certificate forged from the server's names, then the client's
handshake over the bytes already read (tls/endpoint.py). The connection then swaps its
transport for the TLS one and serves the requests inside as it serves any — to one server,
the tunnel's (`InnerServer`). Plain HTTP inside a tunnel is served the same way without TLS;
anything else, an ignored host, or a client that pins its certificates, is relayed untouched.

In transparent mode there is no CONNECT: the kernel says where the connection was going
(platform/linux.py), and its first bytes decide as in a tunnel — TLS is intercepted with the
original address as the server, HTTP is served with each request's Host naming its flow, and
anything else is relayed and recorded as a TCP flow. A server that speaks first ends the
wait for the client's first bytes at once: it is not HTTP or TLS.

Nothing after a malformed request is ever forwarded: the error page is the last thing the
connection sends, and it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from cryptography import x509

from waylay.backpressure import ReadGate
from waylay.certs.forge import names_from_certificate
from waylay.certs.names import CertNames, IPAddress, dns_name, ip_literal, merge_names
from waylay.detect import Verdict, classify
from waylay.errors import (
    ProtocolError,
    ProxyAuthRequired,
    UpstreamError,
    WaylayError,
    error_response,
)
from waylay.exchange import Exchange, Outcome
from waylay.flow import (
    Client,
    ClientHelloData,
    Error,
    Flow,
    Request,
    Response,
    TcpMessage,
    Timestamps,
    TlsDetails,
)
from waylay.headers import Headers
from waylay.hooks import Hook, dispatch, dispatch_now
from waylay.http1.body import ChunkedDecoder, Framing, request_framing
from waylay.http1.forwarding import (
    client_keep_alive,
    forward_request_headers,
    forward_response_headers,
    is_upgrade_request,
    with_body_length,
)
from waylay.http1.head import (
    RequestHead,
    Target,
    find_head_end,
    header_value,
    parse_request_head,
    parse_target,
)
from waylay.http1.serialize import request_head, response_head
from waylay.installpage import INSTALL_HOST
from waylay.outbound import InnerServer, Route, SentRequest, route_for, sent_request
from waylay.platform.linux import mapped_to_ipv4, original_destination
from waylay.serverreplay import MATCH_BODY_LIMIT, ServerReplay
from waylay.store.flowstore import BodyCapture
from waylay.store.schema import REQUEST_BODY, RESPONSE_BODY
from waylay.tls.clienthello import ClientHello, ClientHelloError, parse_client_hello
from waylay.tls.contexts import SPOKEN_ALPN, offer_upstream
from waylay.tls.endpoint import TlsHandshakeError, TlsTransport
from waylay.tunnel import MessageHandler, Tunnel
from waylay.upstream import UpstreamConnection, connect, start_tls

if TYPE_CHECKING:
    from waylay.context import ProxyContext
    from waylay.server import ConnectionLimit

log = logging.getLogger("waylay.connection")

_NO_CAPTURE: tuple[BodyCapture | None, BodyCapture | None] = (None, None)
_NO_COPIES: tuple[Callable[[bytes], None] | None, Callable[[bytes], None] | None] = (None, None)

# Idle upstream connections one client connection may keep, one per host:port.
MAX_IDLE_UPSTREAMS = 8

# The first bytes each way a TCP flow keeps (within --body-limit).
TCP_CAPTURE_LIMIT = 64 * 1024

# The alerts a client sends when it does not trust the certificate it was shown.
_DISTRUST_ALERTS = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "ACCESS_DENIED")


class _WebUiRefused(ProtocolError):
    """A request or tunnel to waylay's own web UI through the proxy port."""

    status = 403
    code = "web-ui-not-through-proxy"


def _web_ui_refused(web: tuple[str, int] | None) -> _WebUiRefused:
    where = f" at {_show(web)}" if web else ""
    return _WebUiRefused(
        f"waylay's web UI is not reachable through the proxy: open it directly{where}"
    )


_KILLED = WaylayError("killed by an addon", code="killed")


class _BodyCopy:
    """A body kept whole as it passes, up to a limit, for a live filter that reads bodies.

    Each piece also goes on to the store's capture (``then``), so recording is unchanged.
    """

    __slots__ = ("_limit", "_parts", "_size", "_then")

    def __init__(self, then: Callable[[bytes], None] | None, limit: int) -> None:
        self._then = then
        self._limit = limit
        self._parts: list[bytes] | None = []
        self._size = 0

    def __call__(self, data: bytes) -> None:
        if self._then is not None:
            self._then(data)
        if self._parts is None:
            return
        self._size += len(data)
        if self._size > self._limit:
            self._parts = None  # over the limit: nothing is kept, the filter sees no body
            return
        self._parts.append(bytes(data))

    def whole(self) -> bytes | None:
        return None if self._parts is None else b"".join(self._parts)


class _ServerFirst:
    """Listens to a server no exchange has claimed while the client's first bytes are awaited.

    A server that speaks before its client is no HTTP or TLS server: the wait ends at once,
    and what it said is relayed first.
    """

    __slots__ = ("_wake", "data")

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self.data = bytearray()

    def upstream_data(self, data: bytes) -> None:
        self.data += data
        self._wake()

    def upstream_eof(self) -> None:
        pass

    def upstream_lost(self, exc: Exception | None) -> None:
        pass

    def upstream_pause_writing(self) -> None:
        pass

    def upstream_resume_writing(self) -> None:
        pass


class _Plan:
    """A request ready to go: where (`Route`), what (`SentRequest` and its head's bytes)."""

    __slots__ = ("body", "head_bytes", "route", "sent", "upgrade")

    def __init__(
        self, route: Route, sent: SentRequest, head_bytes: bytes, upgrade: bool, body: bytes | None
    ) -> None:
        self.route = route
        self.sent = sent
        self.head_bytes = head_bytes
        self.upgrade = upgrade
        self.body = body  # read whole for request hooks (sent again on a retry), or None


async def _close() -> bool:
    """What the lane hands over when a response ends the client's connection."""
    return False


class ClientConnection(asyncio.Protocol):
    __slots__ = (
        "_awaiting_head",
        "_buf",
        "_captures",
        "_client_full",
        "_copies",
        "_eof",
        "_exchange",
        "_handover",
        "_head_waiter",
        "_idle",
        "_idle_since",
        "_inner",
        "_lane",
        "_limit",
        "_loop",
        "_lost",
        "_original",
        "_paused",
        "_task",
        "client",
        "ctx",
        "gate",
        "replay_of",
        "transport",
    )

    def __init__(self, ctx: ProxyContext, *, limit: ConnectionLimit | None = None) -> None:
        self.ctx = ctx
        # How many clients the server serves at once (none for a replayed request).
        self._limit = limit
        self.transport: asyncio.Transport | None = None
        self.gate: ReadGate | None = None
        # Set by replay.py: the stored flow this connection's requests replay.
        self.replay_of: int | None = None
        self.client = Client(("", 0), 0.0)
        self._buf = bytearray()
        self._head_waiter: asyncio.Future[None] | None = None
        # Waiting for a request head (not for a peek or a ClientHello, which have their own
        # deadlines): the idle and slow-head clocks run.
        self._awaiting_head = False
        self._exchange: Exchange | None = None
        # The exchange served on callbacks (the fast lane), while the coroutine waits.
        self._lane: tuple[Flow, _Plan, Exchange, UpstreamConnection] | None = None
        # What the fast lane hands the coroutine when a request needs it (see _hand_over).
        self._handover: Callable[[], Awaitable[bool]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[tuple[str, int], UpstreamConnection] = {}
        self._idle_since = time.monotonic()
        self._eof = False
        self._lost = False
        # The client's write buffer is over its high-water mark: the state outlives one
        # exchange, and each new exchange (or tunnel) must start with its server held back.
        self._client_full = False
        self._inner: InnerServer | None = None
        self._captures: tuple[BodyCapture | None, BodyCapture | None] = _NO_CAPTURE
        self._copies = _NO_COPIES
        self._task: asyncio.Task[None] | None = None
        # A flow an addon holds (intercept) while this connection waits for its resume.
        self._paused: Flow | None = None
        # Transparent mode: where the client was connecting, from the kernel.
        self._original: tuple[str, int] | None = None

    # -- transport callbacks ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Typed as BaseTransport; stream sockets get a full Transport (uvloop's included,
        # which does not subclass asyncio.Transport, so no isinstance check).
        self.transport = transport = cast(asyncio.Transport, transport)
        self.gate = ReadGate(transport)
        peer = transport.get_extra_info("peername") or ("", 0)
        self.client = Client((str(peer[0]), int(peer[1])), time.time())
        if not self.ctx.access.allows(self.client.address[0]):
            self._refuse_client(transport)
            return
        if self._limit is not None and not self._limit.admits():
            self._turn_away(transport)
            return
        if self.ctx.options.mode == "transparent":
            self._original = _original_of(transport)
        self.ctx.connections.add(self)
        self._loop = loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._serve())

    def _refuse_client(self, transport: asyncio.Transport) -> None:
        """A client --allow-from does not allow: told so (a reset in transparent mode)."""
        self._lost = True  # nothing is served
        access = self.ctx.access
        log.warning(
            "%s may not use this proxy (%s): refused", _show(self.client.address), access.describe()
        )
        if self.ctx.options.mode == "transparent":
            _reset(transport)
            return
        error = ProtocolError(
            f"clients from {self.client.address[0]} may not use this proxy; "
            f"it serves {access.describe()}",
            status=403,
            code="client-not-allowed",
        )
        transport.write(error_response(error))
        _LingeringClose(transport, self.ctx.lingering)

    def _turn_away(self, transport: asyncio.Transport) -> None:
        """One client more than --max-connections: a 503 (a reset in transparent mode)."""
        self._lost = True  # nothing is served
        if self.ctx.options.mode == "transparent":
            _reset(transport)
            return
        assert self._limit is not None
        error = WaylayError(
            f"waylay is serving as many clients as it may ({self._limit.limit}, "
            "--max-connections); try again shortly",
            status=503,
            code="too-many-connections",
        )
        transport.write(error_response(error))
        _LingeringClose(transport, self.ctx.lingering)

    def data_received(self, data: bytes) -> None:
        exchange = self._exchange
        if exchange is not None and not exchange.request_body.done:
            data = exchange.client_data(data)
            if not data:
                return
        if self._head_waiter is not None and exchange is None:
            if not self._buf:
                self._idle_since = time.monotonic()  # a head begins: its own clock starts
            self._buf += data
            if not (self._lane_waits() and self._take_lane()):
                self._wake()
            return
        self._buf += data
        if len(self._buf) > self.ctx.options.limits.max_head_size:
            # Pipelined requests pile up while an exchange runs: hold the client back.
            assert self.gate is not None
            self.gate.pause("pipeline")

    def eof_received(self) -> bool:
        self._eof = True
        if self._exchange is not None:
            self._exchange.client_eof()
        self._wake()
        # Keep the transport open: the response to a complete request can still be sent.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._leave()
        if self._exchange is not None:
            self._exchange.client_lost()
        self._wake()

    def _leave(self) -> None:
        connections = self.ctx.connections
        if self in connections:
            connections.discard(self)
            self.ctx.trimmer.closed()  # what a burst of them freed goes back soon (memory.py)

    def pause_writing(self) -> None:
        self._client_full = True
        if self._exchange is not None:
            self._exchange.client_pause_writing()

    def resume_writing(self) -> None:
        self._client_full = False
        if self._exchange is not None:
            self._exchange.client_resume_writing()

    def _wake(self) -> None:
        waiter = self._head_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- timeouts (called by the server's sweeper) --------------------------------------

    def check_timeouts(self, now: float) -> None:
        limits = self.ctx.options.limits
        for key, upstream in list(self._idle.items()):
            if now - upstream.idle_since > limits.upstream_idle_timeout:
                del self._idle[key]
                upstream.close()
        if self._exchange is not None:
            self._exchange.check_timeouts(now)
        elif self._awaiting_head and self.transport is not None:
            if not self._buf:
                if now - self._idle_since > limits.client_idle_timeout:
                    self.transport.close()  # idle between requests: nothing is owed
            elif now - self._idle_since > limits.head_timeout:
                # A head that trickles in (slowloris) holds a connection for nothing.
                self._refuse(
                    ProtocolError(
                        f"the request head was not complete within {limits.head_timeout:g}s "
                        "of its first byte (--head-timeout)",
                        status=408,
                        code="head-timeout",
                    )
                )
                self.transport.close()

    # -- the connection's coroutine -----------------------------------------------------

    async def _serve(self) -> None:
        hooks = self.ctx.hooks
        try:
            if hooks.client_connected:
                await dispatch(hooks.client_connected, self.client)
            if self.ctx.options.mode == "transparent" and not await self._transparent():
                return
            while True:
                head = await self._next_head()
                if head is None:
                    break
                if isinstance(head, RequestHead):
                    keep = await self._handle(head)
                else:
                    keep = await head()  # the rest of a request the fast lane began
                # Not kept while the connection idles: a handed-over rest holds its whole flow.
                head = None
                if not keep:
                    break
        except Exception:
            log.exception("internal error on the connection from %s", _show(self.client.address))
        finally:
            self._close()
            self.client.disconnected_at = time.time()
            if hooks.client_disconnected:
                await dispatch(hooks.client_disconnected, self.client)

    async def _next_head(self) -> RequestHead | Callable[[], Awaitable[bool]] | None:
        """The next request head, or None once the client is gone (or sent garbage).

        Meanwhile the fast lane may serve requests on callbacks; what it hands over (a request
        that needs the coroutine after all) comes out of here too, as its rest to await.
        """
        limits = self.ctx.options.limits
        assert self.gate is not None and self._loop is not None
        self.gate.resume("pipeline")
        self._idle_since = time.monotonic()
        while True:
            handover = self._handover
            if handover is not None:
                self._handover = None
                return handover
            if self._exchange is None:  # (else the lane's exchange is under way)
                try:
                    end = find_head_end(self._buf, limits.max_head_size) if self._buf else -1
                    if end > 0:
                        raw = bytes(self._buf[:end])
                        del self._buf[:end]
                        return parse_request_head(raw, max_headers=limits.max_headers)
                except ProtocolError as exc:
                    self._refuse(exc)
                    return None
                if self._eof or self._lost:
                    if self._buf.strip():
                        log.info("%s closed mid-head", _show(self.client.address))
                    return None
            self._head_waiter = self._loop.create_future()
            self._awaiting_head = True
            try:
                await self._head_waiter
            finally:
                self._head_waiter = None
                self._awaiting_head = False

    async def _handle(self, head: RequestHead) -> bool:
        """Serve one request; True if the connection may carry another."""
        if self._inner is None and self.ctx.proxyauth is not None:
            credentials = header_value(head.headers, b"proxy-authorization")
            if not await self.ctx.proxyauth.verify(credentials):
                self._refuse(
                    ProxyAuthRequired(
                        "this proxy needs credentials (--proxyauth): "
                        + ("they were not accepted" if credentials else "none were sent")
                    )
                )
                return False
        try:
            target = parse_target(head.method, head.target)
            if self._inner is not None:
                target = self._inner_target(target, head)
            elif target.form == "authority":
                return await self._tunnel(head, target)
            elif self._for_waylay(target):
                return self._install_page(head, target)
            framing = request_framing(head)
        except ProtocolError as exc:
            self._refuse(exc)
            return False
        flow = self._new_flow(head, target)
        if self._inner is not None and self._inner.failure is not None:
            # Never an intercepted success against a server that failed verification.
            await self._flow_failed(flow, self._inner.failure, response_started=False)
            return False
        hooks = self.ctx.hooks
        if hooks.requestheaders:
            if not await self._run_hooks(hooks.requestheaders, flow):
                return await self._killed(flow)
            if flow.response is not None:
                return await self._answer(flow, head, whole=framing.kind == "none")
        if self.ctx.server_replay is not None:
            answered = await self._replay_answer(flow, head, framing, self.ctx.server_replay)
            if answered is not None:
                return answered
        body: bytes | None = None
        if hooks.request:
            body = await self._whole_request_body(flow, head, framing)
            if body is not None:
                # The whole request, before anything is sent: the hooks may change it all.
                flow.request.raw_content = body
                if not await self._run_hooks(hooks.request, flow):
                    return await self._killed(flow)
                if flow.response is not None:
                    return await self._answer(flow, head, whole=True)
                body = flow.request.raw_content or b""
        return await self._forward(flow, head, target, framing, body)

    async def _run_hooks(self, hooks: tuple[Hook, ...], flow: Flow) -> bool:
        """Run ``hooks`` on ``flow``, then wait while an addon holds it; False if killed."""
        await dispatch(hooks, flow)
        if flow.intercepted:
            resumed = asyncio.get_running_loop().create_future()

            def wake() -> None:
                if not resumed.done():
                    resumed.set_result(None)

            flow._on_resume = wake
            if flow.intercepted:  # not resumed meanwhile
                self._paused = flow
                try:
                    await resumed
                finally:
                    self._paused = None
        return not flow.killed

    async def _killed(self, flow: Flow) -> bool:
        """An addon killed the flow: nothing more is sent for it, the connection is reset."""
        flow.timestamps.end = time.time()
        log.info("%s %s: killed by an addon", _show(self.client.address), flow.request.url)
        if self.transport is not None and not self._lost:
            _reset(self.transport)
        if self.ctx.hooks.error:
            await dispatch(self.ctx.hooks.error, flow)
        self._record(flow)
        return False

    async def _whole_request_body(
        self, flow: Flow, head: RequestHead, framing: Framing
    ) -> bytes | None:
        """The request body read whole for request hooks; None when it streams instead."""
        if framing.kind == "none":
            return b""
        if flow.stream or flow.request.stream:
            return None
        limit = self.ctx.options.stream_large_bodies
        read = await self._read_body_ahead(head, framing, limit, send_continue=True)
        if read is None:
            log.info(
                "%s %s: the request body streams past request hooks (over %d bytes, "
                "--stream-large-bodies, or not sent whole)",
                _show(self.client.address),
                flow.request.url,
                limit,
            )
            return None
        body, consumed = read
        del self._buf[:consumed]
        flow.request_body_size = len(body)
        return body

    async def _answer(self, flow: Flow, head: RequestHead, *, whole: bool) -> bool:
        """Answer with ``flow.response`` (an addon's, or a stored one) without the server.

        ``whole``: the request body, if any, has been read; if not, the connection closes
        after the answer (what is left of the body cannot be told from a next request).
        """
        response = flow.response
        assert response is not None and self.transport is not None
        keep = whole and client_keep_alive(head) and not self._lost
        body = response.raw_content or b""
        fields = forward_response_headers(
            with_body_length(response.headers.fields, len(body)), close=not keep
        )
        data = b"" if head.method == b"HEAD" else body
        self.transport.write(
            response_head(
                b"HTTP/1.1", response.status_code, response.reason.encode("latin-1"), fields
            )
            + data
        )
        flow.response_body_size = len(data)
        flow.timestamps.end = time.time()
        store = self.ctx.store
        request_capture = response_capture = None
        if flow.request.raw_content:
            request_capture = store.capture(flow, REQUEST_BODY)
            if request_capture is not None:
                request_capture(flow.request.raw_content)
        response_capture = store.capture(flow, RESPONSE_BODY)
        if response_capture is not None and data:
            response_capture(data)
        self._captures = (request_capture, response_capture)
        await self._responded(flow)
        self._record(flow)
        return keep

    async def _responded(self, flow: Flow) -> None:
        """The response hooks that have not run yet, once the response went: all of them."""
        hooks = self.ctx.hooks
        if hooks.response:
            await self._run_hooks(hooks.response, flow)
        if hooks.passive_response:
            await dispatch(hooks.passive_response, flow)

    def _for_waylay(self, target: Target) -> bool:
        """A request for waylay itself: its own address, directly or by URL, or waylay.test."""
        if target.form != "absolute":
            return True  # origin form (or *): the client asked the proxy's own address
        if self._reaches_web_ui((target.host, target.port)):
            raise _web_ui_refused(self.ctx.web_ui)
        return target.host == INSTALL_HOST or (target.host, target.port) in self.ctx.own_addresses

    def _install_page(self, head: RequestHead, target: Target) -> bool:
        """Answer from the install page; never forwarded (that would loop back to waylay)."""
        page = self.ctx.install_page
        assert page is not None and self.transport is not None
        if head.method not in (b"GET", b"HEAD"):
            raise ProtocolError(
                "waylay's own pages take GET only", status=405, code="method-not-allowed"
            )
        status, headers, body = page.respond(target.path.decode("ascii", "replace"))
        keep = request_framing(head).kind == "none" and client_keep_alive(head)
        if not keep:
            headers.append((b"Connection", b"close"))
        phrase = b"OK" if status == 200 else b"Not Found"
        self.transport.write(response_head(b"HTTP/1.1", status, phrase, headers))
        if head.method == b"GET":
            self.transport.write(body)
        return keep

    async def _replay_answer(
        self, flow: Flow, head: RequestHead, framing: Framing, replay: ServerReplay
    ) -> bool | None:
        """Answer from --server-replay; None when the request goes to the server after all."""
        body: bytes | None = b""
        consumed = 0
        if framing.kind != "none" and replay.wants_body(flow):
            read = await self._read_body_ahead(head, framing, MATCH_BODY_LIMIT)
            body, consumed = read if read is not None else (None, 0)
        stored = await replay.answer(flow, body)
        if stored is None:
            if not replay.strict:
                return None
            error = UpstreamError(
                f"no saved flow in {replay.path} matches {flow.request.method} "
                f"{flow.request.url} (--server-replay-strict)",
                status=404,
                code="not-in-server-replay",
            )
            await self._flow_failed(flow, error, response_started=False)
            return False
        # The body read ahead is the request's: gone from the buffer. One not read (matching
        # ignored it) may still be on its way: then the connection closes after the answer.
        del self._buf[:consumed]
        if body:
            flow.request.raw_content = body
            flow.request_body_size = len(body)
        response = stored.response
        flow.response = Response(
            response.status_code,
            response.reason,
            response.http_version,
            response.headers,
            raw_content=stored.body,
        )
        return await self._answer(flow, head, whole=framing.kind == "none" or consumed > 0)

    async def _read_body_ahead(
        self, head: RequestHead, framing: Framing, limit: int, *, send_continue: bool = False
    ) -> tuple[bytes, int] | None:
        """The request's whole body, read into the buffer but left there, and its wire size.

        None when it is longer than ``limit``, malformed (the exchange that streams it will
        say so), the client stops sending it, or waits for a 100 Continue first (unless
        ``send_continue``: then waylay answers `100 Continue` itself, RFC 9110 §10.1.1):
        whatever was read stays in the buffer for the exchange to forward.
        """
        if b"100-continue" in (header_value(head.headers, b"expect") or b"").lower():
            if not send_continue or head.version != b"HTTP/1.1" or framing.length > limit:
                return None
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        timeout = self.ctx.options.limits.client_idle_timeout
        if framing.kind == "length":
            if framing.length > limit:
                return None
            while len(self._buf) < framing.length:
                if not await self._wait_for_more(timeout):
                    return None
            return bytes(self._buf[: framing.length]), framing.length
        if framing.kind != "chunked":
            return None
        decoder = ChunkedDecoder()
        pieces: list[bytes] = []
        size = seen = 0
        while True:
            if seen < len(self._buf):
                try:
                    found, used = decoder.feed(bytes(self._buf[seen:]))
                except ProtocolError:
                    return None
                seen += used
                pieces += found
                size += sum(map(len, found))
                if size > limit:
                    return None
                if decoder.done:
                    return b"".join(pieces), seen
            if not await self._wait_for_more(timeout):
                return None

    async def _wait_for_more(self, timeout: float) -> bool:
        """Wait for more of a body being read ahead (past the head size the buffer may hold)."""
        assert self.gate is not None
        self.gate.resume("pipeline")
        return await self._wait_for_bytes(timeout)

    def _inner_target(self, target: Target, head: RequestHead) -> Target:
        """A request inside a tunnel goes to the tunnel's server, whatever it names."""
        inner = self._inner
        assert inner is not None
        if target.form == "authority":
            raise ProtocolError(
                "CONNECT inside an intercepted tunnel is not supported", code="nested-connect"
            )
        host = inner.host
        if inner.named_by_host:
            host = _host_named(head) or host
        return Target("origin", inner.scheme, host, inner.port, target.path)

    def _new_flow(self, head: RequestHead, target: Target) -> Flow:
        hooks = self.ctx.hooks
        fields = head.headers
        if hooks.requestheaders or hooks.request or hooks.http_connect:
            # The head stays what the client sent; the flow becomes what the addons make it.
            fields = list(fields)
        request = Request(
            method=head.method.decode("ascii"),
            scheme=target.scheme,
            host=target.host,
            port=target.port,
            path=target.path.decode("ascii"),
            http_version=head.version.decode("ascii"),
            headers=Headers.wrap(fields),
        )
        return Flow(
            self.client.address,
            request,
            timestamps=Timestamps(start=time.time()),
            replay_of=self.replay_of,
            client_tls=inner.client_tls if (inner := self._inner) else None,
            server_tls=inner.server_tls if inner else None,
        )

    async def _forward(
        self, flow: Flow, head: RequestHead, target: Target, framing: Framing, body: bytes | None
    ) -> bool:
        """Send the request as the flow now says (hooks may have changed it) to its server.

        ``body``: the whole body, when request hooks read it (it goes with its length, and
        the client's own framing is gone); None while it is still to stream from the client.
        """
        plan = self._plan(flow, head, target, framing, body)
        if isinstance(plan, WaylayError):
            await self._flow_failed(flow, plan, response_started=False)
            return False
        if body:
            self._buf[:0] = body  # the exchange sends it as if the client just had
        return await self._send(flow, plan)

    def _plan(
        self, flow: Flow, head: RequestHead, target: Target, framing: Framing, body: bytes | None
    ) -> _Plan | WaylayError:
        """Where the request goes and its bytes; the error if an addon made it unsendable."""
        request = flow.request
        route = route_for(request, target, self._inner, alpn=SPOKEN_ALPN)
        try:
            sent = sent_request(request, head, target, framing, body)
        except ValueError as exc:
            return WaylayError(f"an addon made the request unsendable: {exc}", code="addon-error")
        upgrade = is_upgrade_request(sent.head)
        host = route.host_header
        fields = request.headers.fields
        if route.keep_host or fields is not head.headers:  # (else: no addon saw the head)
            named = header_value(fields, b"host")
            if named and (route.keep_host or named != header_value(head.headers, b"host")):
                # The client's Host inside a tunnel, or one an addon set: sent as it is.
                host = named
        headers = forward_request_headers(
            sent.head.headers,
            host,
            upgrade=upgrade,
            http10=head.version == b"HTTP/1.0",
        )
        head_bytes = request_head(sent.head.method, sent.head.target, headers)
        store = self.ctx.store
        # Most requests have no body: no capture is made for one that cannot come.
        request_capture = store.capture(flow, REQUEST_BODY) if sent.framing.kind != "none" else None
        self._captures = (request_capture, store.capture(flow, RESPONSE_BODY))
        return _Plan(route, sent, head_bytes, upgrade, body)

    async def _send(
        self,
        flow: Flow,
        plan: _Plan,
        attempt: tuple[Exchange, Outcome, UpstreamConnection] | None = None,
    ) -> bool:
        """Send the planned request (unless ``attempt`` did already), then finish the flow."""
        if attempt is None:
            attempt = await self._exchange_once(flow, plan)
        if attempt is not None and attempt[1].kind == "retry":
            # The idle connection had been closed by the server: once more, on a new one.
            flow.timestamps.first_response_byte = 0.0
            if plan.body:
                self._buf[:0] = plan.body
            attempt = await self._exchange_once(flow, plan)
        if attempt is None:
            return False
        return await self._finish(flow, *attempt)

    def _sinks(self) -> tuple[Callable[[bytes], None] | None, Callable[[bytes], None] | None]:
        """Where each body's payload goes as it passes: the store's captures, and copies
        when a live filter reads bodies (then set on the flow once it is complete)."""
        if not self.ctx.keep_bodies:
            return self._captures
        limit = self.ctx.options.body_limit
        request, response = self._captures
        return (_BodyCopy(request, limit), _BodyCopy(response, limit))

    async def _exchange_once(
        self, flow: Flow, plan: _Plan
    ) -> tuple[Exchange, Outcome, UpstreamConnection] | None:
        """Send the request on an idle or new upstream connection; None if none could be had."""
        hooks = self.ctx.hooks
        upstream = self._idle.pop(plan.route.key, None)
        if upstream is None or not upstream.usable:
            upstream = await self._open_upstream(flow, plan.route)
            if upstream is None:
                return None
        exchange = self._start_exchange(flow, plan, upstream)
        sent = plan.sent
        if exchange.request_complete is not None:
            # The body streamed past the request hooks: they see the request once it went
            # (passive ones always do).
            await exchange.request_complete
            if sent.streamed:
                await self._run_hooks(hooks.request, flow)
            await dispatch(hooks.passive_request, flow)
        elif hooks.passive_request:
            await dispatch(hooks.passive_request, flow)
        if exchange.response_head is not None and await exchange.response_head:
            if not await self._run_hooks(hooks.responseheaders, flow):
                exchange.fail(_KILLED)
            exchange.begin_response()
        if exchange.response_buffered is not None and await exchange.response_buffered:
            # The whole response, before any of it went to the client.
            if not await self._run_hooks(hooks.response, flow):
                exchange.fail(_KILLED)
            exchange.send_buffered()
        outcome = await exchange.done
        self._exchange = None
        return exchange, outcome, upstream

    def _start_exchange(self, flow: Flow, plan: _Plan, upstream: UpstreamConnection) -> Exchange:
        """Send the request's head, and what of its body is here, on ``upstream``."""
        assert self.transport is not None and self.gate is not None
        hooks = self.ctx.hooks
        sent = plan.sent
        flow.server_address = upstream.address
        sinks = self._sinks()
        self._copies = sinks if self.ctx.keep_bodies else _NO_COPIES
        stream = flow.request.stream
        buffer_response = 0
        if hooks.response and not flow.stream:
            buffer_response = self.ctx.options.stream_large_bodies
        exchange = Exchange(
            client=self.transport,
            client_gate=self.gate,
            upstream=upstream,
            flow=flow,
            request=sent.head,
            request_framing=sent.framing,
            upgrade=plan.upgrade,
            hold_response_head=bool(hooks.responseheaders),
            watch_request=sent.framing.kind != "none"
            and bool((sent.streamed and hooks.request) or hooks.passive_request),
            client_full=self._client_full,
            limits=self.ctx.options.limits,
            capture=sinks,
            buffer_response=buffer_response,
            request_transform=stream if callable(stream) else None,
            loop=self._loop,
        )
        self._exchange = exchange
        pending = bytes(self._buf)
        self._buf.clear()
        self._buf += exchange.start(plan.head_bytes, pending)
        if self._eof:
            exchange.client_eof()  # the FIN came with a pipelined request: no more body
        return exchange

    async def _finish(
        self, flow: Flow, exchange: Exchange, outcome: Outcome, upstream: UpstreamConnection
    ) -> bool:
        hooks = self.ctx.hooks
        if outcome.error is not None:
            await self._flow_failed(flow, outcome.error, response_started=exchange.response_started)
            return False
        request_copy, response_copy = self._copies
        self._copies = _NO_COPIES
        if isinstance(request_copy, _BodyCopy):
            flow.request.raw_content = request_copy.whole()
        if isinstance(response_copy, _BodyCopy) and flow.response is not None:
            flow.response.raw_content = response_copy.whole()
        buffered = exchange.response_buffered
        if buffered is None or not buffered.result():
            # The body streamed past the hooks (flow.stream, or too large): they see the
            # response once it went.
            await self._responded(flow)
        elif hooks.passive_response:
            await dispatch(hooks.passive_response, flow)
        if outcome.kind == "upgraded":
            self._record(flow)
            await self._relay(upstream, outcome.upstream_pending)
            return False
        return self._complete(flow, outcome, upstream)

    def _complete(self, flow: Flow, outcome: Outcome, upstream: UpstreamConnection) -> bool:
        """Record a flow that went through, keep or close its server's connection; True if
        the client's connection may carry another request."""
        self._record(flow)
        if outcome.reuse_upstream:
            self._park(upstream)
        else:
            upstream.close()
        # After a FIN, requests already received are still answered (RFC 9112 §9.6):
        # _next_head ends the connection once none is left.
        return outcome.keep_client and not self._lost

    # -- the fast lane: requests served on callbacks ----------------------------------------
    #
    # Most requests need nothing the coroutine is for: no hook, no new upstream connection,
    # no error. While the coroutine waits for a head (_next_head), such a request is served
    # from data_received to the exchange's end without it: parsed, planned, sent on an idle
    # upstream connection, and recorded by the exchange's done callback, which then takes
    # the next buffered request the same way. The code is the coroutine's own (_plan,
    # _start_exchange, _complete); the lane only skips the awaits. The moment a request needs
    # the coroutine — a new connection, a retry, an error, an upgrade, an asynchronous hook —
    # the lane hands it over (_hand_over) and the coroutine carries on from that point, in
    # order: the lane takes nothing more until the coroutine waits for a head again.

    def _lane_waits(self) -> bool:
        """The coroutine waits for a head, and no request needs anything the lane skips."""
        waiter = self._head_waiter
        if waiter is None or waiter.done() or not self._awaiting_head:
            return False
        if self._handover is not None or self._exchange is not None:
            return False
        ctx = self.ctx
        hooks = ctx.hooks
        inner = self._inner
        return not (
            hooks.requestheaders
            or hooks.request
            or hooks.passive_request
            or hooks.responseheaders
            or hooks.response
            or ctx.server_replay is not None
            or ctx.keep_bodies
            or (ctx.proxyauth is not None and inner is None)
            or (inner is not None and inner.failure is not None)
        )

    def _take_lane(self) -> bool:
        """Serve the buffered request on callbacks; False when the coroutine must see it
        (its head is not one the lane serves: a CONNECT, waylay's own page, or an error).
        True also while the head is incomplete: the coroutine would only wait too."""
        limits = self.ctx.options.limits
        buf = self._buf
        try:
            end = find_head_end(buf, limits.max_head_size)
            if end < 0:
                return True
            head = parse_request_head(bytes(buf[:end]), max_headers=limits.max_headers)
            target = parse_target(head.method, head.target)
            if self._inner is not None:
                target = self._inner_target(target, head)
            elif target.form == "authority" or self._for_waylay(target):
                return False
            framing = request_framing(head)
        except ProtocolError:
            return False  # the coroutine parses it again, and answers the error
        del buf[:end]
        flow = self._new_flow(head, target)
        plan = self._plan(flow, head, target, framing, None)
        if isinstance(plan, WaylayError):  # (only an addon's change can make one)
            self._hand_over(functools.partial(self._unsendable, flow, plan))
            return True
        upstream = self._idle.pop(plan.route.key, None)
        if upstream is None or not upstream.usable:
            self._hand_over(functools.partial(self._send, flow, plan))  # it connects
            return True
        exchange = self._start_exchange(flow, plan, upstream)
        self._lane = (flow, plan, exchange, upstream)
        exchange.done.add_done_callback(self._lane_done)
        return True

    def _lane_done(self, done: asyncio.Future[Outcome]) -> None:
        """The lane's exchange ended: complete the flow, or hand it to the coroutine."""
        assert self._lane is not None and self.gate is not None
        flow, plan, exchange, upstream = self._lane
        self._lane = None
        self._exchange = None
        outcome = done.result()
        hooks = self.ctx.hooks
        if outcome.kind != "complete" or outcome.error is not None or hooks.response:
            attempt = (exchange, outcome, upstream)
            self._hand_over(functools.partial(self._send, flow, plan, attempt))
            return
        rest = dispatch_now(hooks.passive_response, flow)
        if rest is not None:  # an asynchronous hook: the coroutine awaits it
            self._hand_over(functools.partial(self._complete_after, rest, flow, outcome, upstream))
            return
        if not self._complete(flow, outcome, upstream):
            self._hand_over(_close)
            return
        self.gate.resume("pipeline")
        self._idle_since = time.monotonic()
        if self._lost or self._eof:
            self._wake()  # the coroutine ends the connection (answering what is buffered)
        elif self._buf and not (self._lane_waits() and self._take_lane()):
            self._wake()  # the coroutine reads the next head

    def _hand_over(self, rest: Callable[[], Awaitable[bool]]) -> None:
        """Give the coroutine the rest of a request the lane began (it waits in _next_head)."""
        self._handover = rest
        self._wake()

    async def _complete_after(
        self, hooks: Awaitable[None], flow: Flow, outcome: Outcome, upstream: UpstreamConnection
    ) -> bool:
        await hooks
        return self._complete(flow, outcome, upstream)

    async def _unsendable(self, flow: Flow, error: WaylayError) -> bool:
        await self._flow_failed(flow, error, response_started=False)
        return False

    async def _tunnel(self, head: RequestHead, target: Target) -> bool:
        """CONNECT: answer once the server accepted the connection, then see what comes."""
        flow = self._new_flow(head, target)
        hooks = self.ctx.hooks
        if hooks.http_connect:
            if not await self._run_hooks(hooks.http_connect, flow):
                return await self._killed(flow)
            response = flow.response
            if response is not None and not 200 <= response.status_code < 300:
                # An addon refused the tunnel: its answer is the last on this connection.
                await self._answer(flow, head, whole=False)
                return False
            flow.response = None
            # An addon may send the tunnel elsewhere.
            target = Target("authority", "", flow.request.host, flow.request.port, b"")
        passthrough = self.ctx.passthrough
        untouched = passthrough.ignored(target.host, target.port) or passthrough.pinned(target.host)
        route = Route((target.host, target.port), target.host, target.port)
        upstream = await self._open_upstream(flow, route)
        if upstream is None:
            return False
        assert self.transport is not None
        flow.server_address = upstream.address
        self.transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        flow.response = Response(200, "Connection established", "HTTP/1.1", Headers())
        server_first = b""
        if not untouched:
            serve, server_first = await self._inspect(upstream, target, named_by_host=False)
            if serve is not False:
                return bool(serve)
        # An ignored host is relayed untouched; anything else is shown to tcp_message hooks.
        return await self._relay_tunnel(flow, upstream, server_first, hooked=not untouched)

    async def _inspect(
        self, upstream: UpstreamConnection, target: Target, *, named_by_host: bool
    ) -> tuple[bool | None, bytes]:
        """What the client speaks to ``target`` decides what the connection becomes.

        (True, b""): its requests are served (HTTP, or TLS intercepted); (None, b""): it is
        over; (False, bytes): relay it, the server's first bytes first.
        """
        verdict, server_first = await self._peek(upstream)
        if verdict == "http":
            self._inner = InnerServer(
                "http", target.host, target.port, target.host, named_by_host=named_by_host
            )
            if server_first:
                upstream.close()  # it spoke out of turn: never reused for a request
            else:
                self._park(upstream)
            return True, b""
        if verdict == "tls":
            intercepted = await self._intercept_tls(target, upstream, server_first)
            if intercepted is not False:
                return intercepted, b""
        return False, server_first

    async def _relay_tunnel(
        self, flow: Flow, upstream: UpstreamConnection, server_first: bytes, *, hooked: bool
    ) -> bool:
        """The tunnel's bytes, relayed as they are; the CONNECT is the flow."""
        tunnel = await self._relay(upstream, server_first, flow=flow if hooked else None)
        if tunnel is not None:
            flow.request_body_size = tunnel.client.received
            flow.response_body_size = tunnel.server.received
        flow.timestamps.end = time.time()
        await self._responded(flow)
        self._record(flow)
        return False

    # -- transparent mode -----------------------------------------------------------------

    async def _transparent(self) -> bool:
        """A redirected connection: True to serve its requests (HTTP, or intercepted TLS)."""
        assert self.transport is not None
        original = self._original
        if original is None or self._is_own(original) or self._reaches_web_ui(original):
            log.warning(
                "%s connected to waylay itself%s: in transparent mode waylay serves only "
                "connections the network redirected to it (see `waylay transparent rules` and "
                "docs/transparent.md), so this one is refused rather than looped",
                _show(self.client.address),
                "" if original is None else f" ({_show(original)})",
            )
            _reset(self.transport)
            return False
        if self._is_waylay_redirected(original):
            return False
        host, port = original
        flow = self._tcp_flow(host, port)
        try:
            upstream = await self._connect(host, port)
        except UpstreamError as exc:
            return await self._unreachable(flow, exc)
        if self._lost:
            upstream.close()
            return False
        flow.server_address = upstream.address
        server_first = b""
        if not self.ctx.passthrough.ignored(host, port):
            target = Target("authority", "https", host, port, b"")
            serve, server_first = await self._inspect(upstream, target, named_by_host=True)
            if serve is not False:
                return bool(serve)
        await self._relay_tcp(flow, upstream, server_first)
        return False

    async def _connect(self, host: str, port: int) -> UpstreamConnection:
        """A new connection to a server: marked, and in transparent mode its source noted."""
        own_ports = self.ctx.own_ports if self.ctx.options.mode == "transparent" else None
        return await connect(
            host,
            port,
            self.ctx.resolver,
            timeout=self.ctx.options.limits.connect_timeout,
            mark=self.ctx.options.upstream_mark,
            own_ports=own_ports,
        )

    def _is_waylay_redirected(self, original: tuple[str, int]) -> bool:
        """The client is waylay's own connection to ``original``, redirected back: refused."""
        assert self.transport is not None
        host, port = self.client.address
        if port not in self.ctx.own_ports or not _is_local_address(mapped_to_ipv4(host)):
            return False
        log.warning(
            "waylay's own connection to %s was redirected back to it (from %s): the rules must "
            "leave waylay's traffic alone — with local capture, run waylay with --upstream-mark "
            "MARK and the rules with --exclude-mark MARK, or as another user with --exclude-user "
            "(see docs/transparent.md); refused rather than looped",
            _show(original),
            _show(self.client.address),
        )
        _reset(self.transport)
        return True

    def _reaches_web_ui(self, address: tuple[str, int]) -> bool:
        """``address`` (a connected server's, or a URL's host and port) is waylay's web UI.

        Its API must never be reachable through the proxy (mitmweb's CVE-2025-23217): not by
        URL, not by a name that resolves to it, not by CONNECT, not redirected to it.
        """
        web = self.ctx.web_ui
        if web is None or address[1] != web[1]:
            return False
        host = mapped_to_ipv4(address[0])
        if host == "localhost":
            host = "127.0.0.1"
        if web[0] in ("0.0.0.0", "::"):
            return ip_literal(host) is not None and _is_local_address(host)
        return host == web[0]

    def _is_own(self, address: tuple[str, int]) -> bool:
        """``address`` is waylay's own listening socket (what an unredirected client reached)."""
        assert self.transport is not None
        local = self.transport.get_extra_info("sockname")
        own = local is not None and (mapped_to_ipv4(str(local[0])), int(local[1])) == address
        return own or address in self.ctx.own_addresses

    def _tcp_flow(self, host: str, port: int) -> Flow:
        request = Request("", "tcp", host, port, "", "", Headers())
        return Flow(
            self.client.address, request, timestamps=Timestamps(start=time.time()), kind="tcp"
        )

    async def _unreachable(self, flow: Flow, error: UpstreamError) -> bool:
        """The original destination cannot be reached: 502 for HTTP, a reset for the rest."""
        if (await self._peek_client()) == "http":
            # Served as any request is, so its own attempt answers it with the 502 and a flow.
            host, port = flow.request.host, flow.request.port
            self._inner = InnerServer("http", host, port, host, named_by_host=True)
            return True
        assert self.transport is not None
        flow.error = Error(error.reason, error.code)
        flow.timestamps.end = time.time()
        log.warning(
            "%s %s: %s: the client's connection is reset",
            _show(self.client.address),
            flow.request.url,
            error.reason,
        )
        _reset(self.transport)
        if self.ctx.hooks.error:
            await dispatch(self.ctx.hooks.error, flow)
        self._record(flow)
        return False

    async def _peek_client(self) -> Verdict:
        """What the client speaks, when there is no server to listen to."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ctx.options.limits.peek_timeout
        while (verdict := classify(self._buf)) is None:
            if not await self._wait_for_bytes(deadline - loop.time()):
                return "other"
        return verdict

    async def _relay_tcp(
        self, flow: Flow, upstream: UpstreamConnection, server_first: bytes
    ) -> None:
        """Relay the connection as it is, recorded as a TCP flow with its first bytes each way."""
        store = self.ctx.store
        up = store.capture(flow, REQUEST_BODY, TCP_CAPTURE_LIMIT)
        down = store.capture(flow, RESPONSE_BODY, TCP_CAPTURE_LIMIT)
        self._captures = (up, down)
        tunnel = await self._relay(upstream, server_first, taps=(up, down), flow=flow)
        if tunnel is not None:
            flow.request_body_size = tunnel.client.received
            flow.response_body_size = tunnel.server.received
        flow.timestamps.end = time.time()
        if self.ctx.hooks.tcp_end:
            await dispatch(self.ctx.hooks.tcp_end, flow)
        self._record(flow)

    async def _wait_for_bytes(self, timeout: float | None = None) -> bool:
        """Wait for more bytes from the client; False on timeout, EOF or loss."""
        if self._eof or self._lost:
            return False
        self._head_waiter = waiter = asyncio.get_running_loop().create_future()
        self._idle_since = time.monotonic()
        had = len(self._buf)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            return False
        finally:
            self._head_waiter = None
        return len(self._buf) > had

    async def _peek(self, upstream: UpstreamConnection) -> tuple[Verdict, bytes]:
        """What the client speaks, from its first bytes; and what its server said meanwhile.

        Undecided after the peek timeout — silence (a server-speaks-first protocol) or bytes
        that could still become a request line — means neither TLS nor HTTP: relayed. So
        does a server that speaks first: its bytes are the second answer. (One that closes
        first decides nothing: an HTTP client is still owed a 502 page.)
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ctx.options.limits.peek_timeout
        server = _ServerFirst(self._wake)
        upstream.exchange = server
        upstream.gate.resume("unclaimed")
        try:
            while True:
                # A TLS server never speaks first: TLS bytes from one (an alert) decide nothing.
                if server.data and not _may_be_tls_record(server.data):
                    return "other", bytes(server.data)
                verdict = classify(self._buf)
                if verdict is not None:
                    return verdict, bytes(server.data)
                remaining = deadline - loop.time()
                if remaining <= 0 or self._eof or self._lost:
                    return "other", bytes(server.data)
                await self._wait_for_bytes(remaining)
        finally:
            upstream.exchange = None
            upstream.gate.pause("unclaimed")

    async def _client_hello(self) -> ClientHello | None:
        """The client's whole ClientHello (over any records and segments), or None.

        None with the connection still open: not a ClientHello after all (it is relayed).
        A client that stops half-way is told nothing more: its connection is closed.
        """
        loop = asyncio.get_running_loop()
        limits = self.ctx.options.limits
        timeout = limits.tls_handshake_timeout
        deadline = loop.time() + timeout
        who = _show(self.client.address)
        while True:
            try:
                hello = parse_client_hello(self._buf, max_size=limits.max_peek_size)
            except ClientHelloError as exc:
                log.warning("%s: not a TLS ClientHello (%s): relayed untouched", who, exc)
                return None
            if hello is not None:
                return hello
            if not await self._wait_for_bytes(deadline - loop.time()):
                if self._lost:
                    return None
                assert self.transport is not None
                if self._eof:
                    log.warning("%s closed its connection half-way through its ClientHello", who)
                else:
                    log.warning(
                        "%s sent part of a ClientHello and then nothing for %gs: closed",
                        who,
                        timeout,
                    )
                self.transport.close()
                return None

    async def _intercept_tls(
        self, target: Target, upstream: UpstreamConnection, server_first: bytes = b""
    ) -> bool | None:
        """Intercept the TLS inside a tunnel: True to serve it, False to relay it, None: over.

        ``server_first``: TLS bytes the server sent before being asked (an alert, from a server
        that cannot speak any version it was configured with): its handshake reads them.
        """
        hello = await self._client_hello()
        if hello is None:
            assert self.transport is not None
            if self._eof or self._lost or self.transport.is_closing():
                upstream.close()
                return None
            return False
        ctx = self.ctx
        sni = hello.sni
        if sni is not None and dns_name(sni) is None:
            log.warning(
                "%s sent an SNI that is not a host name (%r): relayed untouched",
                _show(self.client.address),
                sni,
            )
            return False
        if sni is None and dns_name(target.host) is None and ip_literal(target.host) is None:
            # Resolvable (a hosts file maps any name) but no name to verify a server by.
            log.warning(
                "%s: the CONNECT host %r is no name a certificate can carry: relayed untouched",
                _show(self.client.address),
                target.host,
            )
            return False
        name = sni or target.host
        if sni and (ctx.passthrough.ignored(sni, target.port) or ctx.passthrough.pinned(sni)):
            return False
        if ctx.hooks.tls_clienthello:
            data = ClientHelloData(hello, self.client.address, (target.host, target.port))
            await dispatch(ctx.hooks.tls_clienthello, data)
            if data.ignore_connection:
                return False
        offer = offer_upstream(hello.alpn)
        if offer is None:
            log.warning(
                "%s offers only %s for %s, which waylay does not speak yet: passed through",
                _show(self.client.address),
                ", ".join(hello.alpn),
                name,
            )
            return False
        limits = ctx.options.limits
        failure: UpstreamError | None = None
        chosen: str | None = None
        der: bytes | None = None
        server_tls: TlsDetails | None = None
        try:
            session = await start_tls(
                upstream,
                ctx.upstream_tls.for_server(name, offer),
                server_hostname=name,
                timeout=limits.tls_handshake_timeout,
                pending=server_first,
            )
        except UpstreamError as exc:
            # The client still gets a session, to be told why in a page it can read.
            failure = exc
            chosen = "http/1.1" if "http/1.1" in offer else None
            log.info("%s: %s", _show(self.client.address), exc.reason)
        else:
            chosen = session.selected_alpn_protocol()
            der = session.getpeercert(binary_form=True) or None
            seen = _server_certificate(der)
            server_tls = TlsDetails(
                session.version(), chosen, name if ip_literal(name) is None else None,
                seen.names, seen.issuer, seen.not_before, seen.not_after,
            )  # fmt: skip
        names = _forged_names(der, sni, target.host)
        if self._lost or self._eof:
            # Gone, or half-closed, during the server's handshake: a client that sends nothing
            # more cannot finish its own.
            upstream.close()
            return None
        assert self.transport is not None and self.gate is not None
        tls = TlsTransport(
            self.transport,
            ctx.certs.context_for(names, chosen),
            server_side=True,
            pending=bytes(self._buf),
        )
        self._buf.clear()
        self.gate.clear()
        try:
            await tls.handshake(limits.tls_handshake_timeout)
        except (TlsHandshakeError, TimeoutError) as exc:
            if not self._lost:  # not cut short by waylay stopping
                self._client_refused(name, target.port, exc)
            upstream.close()
            self.transport.close()
            return None
        if failure is None:
            self._park(upstream)
        else:
            upstream.close()
        client_session = tls.ssl_object
        client_tls = TlsDetails(
            client_session.version() if client_session else None,
            client_session.selected_alpn_protocol() if client_session else None,
            sni,
            (*names.dns, *map(str, names.ips)),
        )
        self._inner = InnerServer(
            "https", name, target.port, target.host, name, offer, failure=failure,
            client_tls=client_tls, server_tls=server_tls,
        )  # fmt: skip
        self.transport = tls
        self.gate = ReadGate(tls)
        tls.start(self, notify=False)
        return True

    def _client_refused(self, host: str, port: int, exc: Exception) -> None:
        """A client that did not finish its handshake: say why, and how to fix it."""
        who = _show(self.client.address)
        if isinstance(exc, TimeoutError):
            log.warning("%s did not finish its TLS handshake for %s in time", who, host)
            return
        assert isinstance(exc, TlsHandshakeError)
        if not exc.eof and not any(alert in exc.alert for alert in _DISTRUST_ALERTS):
            log.warning("%s: TLS handshake for %s failed: %s", who, host, exc)
            return
        why = "closed the connection" if exc.eof else f"sent {exc}"
        remembered = self.ctx.passthrough.remember(host)
        log.warning(
            "%s rejected waylay's certificate for %s (it %s): the client does not trust the "
            "waylay CA, or pins the server's certificate. Install the CA from "
            "http://waylay.test/, or pass the host through with --ignore-hosts '^%s:%d$'%s",
            who,
            host,
            why,
            host.replace(".", r"\."),
            port,
            "; its next connections pass through (--passthrough-pinned)" if remembered else "",
        )

    async def _relay(
        self,
        upstream: UpstreamConnection,
        upstream_pending: bytes,
        taps: tuple[Callable[[bytes], object] | None, Callable[[bytes], object] | None] = (
            None,
            None,
        ),
        flow: Flow | None = None,
    ) -> Tunnel | None:
        """Relay raw bytes between the client and ``upstream`` until either side ends.

        ``taps`` see what the client and the server send (a TCP flow's captures). With a
        ``flow`` and tcp_message hooks, each piece goes through the hooks first.
        """
        assert self.transport is not None and self.gate is not None
        assert upstream.transport is not None
        if self._lost or upstream.closed:
            upstream.close()
            return None
        upstream.exchange = None
        pending = bytes(self._buf)
        self._buf.clear()
        self.gate.clear()
        upstream.gate.clear()
        tunnel = Tunnel(
            self.transport,
            upstream.transport,
            client_pending=pending,
            server_pending=upstream_pending,
            client_full=self._client_full,
            server_full=upstream.writing_paused,
            client_tap=taps[0],
            server_tap=taps[1],
            on_message=self._message_hooks(flow) if flow and self.ctx.hooks.tcp_message else None,
        )
        if self._eof:
            tunnel.client.eof_received()
        await tunnel.closed
        return tunnel

    def _message_hooks(self, flow: Flow) -> MessageHandler:
        """The tcp_message hooks over one relayed connection's pieces."""
        hooks = self.ctx.hooks

        async def on_message(from_client: bool, data: bytes) -> bytes:
            message = TcpMessage(from_client, data, time.time())
            flow.messages = [message]  # only the last: memory stays flat
            await dispatch(hooks.tcp_message, flow)
            return message.content

        return on_message

    async def _open_upstream(self, flow: Flow, route: Route) -> UpstreamConnection | None:
        """A new connection to the route's server, or None (the client got the error)."""
        assert self.gate is not None
        limits = self.ctx.options.limits
        self.gate.pause("connecting")  # what the client sends meanwhile waits in the kernel
        try:
            upstream = await self._connect(route.host, route.port)
            if self._reaches_web_ui(upstream.address):
                upstream.close()
                raise _web_ui_refused(self.ctx.web_ui)
            if route.tls_name is not None:
                await start_tls(
                    upstream,
                    self.ctx.upstream_tls.for_server(route.tls_name, route.alpn),
                    server_hostname=route.server_hostname,
                    timeout=limits.tls_handshake_timeout,
                )
            upstream.key = route.key
        except (UpstreamError, _WebUiRefused) as exc:
            await self._flow_failed(flow, exc, response_started=False)
            return None
        finally:
            self.gate.resume("connecting")
        if self._lost:
            upstream.close()
            return None
        return upstream

    def _park(self, upstream: UpstreamConnection) -> None:
        """Keep an upstream connection for the next request to the same host:port."""
        upstream.used += 1
        upstream.idle_since = time.monotonic()
        # Read while idle, also a connection no exchange has claimed yet (the one made for
        # a tunnel before its first request): its server's close must make it unusable
        # before a request is sent into it.
        upstream.gate.resume("unclaimed")
        old = self._idle.pop(upstream.key, None)
        if old is not None:
            old.close()
        if len(self._idle) >= MAX_IDLE_UPSTREAMS:
            oldest = next(iter(self._idle))
            self._idle.pop(oldest).close()
        self._idle[upstream.key] = upstream

    async def _flow_failed(self, flow: Flow, error: WaylayError, *, response_started: bool) -> None:
        flow.error = Error(error.reason, error.code)
        flow.timestamps.end = time.time()
        assert self.transport is not None
        if response_started or flow.killed:
            # The head went out: the only signal left is to break the connection, and with a
            # reset, not a FIN, which would end a read-until-close (or de-chunked) body as if
            # it were whole.
            _reset(self.transport)
        else:
            self._send_error(error)
        log.info("%s %s: %s", _show(self.client.address), flow.request.url, error.reason)
        if self.ctx.hooks.error:
            await dispatch(self.ctx.hooks.error, flow)
        self._record(flow)

    def _record(self, flow: Flow) -> None:
        """Hand the finished flow, and what its body captures hold, to the flow store."""
        self.ctx.store.append(flow, *self._captures)
        self._captures = _NO_CAPTURE

    def _refuse(self, error: WaylayError) -> None:
        """Answer a request that cannot be served; the connection closes after it."""
        # No flow exists for it, so no dump line: the log says what the client was told.
        log.warning("%s: %d %s", _show(self.client.address), error.status, error.reason)
        self._send_error(error)

    def _send_error(self, error: WaylayError) -> None:
        if self.transport is not None and not self._lost:
            self.transport.write(error_response(error))

    def _close(self) -> None:
        for upstream in self._idle.values():
            upstream.close()
        self._idle.clear()
        self._leave()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if not self._lost and transport.can_write_eof():
            _LingeringClose(transport, self.ctx.lingering)
        else:
            transport.close()

    def abort(self) -> None:
        """Shut this connection down now (server stopping)."""
        # Lost now, whatever the transport is: a handshake cut short here is not the client's
        # refusal of the certificate.
        self._lost = True
        if self._exchange is not None:
            self._exchange.client_lost()
        if self._paused is not None:
            # Held for someone who will not come now: it ends, and is recorded, as killed.
            self._paused.kill()
        for upstream in self._idle.values():
            upstream.abort()
        if self.transport is not None:
            self.transport.abort()

    @property
    def serving(self) -> asyncio.Task[None] | None:
        """The connection's coroutine (done once the connection has ended and is recorded)."""
        return self._task


class _LingeringClose(asyncio.Protocol):
    """Close a client connection without losing the last response (RFC 9112 §9.6).

    Closing a socket with unread bytes in its receive buffer sends a reset, and a reset can
    erase the client's unread input — the last response, an error page or an early answer
    to an upload still coming in. So the write side is shut after the response, and whatever
    the client still sends is read and dropped until it closes too, or LINGER seconds pass.
    """

    LINGER = 2.0

    def __init__(self, transport: asyncio.Transport, lingering: set[asyncio.Transport]) -> None:
        try:
            transport.write_eof()
        except OSError:  # the client is already gone: nothing left to protect
            transport.close()
            return
        # The server aborts what is still lingering when it stops.
        self._lingering = lingering
        self._transport = transport
        lingering.add(transport)
        transport.set_protocol(self)
        transport.resume_reading()
        asyncio.get_running_loop().call_later(self.LINGER, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lingering.discard(self._transport)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False


def _original_of(transport: asyncio.Transport) -> tuple[str, int] | None:
    """Where a transparent-mode client was connecting; None if it was not redirected."""
    sock = transport.get_extra_info("socket")
    try:
        return original_destination(sock) if sock is not None else None
    except OSError as exc:
        log.warning("cannot read the original destination of a connection: %s", exc)
        return None


def _may_be_tls_record(data: bytes | bytearray) -> bool:
    """``data`` starts like a TLS record of any type (RFC 8446 §5.1), or is too short to tell."""
    return data[0] in (20, 21, 22, 23) and (len(data) < 2 or data[1] == 3)


def _is_local_address(host: str) -> bool:
    """``host`` is an address of this machine (it can be bound to)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            return False
    return True


def _reset(transport: asyncio.Transport) -> None:
    """Close with a reset (SO_LINGER 0): the client must not mistake it for a clean end."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _host_named(head: RequestHead) -> str | None:
    """The host a request's Host header names (transparent HTTP names its flow by it)."""
    value = header_value(head.headers, b"host")
    if not value:
        return None
    try:
        return parse_target(b"GET", b"http://" + value + b"/").host
    except ProtocolError:
        return None


def _show(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# Servers' certificates whose names were read lately (each key holds one DER, 1-2 KiB).
FORGED_NAMES_CACHE = 512


@dataclass(frozen=True, slots=True)
class _ServerCertificate:
    """What waylay reads from a server's certificate: names to copy, and what flows show."""

    cn: str | None
    dns: tuple[str, ...]
    ips: tuple[IPAddress, ...]
    names: tuple[str, ...]
    issuer: str | None
    not_before: float | None
    not_after: float | None


@functools.lru_cache(maxsize=FORGED_NAMES_CACHE)
def _server_certificate(der: bytes | None) -> _ServerCertificate:
    """A server's certificate as it came (DER), read once: parsing it again for every new
    connection to the same server was 4% of one (the benchmark's S3 profile)."""
    if der is None:
        return _ServerCertificate(None, (), (), (), None, None, None)
    cert = x509.load_der_x509_certificate(der)
    cn, dns, ips = names_from_certificate(cert)
    try:
        issuer: str | None = cert.issuer.rfc4514_string()
    except ValueError:
        issuer = None
    names = tuple(dict.fromkeys([*([cn] if cn else []), *dns, *map(str, ips)]))
    return _ServerCertificate(
        cn, tuple(dns), tuple(ips), names, issuer,
        cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp(),
    )  # fmt: skip


@functools.lru_cache(maxsize=FORGED_NAMES_CACHE)
def _forged_names(der: bytes | None, sni: str | None, connect_host: str) -> CertNames:
    """The names a forged certificate must carry: the server's own, the SNI, the CONNECT host."""
    if der is None:
        return merge_names(
            upstream_cn=None, upstream_dns=(), upstream_ips=(), sni=sni, connect_host=connect_host
        )
    seen = _server_certificate(der)
    cn, dns, ips = seen.cn, seen.dns, seen.ips
    return merge_names(
        upstream_cn=cn, upstream_dns=dns, upstream_ips=ips, sni=sni, connect_host=connect_host
    )
