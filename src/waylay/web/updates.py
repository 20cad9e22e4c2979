"""`/api/updates`: the WebSockets that tell open pages "there is more", and what they are told.

Theory of operation
-------------------
The store is the truth; a socket only says what changed, so a page that missed something
asks `/api/flows?after=ID` and is whole again. That is what lets a slow page be dropped
rather than waited for: each socket has its own sender task and its own queue of messages,
and a message that would put more than ``max_buffer`` bytes (queued here plus what the
transport has not sent yet) behind a socket that is already behind closes that socket
instead. The page reconnects and catches up from the store; no page can make the proxy hold
more than ``max_buffer`` bytes and one message for it, and `broadcast` never waits for
anybody.

Stored flows are announced once they are committed (`FlowStore.commit_listeners`), not when
the proxy hands them over: a page that asks for the flow it was told about finds it. Their
summaries are read from the database in a thread, a commit's worth at a time, by one task,
so the announcements go out in the order the flows were committed and the proxy's loop
never waits on SQLite.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import WSCloseCode, web

log = logging.getLogger("waylay.web")

# What one page may have waiting (queued and unsent) before its socket is dropped.
MAX_BUFFER = 1024 * 1024
# A page sends nothing the server needs: a larger message from it is a protocol error.
MAX_MESSAGE_FROM_PAGE = 4096
HEARTBEAT = 30.0
# Flows announced per read of the database.
SUMMARY_BATCH = 1000


class Subscriber:
    """One open /api/updates socket: its queue, and the task that sends it."""

    __slots__ = ("_queued", "_queued_bytes", "_sender", "_transport", "_wake", "closed", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
        self.ws = ws
        self._transport = transport
        self._queued: collections.deque[str] = collections.deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self.closed = False
        self._sender = asyncio.get_running_loop().create_task(self._send())

    def backlog(self) -> int:
        """Bytes waiting for this page: queued here, and in the transport's buffer."""
        transport = self._transport
        unsent = 0
        if transport is not None and not transport.is_closing():
            unsent = transport.get_write_buffer_size()
        return self._queued_bytes + unsent

    def offer(self, text: str, max_buffer: int) -> bool:
        """Queue ``text``; False (and the socket dropped) if that would pass ``max_buffer``.

        A page with nothing waiting takes any one message, however large: a page that keeps
        up is never dropped for one big message, and one that does not holds at most
        ``max_buffer`` and one message.
        """
        if self.closed:
            return False
        backlog = self.backlog()
        if backlog and backlog + len(text) > max_buffer:
            log.warning(
                "a web UI page fell more than %d bytes behind its updates: its socket is "
                "closed, and it catches up from the flow store when it reconnects",
                max_buffer,
            )
            self.drop()
            return False
        self._queued.append(text)
        self._queued_bytes += len(text)
        self._wake.set()
        return True

    async def _send(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queued:
                    text = self._queued.popleft()
                    self._queued_bytes -= len(text)
                    await self.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            # The page went away mid-send (aiohttp says so with either): its handler ends.
            self.drop()

    def stop(self) -> None:
        """Send nothing more (the page closed its end)."""
        self.closed = True
        self._queued.clear()
        self._queued_bytes = 0
        self._sender.cancel()

    def drop(self) -> None:
        """Close at once: the transport is aborted, so nothing more waits on a slow reader."""
        if self.closed:
            return
        self.stop()
        if self._transport is not None:
            self._transport.abort()

    async def close(self, timeout: float) -> None:
        """Say goodbye (1001, going away) to a page that reads; drop one that does not."""
        if self.closed:
            return
        self.stop()
        try:
            await asyncio.wait_for(self.ws.close(code=WSCloseCode.GOING_AWAY), timeout)
        except (TimeoutError, ConnectionError, RuntimeError):
            if self._transport is not None:
                self._transport.abort()


# Reads the summaries of stored flows by id (in a thread): flows.summaries_by_id.
SummaryReader = Callable[[Sequence[int]], list[dict[str, Any]]]


class Updates:
    """The open update sockets, and what is broadcast to them."""

    def __init__(self, *, max_buffer: int = MAX_BUFFER) -> None:
        self.max_buffer = max_buffer
        self.subscribers: set[Subscriber] = set()
        self._read_summaries: SummaryReader | None = None
        self._committed: list[int] = []
        self._announcer: asyncio.Task[None] | None = None

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send ``message`` (one JSON text) to every open page; never waits."""
        if not self.subscribers:
            return
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        for subscriber in list(self.subscribers):
            if not subscriber.offer(text, self.max_buffer):
                self.subscribers.discard(subscriber)

    # -- stored flows ----------------------------------------------------------------------

    def announce_stored(self, reader: SummaryReader) -> Callable[[list[int]], None]:
        """The store's commit listener: announces each committed flow with ``reader``'s
        summary of it."""
        self._read_summaries = reader
        return self._flows_committed

    def _flows_committed(self, ids: list[int]) -> None:
        if not self.subscribers:
            return  # nobody listens: the pages that open later read the store
        self._committed.extend(ids)
        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.get_running_loop().create_task(self._announce())

    async def _announce(self) -> None:
        reader = self._read_summaries
        assert reader is not None
        while self._committed and self.subscribers:
            ids = self._committed[:SUMMARY_BATCH]
            del self._committed[:SUMMARY_BATCH]
            try:
                summaries = await asyncio.to_thread(reader, ids)
            except Exception:
                log.exception("cannot read stored flows %d-%d for the web UI", ids[0], ids[-1])
                continue
            for summary in summaries:
                self.broadcast({"type": "flow", "flow": summary})
        self._committed.clear()

    # -- the route -------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """GET /api/updates: a WebSocket the server writes to and the page only keeps open."""
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=MAX_MESSAGE_FROM_PAGE)
        await ws.prepare(request)
        subscriber = Subscriber(ws, request.transport)
        self.subscribers.add(subscriber)
        try:
            async for _ in ws:
                pass  # nothing a page says changes what it is sent
        finally:
            self.subscribers.discard(subscriber)
            subscriber.stop()
        return ws

    async def close(self, timeout: float = 1.0) -> None:
        """Close every socket (at shutdown), and stop announcing."""
        if self._announcer is not None:
            self._announcer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._announcer
        subscribers, self.subscribers = list(self.subscribers), set()
        await asyncio.gather(*(subscriber.close(timeout) for subscriber in subscribers))
