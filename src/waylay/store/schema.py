"""The flow database's schema, its version, and the migrations between versions.

A waylay database is an SQLite file whose ``PRAGMA application_id`` says it is one and whose
``PRAGMA user_version`` is the schema version. Opening a file runs the forward migrations up
to ``SCHEMA_VERSION``; a file from a newer waylay is refused with a message, never touched,
so an older waylay can never damage what a newer one wrote.

The schema is also an interface: people query it with SQL (docs/flows.md documents it).
Header names and values are TEXT decoded as Latin-1, which maps every byte to one character
and back, so they round-trip exactly; bodies are BLOBs in chunks of at most 1 MiB.
"""

from __future__ import annotations

import sqlite3

from waylay.errors import ConfigError

# "wayl" in ASCII: what makes a file a waylay database rather than any SQLite file.
APPLICATION_ID = 0x7761796C
SCHEMA_VERSION = 1

# Header parts (the `part` column of `headers`) and body parts (of `bodies`).
REQUEST_HEADERS, RESPONSE_HEADERS, REQUEST_TRAILERS, RESPONSE_TRAILERS = 0, 1, 2, 3
REQUEST_BODY, RESPONSE_BODY = 0, 1

# Bits of `flows.flags`.
REQUEST_TRUNCATED = 1  # the request body went over --body-limit: stored truncated
RESPONSE_TRUNCATED = 2
REQUEST_DROPPED = 4  # the writer fell behind: the request body was not stored
RESPONSE_DROPPED = 8

_V1 = """
CREATE TABLE flows (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                 -- 'http', 'tcp' (later 'websocket')
    started REAL NOT NULL,              -- seconds since the epoch
    ended REAL,
    client_host TEXT NOT NULL,
    client_port INTEGER NOT NULL,
    server_host TEXT,                   -- the address connected to, if any
    server_port INTEGER,
    method TEXT,
    scheme TEXT,
    host TEXT,                          -- lowercase; IPv6 without brackets
    port INTEGER,
    path TEXT,                          -- origin form, with the query
    url TEXT,
    http_version TEXT,
    request_content_type TEXT,
    request_size INTEGER NOT NULL DEFAULT 0,    -- body bytes, as transferred
    status INTEGER,                     -- NULL: no response
    reason TEXT,
    response_http_version TEXT,
    response_content_type TEXT,
    response_size INTEGER NOT NULL DEFAULT 0,
    error TEXT,                         -- why the flow failed, if it did
    error_code TEXT,                    -- its X-Waylay-Error code
    flags INTEGER NOT NULL DEFAULT 0,
    replay_of INTEGER REFERENCES flows (id)
);
CREATE INDEX flows_started ON flows (started);
CREATE INDEX flows_host ON flows (host);
CREATE TABLE headers (
    flow INTEGER NOT NULL,
    part INTEGER NOT NULL,              -- 0 request, 1 response, 2/3 their trailers
    idx INTEGER NOT NULL,               -- the field's position: order is kept
    name TEXT NOT NULL,                 -- as sent (case kept)
    value TEXT NOT NULL,
    PRIMARY KEY (flow, part, idx)
) WITHOUT ROWID;
-- The next flow id no writer has taken: each writer reserves a block of ids here in a write
-- transaction, so a proxy saving to a file and an import into it never take the same ids.
CREATE TABLE ids (next INTEGER NOT NULL);
INSERT INTO ids (next) VALUES (1);
CREATE TABLE bodies (
    flow INTEGER NOT NULL,
    part INTEGER NOT NULL,              -- 0 request, 1 response
    seq INTEGER NOT NULL,               -- chunks in order, each at most 1 MiB
    data BLOB NOT NULL,
    PRIMARY KEY (flow, part, seq)
) WITHOUT ROWID;
"""

# MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS: dict[int, str] = {0: _V1}


def prepare(db: sqlite3.Connection, path: str) -> None:
    """Check that ``db`` is a waylay database this waylay can use, and bring it up to date.

    An empty file becomes a new database. Raises ConfigError (naming ``path``) for a file that
    is not SQLite, not waylay's, or from a newer waylay; such a file is left as it was.
    """
    try:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path}: not a waylay flow database ({exc})") from None
    if application_id == 0 and version == 0 and tables == 0:
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    elif application_id != APPLICATION_ID:
        raise ConfigError(f"{path}: an SQLite database, but not a waylay flow database")
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: written by a newer waylay (schema version {version}; this waylay "
            f"knows up to {SCHEMA_VERSION}): upgrade waylay to read it"
        )
    while version < SCHEMA_VERSION:
        with db:
            db.executescript("BEGIN;" + MIGRATIONS[version])
            version += 1
            db.execute(f"PRAGMA user_version = {version}")


def check_readable(db: sqlite3.Connection, path: str) -> None:
    """Check, without writing, that ``db`` is a waylay database of this waylay's version."""
    try:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path}: not a waylay flow database ({exc})") from None
    if application_id != APPLICATION_ID:
        raise ConfigError(f"{path}: not a waylay flow database")
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: written by a newer waylay (schema version {version}; this waylay "
            f"knows up to {SCHEMA_VERSION}): upgrade waylay to read it"
        )
    if version < SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: written by an older waylay (schema version {version}): "
            f"`waylay dump --save {path}` upgrades it"
        )


def reserve_ids(db: sqlite3.Connection, count: int) -> int:
    """Reserve ``count`` flow ids for this writer; the first of them.

    Call it inside a write transaction (`BEGIN IMMEDIATE`): that is what makes the block
    this writer's alone, whatever other processes write to the file.
    """
    (first,) = db.execute(
        "SELECT max(next, (SELECT coalesce(max(id), 0) + 1 FROM flows)) FROM ids"
    ).fetchone()
    db.execute("UPDATE ids SET next = ?", (first + count,))
    return int(first)
