"""Client replay: saved requests sent again, as they were, through waylay's own data path.

Theory of operation. A replayed request goes through exactly the code a live one does — the
hosts file, upstream TLS and its verification, the hooks, the dump line, the flow store —
because replay hands its bytes to a `ClientConnection` over an in-memory transport instead of
a socket: no listener is opened, nothing but the servers is contacted. The request is written
in absolute form (`GET https://host/path HTTP/1.1`) with its stored headers and body, then an
EOF, so the connection answers it and ends. The new flow is appended to the same database,
its `replay_of` naming the original.

A request whose body was not stored whole (over --body-limit, or dropped) cannot be sent as
it was; it is skipped with a warning, as are CONNECT tunnels.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from waylay.connection import ClientConnection
from waylay.context import ProxyContext
from waylay.filters import Filter, register_functions
from waylay.flow import Flow
from waylay.http1.head import header_value
from waylay.http1.serialize import chunk, last_chunk, request_head
from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.schema import REQUEST_BODY, REQUEST_DROPPED, REQUEST_TRUNCATED

log = logging.getLogger("waylay.replay")

# The client address replayed flows show: waylay itself.
REPLAY_CLIENT = ("replay", 0)


def request_bytes(flow: Flow, request_body: bytes) -> bytes:
    """The stored request as a client would send it to a proxy: absolute form, same fields."""
    request = flow.request
    fields = request.headers.fields
    head = request_head(request.method.encode("latin-1"), request.url.encode("ascii"), fields)
    encoding = header_value(fields, b"transfer-encoding")
    if encoding is not None and encoding.lower().endswith(b"chunked"):
        # The store keeps the payload without its chunk framing: frame it again.
        trailers = request.trailers.fields if request.trailers else ()
        return head + chunk(request_body) + last_chunk(trailers)
    return head + request_body


class _ReplayTransport(asyncio.Transport):
    """The client side of one replayed request: takes the response, ends when it closes."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        super().__init__()
        self._done = done
        self._protocol: asyncio.BaseProtocol | None = None
        self._closing = False

    def write(self, data: Any) -> None:
        pass  # the response is recorded by the flow store; nobody reads it here

    def writelines(self, list_of_data: Any) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.close()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        protocol = self._protocol
        loop = asyncio.get_running_loop()
        if protocol is not None:
            loop.call_soon(protocol.connection_lost, None)
        loop.call_soon(self._finish)

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self._closing

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return REPLAY_CLIENT if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0


async def replay_one(ctx: ProxyContext, flow: Flow, request_body: bytes) -> None:
    """Send ``flow``'s request again through a ClientConnection; return once it is done."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    transport = _ReplayTransport(done)
    connection = ClientConnection(ctx)
    connection.replay_of = flow.store_id
    transport.set_protocol(connection)
    connection.connection_made(transport)
    connection.data_received(request_bytes(flow, request_body))
    connection.eof_received()
    await done


async def replay_stored(ctx: ProxyContext, only: Filter | None = None) -> int:
    """Replay the stored flows that ``only`` matches (all without it); the number replayed."""
    path = ctx.store.path
    db = open_readonly(path)
    where, params = only.to_sql() if only is not None else ("", [])
    register_functions(db)
    try:
        # The selection is fixed before the first replay: the new flows land in the same file.
        selected = [flow.store_id for flow in iter_flows(db, where, params)]
        count = 0
        for store_id in selected:
            (flow,) = iter_flows(db, "f.id = ?", (store_id,))
            if flow.kind != "http":
                log.warning("flow %s is a raw TCP connection: not replayed", store_id)
                continue
            if flow.request.method == "CONNECT":
                log.warning("flow %s is a CONNECT tunnel: not replayed", store_id)
                continue
            if flow.capture_flags & (REQUEST_TRUNCATED | REQUEST_DROPPED):
                log.warning(
                    "flow %s: its request body was not stored whole: not replayed", store_id
                )
                continue
            assert store_id is not None
            await replay_one(ctx, flow, body(db, store_id, REQUEST_BODY))
            count += 1
        return count
    finally:
        db.close()
