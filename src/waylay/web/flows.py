"""The stored flows' API (docs/web.md): pages of the list, one flow, its bodies, export, HAR,
replay, delete and clear.

Theory of operation
-------------------
The flow store is the truth and the page asks it for what it shows: a page of the list is one
query with the filter compiled to SQL (`Filter.to_sql`), and `total` one COUNT, however many
flows the file holds. Every read opens its own read-only connection in a worker thread
(`asyncio.to_thread`), so the proxy, which shares this event loop, never waits on SQLite;
WAL mode lets those readers and the store's writer work at once. Every write — delete, clear,
and the flow a replay adds — goes through the store's one writer thread (`FlowStore.delete`,
`clear`), in order with the flows it is recording.

A replay runs the request through the proxy's own data path (`replay.replay_one`, as `waylay
replay` does) and answers with the new flow's id once that flow is committed. The new flow is
recognised as it is handed to the store: it replays this stored flow and comes from replay's
client. Two replays of one stored flow run one after the other, so that is unambiguous.

Bodies are answered as stored, with the message's Content-Type, but never as a page of the
UI's origin: `Content-Security-Policy: sandbox` makes a captured HTML page (or SVG) an opaque
origin without scripts, so opening a captured body cannot act on the UI with its cookie.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import mimetypes
import sqlite3
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from waylay import __version__
from waylay.encoding import decode
from waylay.filters import Filter, FilterError, parse_filter, register_functions
from waylay.flow import Flow
from waylay.har import write_har
from waylay.http1.head import header_value
from waylay.replay import REPLAY_CLIENT, replay_one
from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.schema import REQUEST_BODY, REQUEST_DROPPED, REQUEST_TRUNCATED, RESPONSE_BODY
from waylay.web.export import curl_command, httpx_code
from waylay.web.live import EditError, edit_request
from waylay.web.shapes import detail, summary
from waylay.web.state import WebState

T = TypeVar("T")

# SQLite's largest integer: no id, offset or count is larger.
MAX_ID = 2**63 - 1
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# A body is decoded (`?decoded=1`) up to this size; a bigger one is served as stored.
MAX_DECODED_BODY = 64 * 1024 * 1024
# HAR files are sent in pieces of this size, from a temporary file.
HAR_PIECE = 256 * 1024
# The list's sortable columns (`sort=`) and the SQL each sorts by; ties go by id, so a sort
# is stable and its windows never overlap. Text sorts ignore ASCII case, as the page shows it.
# `type` is the content type SUMMARY shows: the response's, or the request's when there is
# no response (no status); `duration` is 0 while a flow is open, as in SUMMARY.
SORTS = {
    "id": "f.id",
    "started": "f.started",
    "method": "f.method COLLATE NOCASE",
    "host": "f.host COLLATE NOCASE",
    "path": "f.path COLLATE NOCASE",
    "status": "f.status",
    "type": "(CASE WHEN f.status IS NULL THEN f.request_content_type"
    " ELSE f.response_content_type END) COLLATE NOCASE",
    "size": "f.response_size",
    "duration": "coalesce(f.ended - f.started, 0)",
}
ORDERS = {"asc": "ASC", "desc": "DESC"}
_PARTS = {"request": REQUEST_BODY, "response": RESPONSE_BODY}
_EXPORTS: dict[str, Callable[[Flow, bytes], str]] = {"curl": curl_command, "httpx": httpx_code}
# A captured body must never run as a page of the UI's origin (see the module docstring).
_BODY_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; "
    "style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}


class _BadRequest(Exception):
    """A 400: what the page asked for cannot be answered, and why."""

    def __init__(self, reason: str, **extra: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.extra = extra


def error_response(status: int, reason: str, **extra: object) -> web.Response:
    """`{"error": REASON, ...}` with ``status``: the API's one shape of an error."""
    return web.json_response({"error": reason, **extra}, status=status)


def _filter(text: str | None) -> Filter | None:
    if not text:
        return None
    try:
        return parse_filter(text)
    except FilterError as exc:
        raise _BadRequest(exc.reason, column=exc.column) from None


def _number(request: web.Request, name: str, default: int | None, most: int = MAX_ID) -> Any:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdecimal()):
        raise _BadRequest(f"{name}: a whole number is needed, not {text!r}")
    value = int(text)
    if value > most:
        raise _BadRequest(f"{name}: at most {most}")
    return value


def _ordering(request: web.Request) -> str:
    """The SQL ORDER BY of ``sort=`` and ``order=`` (default: id ascending)."""
    column = request.query.get("sort") or "id"
    direction = request.query.get("order") or "asc"
    if column not in SORTS:
        raise _BadRequest(f"sort: one of {', '.join(SORTS)}, not {column!r}")
    if direction not in ORDERS:
        raise _BadRequest(f"order: asc or desc, not {direction!r}")
    word = ORDERS[direction]
    if column == "id":
        return f"f.id {word}"
    return f"{SORTS[column]} {word}, f.id {word}"


def _flow_id(request: web.Request) -> int:
    """The id the path names; 404 for one no flow can have (SQLite's ids are 64-bit)."""
    store_id = int(request.match_info["id"])
    if store_id > MAX_ID:
        raise web.HTTPNotFound(
            text=json.dumps({"error": f"no flow {store_id}"}), content_type="application/json"
        )
    return store_id


class _OnePerFlow:
    """Replays of one stored flow run one after the other (see the module docstring)."""

    def __init__(self) -> None:
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: Counter[int] = Counter()

    @contextlib.asynccontextmanager
    async def hold(self, store_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(store_id, asyncio.Lock())
        self._users[store_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._users[store_id] -= 1
            if not self._users[store_id]:
                del self._users[store_id], self._locks[store_id]


class StoredFlows:
    """The routes over the flow store of ``state``'s proxy."""

    def __init__(self, state: WebState) -> None:
        self.state = state
        self._replays = _OnePerFlow()

    def routes(self) -> list[web.RouteDef]:
        flow = r"/api/flows/{id:\d+}"
        return [
            web.get("/api/info", self.info),
            web.get("/api/flows", self.list_flows),
            web.post("/api/flows/clear", self.clear),
            web.get(flow, self.one_flow),
            web.delete(flow, self.delete),
            web.get(flow + "/{part:request|response}/body", self.message_body),
            web.get(flow + "/export", self.export),
            web.post(flow + "/replay", self.replay),
            web.get("/api/har", self.har),
        ]

    # -- reading ---------------------------------------------------------------------------

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` on a read-only connection of its own, in a worker thread."""
        path = self.state.ctx.store.path

        def run() -> T:
            db = open_readonly(path)
            try:
                register_functions(db)
                return work(db)
            finally:
                db.close()

        return await asyncio.to_thread(run)

    async def _stored(self, request: web.Request) -> tuple[Flow, dict[int, int]]:
        """The flow the path names, and the body bytes stored for it by part; 404 if none."""
        store_id = _flow_id(request)

        def read(db: sqlite3.Connection) -> tuple[Flow, dict[int, int]] | None:
            found = list(iter_flows(db, "f.id = ?", (store_id,)))
            if not found:
                return None
            sizes = db.execute(
                "SELECT part, sum(length(data)) FROM bodies WHERE flow = ? GROUP BY part",
                (store_id,),
            )
            return found[0], {part: size for part, size in sizes}

        stored = await self._read(read)
        if stored is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no flow {store_id}"}), content_type="application/json"
            )
        return stored

    async def _body(self, store_id: int, part: int) -> bytes:
        return await self._read(lambda db: body(db, store_id, part))

    def summaries(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        """SUMMARY of each stored flow of ``ids`` still there, in id order (runs in a thread:
        the store's commit listener's reader, for /api/updates)."""
        path = self.state.ctx.store.path
        db = open_readonly(path)
        try:
            marks = ", ".join("?" for _ in ids)
            return [summary(flow) for flow in iter_flows(db, f"f.id IN ({marks})", ids, by_id=True)]
        finally:
            db.close()

    # -- the routes ------------------------------------------------------------------------

    async def info(self, request: web.Request) -> web.Response:
        state = self.state
        intercept = state.intercept
        return web.json_response(
            {
                "version": __version__,
                "listen": state.listen,
                "mode": state.ctx.options.mode,
                "web": state.web,
                "install_page": "http://waylay.test/",
                "intercept": None if intercept is None else intercept.text,
            }
        )

    async def list_flows(self, request: web.Request) -> web.Response:
        try:
            only = _filter(request.query.get("filter"))
            offset = _number(request, "offset", 0)
            limit = _number(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)
            after = _number(request, "after", None)
            ordering = _ordering(request)
        except _BadRequest as exc:
            return error_response(400, exc.reason, **exc.extra)
        where, params = only.to_sql() if only is not None else ("", [])

        def read(db: sqlite3.Connection) -> dict[str, Any]:
            condition = f"({where})" if where else "1"
            total = db.execute(f"SELECT count(*) FROM flows AS f WHERE {condition}", params)
            if after is not None:
                condition += " AND f.id > ?"
            # The window's ids first, then their rows: SQLite's sorter then carries an id and
            # a key per flow, not whole rows, which makes a deep window of 100,000 flows
            # sorted by a column several times faster.
            ids = [
                row[0]
                for row in db.execute(
                    f"SELECT f.id FROM flows AS f WHERE {condition} ORDER BY {ordering}"
                    " LIMIT ? OFFSET ?",
                    [*params, *([after] if after is not None else []), limit, offset],
                )
            ]
            marks = ", ".join("?" for _ in ids)
            found = {flow.store_id: flow for flow in iter_flows(db, f"f.id IN ({marks})", ids)}
            return {
                "total": total.fetchone()[0],
                "flows": [summary(found[store_id]) for store_id in ids if store_id in found],
            }

        return web.json_response(await self._read(read))

    async def one_flow(self, request: web.Request) -> web.Response:
        flow, stored = await self._stored(request)
        return web.json_response(detail(flow, stored=stored))

    async def message_body(self, request: web.Request) -> web.Response:
        flow, _ = await self._stored(request)
        side = request.match_info["part"]
        message = flow.request if side == "request" else flow.response
        assert flow.store_id is not None
        if message is None:
            return error_response(404, f"flow {flow.store_id} has no response")
        data = await self._body(flow.store_id, _PARTS[side])
        headers = dict(_BODY_HEADERS)
        headers["Content-Type"] = message.headers.get("content-type") or "application/octet-stream"
        if request.query.get("decoded") == "1":
            try:
                data = decode(
                    data, message.headers.get("content-encoding"), max_size=MAX_DECODED_BODY
                )
                headers["X-Waylay-Decoded"] = "yes"
            except ValueError:
                headers["X-Waylay-Decoded"] = "no"
        if request.query.get("download") == "1":
            base = headers["Content-Type"].split(";")[0].strip()
            extension = mimetypes.guess_extension(base) or ".bin"
            name = f"waylay-{flow.store_id}-{side}{extension}"
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return web.Response(body=data, headers=headers)

    async def export(self, request: web.Request) -> web.Response:
        form = request.query.get("format", "")
        render = _EXPORTS.get(form)
        if render is None:
            return error_response(400, f"format: curl or httpx, not {form!r}")
        flow, _ = await self._stored(request)
        assert flow.store_id is not None
        try:
            text = render(flow, await self._body(flow.store_id, REQUEST_BODY))
        except ValueError as exc:
            return error_response(400, str(exc))
        return web.Response(text=text + "\n", content_type="text/plain", charset="utf-8")

    async def har(self, request: web.Request) -> web.StreamResponse:
        try:
            only = _filter(request.query.get("filter"))
        except _BadRequest as exc:
            return error_response(400, exc.reason, **exc.extra)
        # Written whole to a temporary file first (a HAR of every flow can be large): an
        # error while reading is then still an error response, and memory stays flat.
        spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, after the response)
        try:

            def write(db: sqlite3.Connection) -> None:
                text = io.TextIOWrapper(spool, encoding="utf-8", write_through=True)
                write_har(db, text, only=only)
                text.detach()

            await self._read(write)
            response = web.StreamResponse(
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Content-Disposition": 'attachment; filename="waylay.har"',
                }
            )
            response.content_length = spool.tell()
            spool.seek(0)
            await response.prepare(request)
            while piece := await asyncio.to_thread(spool.read, HAR_PIECE):
                await response.write(piece)
            await response.write_eof()
            return response
        finally:
            spool.close()

    # -- changing --------------------------------------------------------------------------

    async def delete(self, request: web.Request) -> web.Response:
        store_id = _flow_id(request)
        deleted = await self.state.ctx.store.delete([store_id])
        if not deleted:
            return error_response(404, f"no flow {store_id}")
        self.state.broadcast({"type": "deleted", "id": store_id})
        return web.Response(status=204)

    async def clear(self, request: web.Request) -> web.Response:
        await self.state.ctx.store.clear()
        self.state.broadcast({"type": "cleared"})
        return web.Response(status=204)

    async def replay(self, request: web.Request) -> web.Response:
        changes: dict[str, Any] = {}
        if request.can_read_body:
            try:
                changes = await request.json()
            except ValueError:
                return error_response(400, "the body must be JSON")
            if not isinstance(changes, dict):
                return error_response(400, "the body must be a JSON object")
        flow, _ = await self._stored(request)
        assert flow.store_id is not None
        try:
            sent = await self._replayable(flow, changes)
        except (_BadRequest, EditError) as exc:
            return error_response(400, str(exc))
        new_id = await self._replay(flow, sent)
        if new_id is None:
            return error_response(500, "the replay recorded no flow (see waylay's log)")
        return web.json_response({"id": new_id})

    async def _replayable(self, flow: Flow, changes: dict[str, Any]) -> bytes:
        """``flow`` edited as ``changes`` say; the body to send with it."""
        assert flow.store_id is not None
        if flow.kind != "http" or flow.request.method == "CONNECT":
            raise _BadRequest("only an HTTP request can be replayed (not a tunnel or TCP flow)")
        request = flow.request
        new_body = "body" in changes or "body_base64" in changes
        if not new_body and flow.capture_flags & (REQUEST_TRUNCATED | REQUEST_DROPPED):
            raise _BadRequest("the request's body was not stored whole: give one to replay it")
        request.raw_content = await self._body(flow.store_id, REQUEST_BODY)
        if not new_body and len(request.raw_content) < flow.request_body_size:
            raise _BadRequest("the request's body was not stored: give one to replay it")
        edit_request(request, changes)
        sent = request.raw_content or b""
        # The framing follows the body sent, whatever the edited fields said: a stale
        # Content-Length would split or join requests on the server's connection.
        fields = request.headers
        encoding = header_value(fields.fields, b"transfer-encoding")
        if encoding is not None:
            if not encoding.lower().endswith(b"chunked"):
                raise _BadRequest("a request's Transfer-Encoding must end with chunked")
            if "content-length" in fields:
                del fields["content-length"]
        elif sent or "content-length" in fields:
            fields["content-length"] = str(len(sent))
        return sent

    async def _replay(self, original: Flow, sent: bytes) -> int | None:
        store = self.state.ctx.store
        store_id = original.store_id
        assert store_id is not None
        async with self._replays.hold(store_id):
            recorded: list[Flow] = []

            def watch(flow: Flow) -> None:
                if flow.replay_of == store_id and flow.client_address == REPLAY_CLIENT:
                    recorded.append(flow)

            store.append_listeners.append(watch)
            try:
                await replay_one(self.state.ctx, original, sent)
            finally:
                store.append_listeners.remove(watch)
            if not recorded:
                return None
            await store.flush()
            return recorded[0].store_id
