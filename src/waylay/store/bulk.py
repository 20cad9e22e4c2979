"""Writing many finished flows into a flow database at once: for `waylay har import`.

The proxy records through `FlowStore`, whose writer thread exists so the event loop never
waits on the disk. An import has no event loop and nothing to keep flowing: it wants all of
its flows in the file or none of them. So this writes them on the caller's thread in one
transaction — an import that fails half-way leaves the database as it was — with bodies cut
into the same rows (``CHUNK_SIZE``) the proxy writes, so readers cannot tell imported flows from
recorded ones.

Ids are reserved in the file's `ids` table inside the transaction (`BEGIN IMMEDIATE` holds
the write lock from the start), as the proxy's FlowStore reserves its blocks: an import into a
file a running waylay is saving to takes ids that waylay will never use.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from waylay.errors import ConfigError
from waylay.flow import Flow
from waylay.store.flowstore import CHUNK_SIZE, open_database
from waylay.store.rows import INSERT_BODY, INSERT_FLOW, INSERT_HEAD, flow_row, head_rows
from waylay.store.schema import REQUEST_BODY, RESPONSE_BODY, reserve_ids


def body_rows(
    store_id: int, part: int, data: bytes | None, *, chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[int, int, int, bytes]]:
    """The `bodies` rows of one body: chunks of at most ``chunk_size``; none for empty or None."""
    if not data:
        return
    for seq, start in enumerate(range(0, len(data), chunk_size)):
        yield (store_id, part, seq, data[start : start + chunk_size])


def append_flows(
    path: Path,
    flows: Iterable[tuple[Flow, bytes | None, bytes | None]],
    *,
    busy_timeout: float = 5.0,
) -> list[int]:
    """Append ``flows`` (each with its request and response body, None when not captured) to
    the flow database at ``path`` in one transaction; their new ids, in order.

    The file is created (0600) when absent. ConfigError, naming ``path``, for a file that is
    not a waylay database or cannot be written; a file refused is left as it was, and a file
    this call created is removed again when the write fails. Another writer holding the file
    is waited for up to ``busy_timeout`` seconds.
    """
    existed = path.exists()
    db = open_database(path)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    try:
        ids = _append(db, path, flows)
    except BaseException:
        db.close()
        if not existed:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        raise
    db.close()
    return ids


def _append(
    db: sqlite3.Connection, path: Path, flows: Iterable[tuple[Flow, bytes | None, bytes | None]]
) -> list[int]:
    ids: list[int] = []
    try:
        db.execute("BEGIN IMMEDIATE")
        next_id = reserve_ids(db, 0)  # the count is known at the end: claimed there
        for flow, request_body, response_body in flows:
            store_id = next_id + len(ids)
            db.execute(INSERT_FLOW, flow_row(flow, store_id))
            db.executemany(INSERT_HEAD, head_rows(flow, store_id))
            db.executemany(INSERT_BODY, body_rows(store_id, REQUEST_BODY, request_body))
            db.executemany(INSERT_BODY, body_rows(store_id, RESPONSE_BODY, response_body))
            ids.append(store_id)
        db.execute("UPDATE ids SET next = ?", (next_id + len(ids),))
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise ConfigError(f"cannot write to {path}: {exc}") from None
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return ids
