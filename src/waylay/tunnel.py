"""A raw byte tunnel between two transports: CONNECT without interception, and `101` upgrades.

Each side gets a `TunnelEnd` protocol that writes what it receives to the other side. A full
write buffer on one side pauses reading on the other (back-pressure), an EOF is passed on as
a half-close (`write_eof`) so request/response protocols over the tunnel still work, and the
tunnel closes once both directions have ended or either side is lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class TunnelEnd(asyncio.Protocol):
    """One side of a tunnel: receives from its own transport, writes to the peer's."""

    __slots__ = ("_tunnel", "peer", "received", "tap", "transport")

    def __init__(
        self, tunnel: Tunnel, transport: asyncio.Transport, tap: Callable[[bytes], object] | None
    ) -> None:
        self._tunnel = tunnel
        self.transport = transport
        self.peer: TunnelEnd | None = None
        self.received = 0
        # Sees every byte this side sends (a TCP flow's capture); None costs nothing.
        self.tap = tap

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        assert self.peer is not None
        self.peer.transport.write(data)
        if self.tap is not None:
            self.tap(data)

    def eof_received(self) -> bool:
        assert self.peer is not None
        peer = self.peer.transport
        if peer.can_write_eof() and not peer.is_closing():
            peer.write_eof()
        self._tunnel.half_closed(self)
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._tunnel.lost(self)

    def pause_writing(self) -> None:
        assert self.peer is not None
        self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.peer is not None
        if not self.peer.transport.is_closing():
            self.peer.transport.resume_reading()


class Tunnel:
    """Joins two transports; ``closed`` resolves when either is gone."""

    __slots__ = ("_eofs", "client", "closed", "server")

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
    ) -> None:
        """Join ``client`` and ``server``.

        ``*_pending`` are bytes each side sent before the tunnel existed; ``*_full`` say
        that side's write buffer is already over its high-water mark (its transport will not
        say pause_writing again, only resume_writing), so the other side starts paused.
        """
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._eofs: set[TunnelEnd] = set()
        self.client = TunnelEnd(self, client, client_tap)
        self.server = TunnelEnd(self, server, server_tap)
        self.client.peer, self.server.peer = self.server, self.client
        # Bytes that arrived with the head that set up the tunnel belong to the tunnel.
        if client_pending:
            self.client.data_received(client_pending)
        if server_pending:
            self.server.data_received(server_pending)
        client.set_protocol(self.client)
        server.set_protocol(self.server)
        client.resume_reading()
        server.resume_reading()
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
