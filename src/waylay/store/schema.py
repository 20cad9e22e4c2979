"""The flow database's schema, its version, and the migrations between versions.

A waylay database is an SQLite file whose ``PRAGMA application_id`` says it is one and whose
``PRAGMA user_version`` is the schema version. Opening a file runs the forward migrations up
to ``SCHEMA_VERSION``; a file from a newer waylay is refused with a message, never touched,
so an older waylay can never damage what a newer one wrote.

The schema is also an interface: people query it with SQL (docs/flows.md documents it).
Header names and values are TEXT decoded as Latin-1, which maps every byte to one character
and back, so they round-trip exactly; bodies are BLOBs in chunks of at most 1 MiB.

Version 2 is shaped by what recording costs per flow (docs/performance.md). A head is one
`heads` row, its fields a JSON array of ``[name, value]`` pairs, where version 1 had a row per
field: the writer's inserts per flow went from a dozen to three or four. `headers`, the
table of version 1, is now a view over `heads` with the same columns, so queries written for
it still run. `bodies` became a rowid table: in version 1's WITHOUT ROWID table a row of more
than about 1,000 bytes spilled into an overflow page of its own, so a 1 KiB body cost 4 KiB
of file and of writing. The view and the migration use only ``json_each``, ``json_extract``
and ``json_group_array``, part of SQLite since 3.38 (and of most builds before). The page size
stays SQLite's default (4 KiB): 16 KiB pages made the writer 15-20% cheaper per small flow,
but a recording 1 GiB download peaked 5 MiB higher, past issue 8's 60 MiB.

Version 3 adds what the web UI's detail shows (issue 7): a flow's two middle moments,
`request_sent` and `first_response_byte`, and `tls`, each side's TLS of an intercepted
connection as one compact JSON text. Three ADD COLUMNs: old rows read NULL, no row is
rewritten. `tls` is JSON rather than a dozen columns because nothing filters on it and a
listing never reads it.
"""

from __future__ import annotations

import sqlite3

from waylay.errors import ConfigError

# "wayl" in ASCII: what makes a file a waylay database rather than any SQLite file.
APPLICATION_ID = 0x7761796C
SCHEMA_VERSION = 3

# Head parts (the `part` column of `heads` and `headers`) and body parts (of `bodies`).
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

_HEADERS_VIEW = """
CREATE VIEW headers (flow, part, idx, name, value) AS
    SELECT h.flow, h.part, j.key, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]')
    FROM heads AS h, json_each(h.fields) AS j;
"""

_V1_TO_V2 = (
    """
CREATE TABLE heads (
    flow INTEGER NOT NULL,
    part INTEGER NOT NULL,              -- 0 request, 1 response, 2/3 their trailers
    fields TEXT NOT NULL,               -- JSON: [[name, value], ...] in the order sent
    PRIMARY KEY (flow, part)
) WITHOUT ROWID;
-- A window, not GROUP BY: only a window's ORDER BY fixes the order an aggregate sees rows in.
-- Each head's last row has the array of all its fields.
INSERT INTO heads (flow, part, fields)
    SELECT flow, part, fields FROM (
        SELECT flow, part,
               json_group_array(json_array(name, value)) OVER head AS fields,
               row_number() OVER head AS n,
               count(*) OVER (PARTITION BY flow, part) AS fields_in_head
        FROM headers
        WINDOW head AS (PARTITION BY flow, part ORDER BY idx ROWS UNBOUNDED PRECEDING)
    ) WHERE n = fields_in_head;
DROP TABLE headers;
ALTER TABLE bodies RENAME TO bodies_v1;
CREATE TABLE bodies (
    flow INTEGER NOT NULL,
    part INTEGER NOT NULL,              -- 0 request, 1 response
    seq INTEGER NOT NULL,               -- chunks in order, each at most 1 MiB
    data BLOB NOT NULL,
    PRIMARY KEY (flow, part, seq)
);
INSERT INTO bodies (flow, part, seq, data) SELECT flow, part, seq, data FROM bodies_v1;
DROP TABLE bodies_v1;
"""
    + _HEADERS_VIEW
)

_V2_TO_V3 = """
ALTER TABLE flows ADD COLUMN request_sent REAL;         -- NULL: not known
ALTER TABLE flows ADD COLUMN first_response_byte REAL;
-- JSON: {"client": {...} or null, "server": {...} or null}; NULL: no TLS intercepted
ALTER TABLE flows ADD COLUMN tls TEXT;
"""

# MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS: dict[int, str] = {0: _V1, 1: _V1_TO_V2, 2: _V2_TO_V3}


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
