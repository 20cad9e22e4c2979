"""Server replay: answer requests from a flow database instead of contacting the server.

`--server-replay FILE` indexes FILE's flows that have a response whose body was stored
whole, by method and URL. A live request with the same method and URL gets the stored
response (status, reason, fields, body) from waylay itself; with several stored flows for one
key they are served in the order they were recorded, and the last keeps being served once
all were used. Requests with no stored match go to the server as usual, or with
``--server-replay-strict`` get a 404 (`X-Waylay-Error: not-in-server-replay`).

Matching ignores request bodies: a body streams, and deciding on it would mean holding it
first (the addons issue brings that buffering). Bodies are read off the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from waylay.flow import Flow, Response
from waylay.http1.forwarding import forward_response_headers
from waylay.http1.head import Headers
from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.schema import RESPONSE_BODY, RESPONSE_DROPPED, RESPONSE_TRUNCATED

_INCOMPLETE = RESPONSE_TRUNCATED | RESPONSE_DROPPED


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    response: Response
    body: bytes

    def head_fields(self, *, close: bool) -> Headers:
        """The stored fields as waylay sends them: the body's length, never chunked."""
        fields = [
            (name, value)
            for name, value in forward_response_headers(self.response.headers, close=close)
            if name.lower() not in (b"content-length", b"transfer-encoding")
        ]
        fields.append((b"Content-Length", b"%d" % len(self.body)))
        return fields


class ServerReplay:
    """The stored responses of one flow database, by (method, URL)."""

    def __init__(self, path: Path, *, strict: bool = False) -> None:
        self.path = path
        self.strict = strict
        self._db = open_readonly(path)
        self._index: dict[tuple[bytes, str], list[int]] = {}
        self._served: dict[tuple[bytes, str], int] = {}
        for flow in iter_flows(
            self._db, "f.kind = 'http' AND f.status IS NOT NULL AND f.status >= 200"
        ):
            if flow.capture_flags & _INCOMPLETE or flow.request.method == b"CONNECT":
                continue
            assert flow.store_id is not None
            self._index.setdefault(_key(flow), []).append(flow.store_id)
        self._responses = {
            flow.store_id: flow.response
            for flow in iter_flows(self._db, "f.status IS NOT NULL")
            if flow.response is not None
        }

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._index.values())

    async def answer(self, flow: Flow) -> StoredAnswer | None:
        """The stored answer for ``flow``'s request, or None when there is none."""
        key = _key(flow)
        ids = self._index.get(key)
        if not ids:
            return None
        turn = self._served.get(key, 0)
        self._served[key] = turn + 1
        store_id = ids[min(turn, len(ids) - 1)]
        response = self._responses[store_id]
        assert response is not None
        data = await asyncio.to_thread(_read_body, self.path, store_id)
        return StoredAnswer(response, data)

    def close(self) -> None:
        self._db.close()


def _key(flow: Flow) -> tuple[bytes, str]:
    return (flow.request.method, flow.request.url)


def _read_body(path: Path, store_id: int) -> bytes:
    # Its own connection: sqlite3 connections are not shared between threads here.
    db = open_readonly(path)
    try:
        return body(db, store_id, RESPONSE_BODY)
    finally:
        db.close()
