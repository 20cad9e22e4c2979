"""Recording flows into the database without the proxy ever waiting on the disk.

Theory of operation. The event loop never touches SQLite. It turns each finished flow into
rows (`rows.py`) and appends them to a batch; at most every ``BATCH_INTERVAL`` seconds the
batch — a plain list — is handed to one writer thread, which writes every batch it finds
waiting in one transaction. One hand-off per interval rather than one queue operation per
flow is what keeps recording cheap (ARCHITECTURE.md measured ~17 µs per `queue.put`).

Bodies are captured as they stream (`BodyCapture`, a sink the body's `Reframer` feeds): the
pieces are kept until they make a `bodies` row of ``CHUNK_SIZE`` (256 KiB), so a body of any
size costs at most that much RAM per direction while it streams. Past ``body_limit`` the
rest is not kept (the flow is marked truncated); when more than ``max_pending_bytes`` (8 MiB)
of body rows wait for the writer, capture stops and the flow is marked dropped — the traffic
is never slowed for the record's sake. The writer lets go of each row as SQLite takes it, so
the bound is what the proxy holds.

The bound is what a 1 GiB download through a recording waylay costs in memory: on top of
what it peaks at without recording, the bound, the row being joined, SQLite's copies of the
row being inserted and its page cache. Measured (docs/performance.md): +11 MiB with 8 MiB and
256 KiB rows, +16 MiB with 1 MiB rows, +19-20 MiB with 12 MiB and 1 MiB rows. Such a download
outruns the writer, which shares the proxy's core, and keeps only its first 12-18 MiB; at
network speeds the writer keeps up.

Crash safety: WAL mode with ``synchronous=NORMAL`` survives a killed process; a flow is
committed within about ``BATCH_INTERVAL`` plus one transaction of its end.

The writer is the store's only writer, so what else changes the file goes through its queue
too, in order with the flows: `delete` and `clear` (the web UI's), and `flush`, which resolves
once everything appended before it is committed. Listeners hear of flows twice, both times on
the event loop: `append_listeners` with the Flow as it is handed over, `commit_listeners`
with the ids of a transaction once it committed (what a reader of the file can now see).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import shutil
import sqlite3
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from waylay.errors import ConfigError
from waylay.flow import Flow
from waylay.store.rows import (
    INSERT_BODY,
    INSERT_FLOW,
    INSERT_HEAD,
    encoded_head_rows,
    flow_row,
    header_parts,
)
from waylay.store.schema import (
    REQUEST_BODY,
    REQUEST_DROPPED,
    REQUEST_TRUNCATED,
    RESPONSE_DROPPED,
    RESPONSE_TRUNCATED,
    prepare,
    reserve_ids,
)

log = logging.getLogger("waylay.store")

# The size of a body row (the schema allows up to 1 MiB). Every row is held about three times
# on its way (joined from its pieces, then SQLite's copy to bind and its copy to build the
# record), so the row size is paid several times in peak memory: 256 KiB rather than 1 MiB took
# 5 MiB off a recording download's peak, and is asyncio's largest read, so a read can be a row.
CHUNK_SIZE = 256 * 1024
BATCH_INTERVAL = 0.05
# A batch holding this much body data goes to the writer at once, not at the next interval:
# a fast body would otherwise pile up an interval's worth of megabytes in the loop.
HANDOFF_BYTES = 2 * 1024 * 1024
# Flow ids reserved at a time (schema.reserve_ids): gaps between writers are harmless.
ID_BLOCK = 1_000_000
DEFAULT_BODY_LIMIT = 64 * 1024 * 1024

# One item of a batch: ("flow", flow row, header_parts) or ("body", body row, None); or a
# command run in its place in the order: ("delete", ids, future), ("clear", None, future),
# ("flush", None, future).
_Item = tuple[str, Any, Any]
_RECORDS = frozenset({"flow", "body"})
# A transaction's deletes: the flows' bodies, heads and rows (bodies first: they are most).
_DELETE_ONE = (
    "DELETE FROM bodies WHERE flow = ?",
    "DELETE FROM heads WHERE flow = ?",
)
# Bodies of flows not yet committed (still streaming) are not the committed flows': kept.
_DELETE_ALL = (
    "DELETE FROM bodies WHERE flow IN (SELECT id FROM flows)",
    "DELETE FROM heads WHERE flow IN (SELECT id FROM flows)",
)


def open_database(path: Path) -> sqlite3.Connection:
    """A connection to the flow database at ``path``, created 0600 and brought up to date."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open {path}: {exc.strerror}") from None
    os.close(fd)
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open {path}: {exc}") from None
    try:
        prepare(db, str(path))
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise ConfigError(f"{path}: cannot use WAL mode (journal_mode is {mode})")
        db.execute("PRAGMA synchronous = NORMAL")
    except ConfigError:
        db.close()
        raise
    except sqlite3.DatabaseError as exc:
        db.close()
        raise ConfigError(f"{path}: not a usable waylay flow database ({exc})") from None
    return db


class BodyCapture:
    """A sink for one body's bytes as they stream: rows of CHUNK_SIZE, up to the body limit.

    It keeps the pieces it is given (references, not copies) until they add up to a row, then
    joins them once: a row costs one copy, and no buffer grows and is sliced behind it.
    """

    __slots__ = ("_dropped_flag", "_flow", "_held", "_limit", "_part", "_pieces", "_seq",
                 "_store", "_truncated_flag", "active", "kept")  # fmt: skip

    def __init__(self, store: FlowStore, flow: Flow, part: int, limit: int) -> None:
        self._store = store
        self._limit = limit
        self._flow = flow
        self._part = part
        self._pieces: list[bytes] = []
        self._held = 0
        self._seq = 0
        self.kept = 0
        self.active = True
        request = part == REQUEST_BODY
        self._truncated_flag = REQUEST_TRUNCATED if request else RESPONSE_TRUNCATED
        self._dropped_flag = REQUEST_DROPPED if request else RESPONSE_DROPPED

    def __call__(self, data: bytes) -> None:
        if not self.active:
            return
        room = self._limit - self.kept
        if len(data) > room:
            data = data[:room]
            self._flow.capture_flags |= self._truncated_flag
            self.active = False
        if type(data) is not bytes:  # a view of a buffer its owner will reuse: copy it
            data = bytes(data)
        self.kept += len(data)
        self._pieces.append(data)
        self._held += len(data)
        if self._held >= CHUNK_SIZE:
            self._emit_rows()

    def _emit_rows(self) -> None:
        # A single piece joins to itself: a read of exactly a row is not copied at all.
        joined = b"".join(self._pieces)
        self._pieces, self._held = [], 0
        start = 0
        while len(joined) - start >= CHUNK_SIZE:
            whole = start == 0 and len(joined) == CHUNK_SIZE
            if not self._emit(joined if whole else joined[start : start + CHUNK_SIZE]):
                return
            start += CHUNK_SIZE
        if start < len(joined):
            rest = joined[start:]
            self._pieces, self._held = [rest], len(rest)

    def _emit(self, piece: bytes) -> bool:
        if not self._store.take_body(piece, self._flow, self._part, self._seq):
            self._flow.capture_flags |= self._dropped_flag
            self.active = False
            self._pieces, self._held = [], 0
            return False
        self._seq += 1
        return True

    def finish(self) -> None:
        """Hand over what is left; called once, when the flow is recorded."""
        if self._pieces:
            self._emit(b"".join(self._pieces))
        self._pieces, self._held = [], 0
        self.active = False


class FlowStore:
    """Where the proxy's flows go: a database file, appended to from the event loop."""

    def __init__(
        self,
        path: Path,
        *,
        temporary: bool = False,
        body_limit: int = DEFAULT_BODY_LIMIT,
        max_pending_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.path = path
        self.body_limit = body_limit
        self.max_pending_bytes = max_pending_bytes
        self._temporary = temporary
        db = open_database(path)
        self._next_id = self._id_limit = 0
        self._reserve_ids(db)
        self._queue: queue.SimpleQueue[list[_Item] | None] = queue.SimpleQueue()
        self._batch: list[_Item] = []
        self._batch_bytes = 0
        self._handoff: asyncio.TimerHandle | None = None
        self._enqueued_bytes = 0
        self._written_bytes = 0  # only the writer thread adds to it
        self.dropped_bodies = 0
        # Called on the event loop: with each flow append() takes, and with the ids of the
        # flows each transaction committed.
        self.append_listeners: list[Callable[[Flow], None]] = []
        self.commit_listeners: list[Callable[[list[int]], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._write, args=(db,), name="waylay-store")
        self._thread.daemon = True
        self._thread.start()

    @classmethod
    def temporary(cls, *, body_limit: int = DEFAULT_BODY_LIMIT) -> FlowStore:
        """A store in a private temporary directory, removed by `close`."""
        directory = Path(tempfile.mkdtemp(prefix="waylay-flows-"))
        return cls(directory / "flows.db", temporary=True, body_limit=body_limit)

    # -- the event loop's side -----------------------------------------------------------

    def capture(self, flow: Flow, part: int, limit: int | None = None) -> BodyCapture | None:
        """A sink for one of ``flow``'s bodies, or None when bodies are not kept.

        It keeps up to the body limit, or up to ``limit`` when that is smaller.
        """
        if self.body_limit <= 0:
            return None
        if flow.store_id is None:
            flow.store_id = self._take_id()
        limit = self.body_limit if limit is None else min(limit, self.body_limit)
        return BodyCapture(self, flow, part, limit)

    def take_body(self, piece: bytes, flow: Flow, part: int, seq: int) -> bool:
        """Queue one chunk of a body; False when the writer is too far behind to take it."""
        if self._enqueued_bytes - self._written_bytes + len(piece) > self.max_pending_bytes:
            self.dropped_bodies += 1
            return False
        self._enqueued_bytes += len(piece)
        assert flow.store_id is not None
        self._add(("body", (flow.store_id, part, seq, piece), None))
        self._batch_bytes += len(piece)
        if self._batch_bytes >= HANDOFF_BYTES:
            self._hand_off()
        return True

    def append(self, flow: Flow, *captures: BodyCapture | None) -> None:
        """Record a finished flow (with what its captures still hold)."""
        for capture in captures:
            if capture is not None:
                capture.finish()
        store_id = flow.store_id
        if store_id is None:
            store_id = flow.store_id = self._take_id()
        # The fields stay the flow's own bytes until the writer encodes them, a head at a
        # time: a batch never holds a second, encoded copy of every head.
        self._add(("flow", flow_row(flow, store_id), header_parts(flow)))
        for listener in self.append_listeners:
            listener(flow)

    async def delete(self, ids: Iterable[int]) -> list[int]:
        """Delete the flows ``ids`` (bodies and heads too); the ids that were there."""
        deleted: list[int] = await self._command("delete", tuple(ids))
        return deleted

    async def clear(self) -> int:
        """Delete every committed flow; how many there were. Flow ids are never reused."""
        count: int = await self._command("clear", None)
        return count

    async def flush(self) -> None:
        """Return once every flow appended so far is committed (or failed to be)."""
        await self._command("flush", None)

    def _command(self, kind: str, argument: Any) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        self._add((kind, argument, future))
        self._hand_off()
        return future

    def _take_id(self) -> int:
        if self._next_id >= self._id_limit:
            # Once per ID_BLOCK flows: a short write transaction on a connection of its own
            # (the writer thread's is not to be shared).
            db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            try:
                self._reserve_ids(db)
            finally:
                db.close()
        store_id = self._next_id
        self._next_id += 1
        return store_id

    def _give_back_ids(self) -> None:
        """Return the unused rest of the id block, unless another writer reserved after it."""
        with contextlib.suppress(sqlite3.Error):
            db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            try:
                db.execute(
                    "UPDATE ids SET next = ? WHERE next = ?", (self._next_id, self._id_limit)
                )
            finally:
                db.close()

    def _reserve_ids(self, db: sqlite3.Connection) -> None:
        try:
            db.execute("BEGIN IMMEDIATE")
            self._next_id = reserve_ids(db, ID_BLOCK)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise ConfigError(f"cannot reserve flow ids in {self.path}: {exc}") from None
        self._id_limit = self._next_id + ID_BLOCK

    def _add(self, item: _Item) -> None:
        self._batch.append(item)
        if self._handoff is None:
            loop = self._loop = asyncio.get_running_loop()
            self._handoff = loop.call_later(BATCH_INTERVAL, self._hand_off)

    def _hand_off(self) -> None:
        if self._handoff is not None:
            self._handoff.cancel()
            self._handoff = None
        if self._batch:
            batch, self._batch = self._batch, []
            self._batch_bytes = 0
            self._queue.put(batch)

    def close(self) -> None:
        """Write what is pending, stop the writer, and remove a temporary database."""
        if self._handoff is not None:
            self._handoff.cancel()
            self._handoff = None
        if self._batch:
            self._queue.put(self._batch)
            self._batch = []
        self._queue.put(None)
        self._thread.join()
        if not self._temporary:
            self._give_back_ids()
        if self._temporary:
            shutil.rmtree(self.path.parent, ignore_errors=True)

    # -- the writer thread ---------------------------------------------------------------

    def _write(self, db: sqlite3.Connection) -> None:
        try:
            while True:
                batches = [self._queue.get()]
                with contextlib.suppress(queue.Empty):
                    while batches[-1] is not None:
                        batches.append(self._queue.get_nowait())
                stop = batches[-1] is None
                items = deque(item for b in batches if b is not None for item in b)
                del batches  # `items` is then all that holds the bodies: _commit lets go of them
                while items:
                    records = []
                    while items and items[0][0] in _RECORDS:
                        records.append(items.popleft())
                    if records:
                        self._commit(db, records)
                    if items:
                        self._run(db, *items.popleft())
                if stop:
                    return
        finally:
            db.close()

    def _run(self, db: sqlite3.Connection, kind: str, argument: Any, future: Any) -> None:
        """A command of the queue, in a transaction of its own; its result to its future."""
        result: Any = None
        error: BaseException | None = None
        try:
            if kind == "delete":
                db.execute("BEGIN")
                result = []
                for store_id in argument:
                    for statement in _DELETE_ONE:
                        db.execute(statement, (store_id,))
                    if db.execute("DELETE FROM flows WHERE id = ?", (store_id,)).rowcount:
                        result.append(store_id)
                db.execute("COMMIT")
            elif kind == "clear":
                db.execute("BEGIN")
                for statement in _DELETE_ALL:
                    db.execute(statement)
                result = db.execute("DELETE FROM flows").rowcount
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            error = exc
        self._call_soon(_settle, future, result, error)

    def _call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback`` on the event loop (from the writer thread)."""
        loop = self._loop
        if loop is not None:
            # A loop already closed (the proxy is stopping) has nobody left to tell.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback, *args)

    def _committed(self, ids: list[int]) -> None:
        for listener in self.commit_listeners:
            listener(ids)

    def _commit(self, db: sqlite3.Connection, items: list[_Item]) -> None:
        flows, bodies = [], []
        heads: list[tuple[int, Any]] = []
        for kind, row, extra in items:
            if kind == "flow":
                flows.append(row)
                heads.append((row[0], extra))
            else:
                bodies.append(row)
        items.clear()
        try:
            db.execute("BEGIN")
            db.executemany(INSERT_BODY, self._drain(bodies))
            db.executemany(INSERT_FLOW, flows)
            db.executemany(
                INSERT_HEAD,
                (row for store_id, parts in heads for row in encoded_head_rows(store_id, parts)),
            )
            db.execute("COMMIT")
            if self.commit_listeners and flows:
                self._call_soon(self._committed, [row[0] for row in flows])
        except sqlite3.Error as exc:
            # The disk is full or the file went away: the proxy goes on, the record does not.
            log.error("cannot write %d flows to %s: %s", len(flows), self.path, exc)
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            self._written_bytes += sum(len(row[3]) for row in bodies)

    def _drain(self, bodies: list[tuple[int, int, int, bytes]]) -> Iterator[Any]:
        """``bodies``' rows for executemany, each let go of (and no longer pending) once
        SQLite has it: what the proxy holds for the writer is what it has not written yet,
        not the whole transaction (``max_pending_bytes`` bounds real memory)."""
        bodies.reverse()
        while bodies:
            row = bodies.pop()
            self._written_bytes += len(row[3])
            yield row
            del row


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return  # its caller stopped waiting
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
