"""A raw byte tunnel between two transports: CONNECT without interception, and `101` upgrades.

Each side gets a `TunnelEnd` protocol that writes what it receives to the other side. A full
write buffer on one side pauses reading on the other (back-pressure), an EOF is passed on as
a half-close (`write_eof`) so request/response protocols over the tunnel still work, and the
tunnel closes once both directions have ended or either side is lost.

With ``on_message`` (addons' tcp_message hooks), each piece a side sends goes through that
coroutine first, and what it returns is written instead. The side stops reading until its
piece went on, so pieces keep their order and an EOF never overtakes them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("waylay.tunnel")

# (from the client?, the bytes) -> the bytes to send on instead.
MessageHandler = Callable[[bool, bytes], Awaitable[bytes]]


class TunnelEnd(asyncio.Protocol):
    """One side of a tunnel: receives from its own transport, writes to the peer's."""

    __slots__ = (
        "_eof_pending",
        "_holds",
        "_queue",
        "_tunnel",
        "peer",
        "received",
        "tap",
        "transport",
    )

    def __init__(
        self, tunnel: Tunnel, transport: asyncio.Transport, tap: Callable[[bytes], object] | None
    ) -> None:
        self._tunnel = tunnel
        self.transport = transport
        self.peer: TunnelEnd | None = None
        self.received = 0
        # Sees every byte this side sends (a TCP flow's capture); None costs nothing.
        self.tap = tap
        # Why reading is paused: the peer's write buffer is full, a message is with the hooks.
        self._holds: set[str] = set()
        # Pieces waiting for the message hooks, and an EOF that came after them.
        self._queue: list[bytes] | None = None
        self._eof_pending = False

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        assert self.peer is not None
        handler = self._tunnel.on_message
        if handler is not None:
            self._to_hooks(handler, data)
            return
        self.peer.transport.write(data)
        if self.tap is not None:
            self.tap(data)

    def _to_hooks(self, handler: MessageHandler, data: bytes) -> None:
        if self._queue is not None:
            self._queue.append(data)  # arrived before the pause took: after the others
            return
        self._queue = [data]
        self.hold("message")
        asyncio.get_running_loop().create_task(self._deliver(handler))

    async def _deliver(self, handler: MessageHandler) -> None:
        assert self.peer is not None and self._queue is not None
        from_client = self is self._tunnel.client
        while self._queue:
            data = self._queue.pop(0)
            try:
                out = await handler(from_client, data)
            except Exception:
                log.exception("tcp_message hooks failed: the bytes go on as they were")
                out = data
            peer = self.peer.transport
            if out and not peer.is_closing():
                peer.write(out)
                if self.tap is not None:
                    self.tap(out)
        self._queue = None
        if self._eof_pending:
            self._pass_eof()
        self.release("message")

    def eof_received(self) -> bool:
        if self._queue is not None:
            self._eof_pending = True  # after the pieces still with the hooks
            return True
        self._pass_eof()
        return True

    def _pass_eof(self) -> None:
        assert self.peer is not None
        peer = self.peer.transport
        if peer.can_write_eof() and not peer.is_closing():
            peer.write_eof()
        self._tunnel.half_closed(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._tunnel.lost(self)

    def pause_writing(self) -> None:
        assert self.peer is not None
        self.peer.hold("full")

    def resume_writing(self) -> None:
        assert self.peer is not None
        self.peer.release("full")

    def hold(self, reason: str) -> None:
        if not self._holds:
            self.transport.pause_reading()
        self._holds.add(reason)

    def release(self, reason: str) -> None:
        self._holds.discard(reason)
        if not self._holds and not self.transport.is_closing():
            self.transport.resume_reading()


class Tunnel:
    """Joins two transports; ``closed`` resolves when either is gone."""

    __slots__ = ("_eofs", "client", "closed", "on_message", "server")

    def __init__(
        self,
        client: asyncio.Transport,
        server: asyncio.Transport,
        *,
        client_pending: bytes = b"",
        server_pending: bytes = b"",
        client_full: bool = False,
        server_full: bool = False,
        client_tap: Callable[[bytes], object] | None = None,
        server_tap: Callable[[bytes], object] | None = None,
        on_message: MessageHandler | None = None,
    ) -> None:
        """Join ``client`` and ``server``.

        ``*_pending`` are bytes each side sent before the tunnel existed; ``*_full`` say
        that side's write buffer is already over its high-water mark (its transport will not
        say pause_writing again, only resume_writing), so the other side starts paused.
        """
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_message = on_message
        self._eofs: set[TunnelEnd] = set()
        self.client = TunnelEnd(self, client, client_tap)
        self.server = TunnelEnd(self, server, server_tap)
        self.client.peer, self.server.peer = self.server, self.client
        client.set_protocol(self.client)
        server.set_protocol(self.server)
        client.resume_reading()
        server.resume_reading()
        # Bytes that arrived with the head that set up the tunnel belong to the tunnel.
        if client_pending:
            self.client.data_received(client_pending)
        if server_pending:
            self.server.data_received(server_pending)
        if client_full:
            self.client.pause_writing()
        if server_full:
            self.server.pause_writing()

    def half_closed(self, end: TunnelEnd) -> None:
        self._eofs.add(end)
        if len(self._eofs) == 2:
            self.close()

    def lost(self, end: TunnelEnd) -> None:
        # One side gone ends the tunnel: the other is closed (after flushing what it still
        # has to write), and nothing it sends from now on has anywhere to go.
        self.close()
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        for end in (self.client, self.server):
            if not end.transport.is_closing():
                end.transport.close()
