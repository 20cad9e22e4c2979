"""Reading a flow database: for `waylay flows`, HAR export, replay and the web UI.

Readers open the file read-only on their own connection, so they work on a database that a
running waylay is writing (WAL mode lets readers and the one writer proceed together), and
they can never modify or upgrade a file they were only asked to show.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from waylay.errors import ConfigError
from waylay.flow import Flow
from waylay.store.rows import SELECT_FLOWS, fields_from_json, flow_from_row
from waylay.store.schema import check_readable

# Flows are read in pages of this many: memory stays flat however many the file holds.
PAGE = 500


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to the flow database at ``path``; ConfigError if unusable."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such flow database")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open {path}: {exc}") from None
    try:
        check_readable(db, str(path))
    except ConfigError:
        db.close()
        raise
    return db


def iter_flows(
    db: sqlite3.Connection,
    where: str = "",
    params: Sequence[object] = (),
    *,
    headers: bool = True,
    by_id: bool = False,
    limit: int = -1,
    offset: int = 0,
) -> Iterator[Flow]:
    """The stored flows (in the order they started) that match the SQL ``where`` over `f`.

    ``headers=False`` leaves the flows' fields and TLS empty: a listing needs only the flows'
    own columns, and reading every head (or parsing every TLS text) would cost it more than
    the filter does. ``by_id``
    orders them by id instead (the web UI's pages: ids only grow), and ``limit`` (-1: all)
    and ``offset`` choose a page of them.
    """
    condition = f" WHERE {where}" if where else ""
    order = "f.id" if by_id else "f.started, f.id"
    query = f"{SELECT_FLOWS}{condition} ORDER BY {order} LIMIT ? OFFSET ?"
    cursor = db.execute(query, (*params, limit, offset))
    while rows := cursor.fetchmany(PAGE):
        found = _headers(db, [row[0] for row in rows]) if headers else {}
        for row in rows:
            yield flow_from_row(row, found.get(row[0], {}), tls=headers)


def _headers(db: sqlite3.Connection, ids: list[int]) -> dict[int, dict[int, list[tuple[str, str]]]]:
    marks = ", ".join("?" for _ in ids)
    found: dict[int, dict[int, list[tuple[str, str]]]] = {}
    for flow, part, fields in db.execute(
        f"SELECT flow, part, fields FROM heads WHERE flow IN ({marks})", ids
    ):
        found.setdefault(flow, {})[part] = fields_from_json(fields)
    return found


def body(db: sqlite3.Connection, store_id: int, part: int) -> bytes:
    """One stored body, whole (its chunks joined): for HAR export and replay, not for lists."""
    return b"".join(
        row[0]
        for row in db.execute(
            "SELECT data FROM bodies WHERE flow = ? AND part = ? ORDER BY seq", (store_id, part)
        )
    )
