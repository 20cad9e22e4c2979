"""Server replay: answer requests from a flow database instead of contacting the server.

`--server-replay FILE` indexes FILE's flows that have a response whose body was stored
whole, by method and URL. A live request with the same method, URL and body gets the stored
response (status, reason, fields, body) from waylay itself; with several stored flows for one
request they are served in the order they were recorded, and the last keeps being served once
all were used. Requests with no stored match go to the server as usual, or with
``--server-replay-strict`` get a 404 (`X-Waylay-Error: not-in-server-replay`).

Bodies are compared whole, so the live request's body is read before the decision — up to
MATCH_BODY_LIMIT; a longer one (or one whose stored copy was truncated) matches nothing,
unless ``--server-replay-ignore-content`` says to match on method and URL alone, as
mitmproxy's ``server_replay_ignore_content`` does. Stored bodies are read off the event loop,
only for requests whose method and URL matched, and remembered by their digest.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

from waylay.flow import Flow, Response
from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.schema import (
    REQUEST_BODY,
    REQUEST_DROPPED,
    REQUEST_TRUNCATED,
    RESPONSE_BODY,
    RESPONSE_DROPPED,
    RESPONSE_TRUNCATED,
)

_INCOMPLETE = RESPONSE_TRUNCATED | RESPONSE_DROPPED
_REQUEST_INCOMPLETE = REQUEST_TRUNCATED | REQUEST_DROPPED

# The longest live request body waylay reads ahead to compare with the stored ones.
MATCH_BODY_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    response: Response
    body: bytes


class ServerReplay:
    """The stored responses of one flow database, by (method, URL)."""

    def __init__(self, path: Path, *, strict: bool = False, ignore_content: bool = False) -> None:
        self.path = path
        self.strict = strict
        self.ignore_content = ignore_content
        self._db = open_readonly(path)
        self._index: dict[tuple[str, str], list[int]] = {}
        self._served: dict[tuple[str, str, bytes | None], int] = {}
        # Stored flows whose request body was not kept whole: they match only without bodies.
        self._unknown_body: set[int] = set()
        self._digests: dict[int, bytes] = {}
        for flow in iter_flows(
            self._db, "f.kind = 'http' AND f.status IS NOT NULL AND f.status >= 200"
        ):
            if flow.capture_flags & _INCOMPLETE or flow.request.method == "CONNECT":
                continue
            assert flow.store_id is not None
            self._index.setdefault(_key(flow), []).append(flow.store_id)
            if flow.capture_flags & _REQUEST_INCOMPLETE:
                self._unknown_body.add(flow.store_id)
        self._responses = {
            flow.store_id: flow.response
            for flow in iter_flows(self._db, "f.status IS NOT NULL")
            if flow.response is not None
        }

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._index.values())

    def wants_body(self, flow: Flow) -> bool:
        """Whether deciding on ``flow`` needs its request body (its method and URL match)."""
        return not self.ignore_content and _key(flow) in self._index

    async def answer(self, flow: Flow, request_body: bytes | None = b"") -> StoredAnswer | None:
        """The stored answer for ``flow``'s request, or None when there is none.

        ``request_body`` is the live request's whole body; None when it is not known (longer
        than MATCH_BODY_LIMIT): then only --server-replay-ignore-content can match.
        """
        method, url = _key(flow)
        ids = self._index.get((method, url))
        if not ids:
            return None
        digest: bytes | None = None
        if not self.ignore_content:
            if request_body is None:
                return None
            digest = hashlib.sha256(request_body).digest()
            ids = [i for i in ids if await self._digest(i) == digest]
            if not ids:
                return None
        key = (method, url, digest)
        turn = self._served.get(key, 0)
        self._served[key] = turn + 1
        store_id = ids[min(turn, len(ids) - 1)]
        response = self._responses[store_id]
        assert response is not None
        data = await asyncio.to_thread(_read_body, self.path, store_id, RESPONSE_BODY)
        return StoredAnswer(response, data)

    async def _digest(self, store_id: int) -> bytes | None:
        """The SHA-256 of a stored request body; None when it was not stored whole."""
        if store_id in self._unknown_body:
            return None
        digest = self._digests.get(store_id)
        if digest is None:
            data = await asyncio.to_thread(_read_body, self.path, store_id, REQUEST_BODY)
            digest = self._digests[store_id] = hashlib.sha256(data).digest()
        return digest

    def close(self) -> None:
        self._db.close()


def _key(flow: Flow) -> tuple[str, str]:
    return (flow.request.method, flow.request.url)


def _read_body(path: Path, store_id: int, part: int) -> bytes:
    # Its own connection: sqlite3 connections are not shared between threads here.
    db = open_readonly(path)
    try:
        return body(db, store_id, part)
    finally:
        db.close()
