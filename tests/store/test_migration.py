"""Schema versions 1 to 3: a file written by an older waylay opens, upgraded, with the same flows.

The v1 rows are written here as a v1 waylay wrote them (one `headers` row per field, bodies in
a WITHOUT ROWID table), the v2 rows as a v2 waylay did (no middle moments, no TLS), then the
file is opened the way `waylay dump --save` opens it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from waylay.errors import ConfigError
from waylay.flow import Flow, Request, Response, Timestamps
from waylay.headers import Headers
from waylay.store.flowstore import open_database
from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.rows import (
    FLOW_COLUMNS,
    INSERT_BODY,
    INSERT_FLOW,
    INSERT_HEAD,
    flow_row,
    head_rows,
)
from waylay.store.schema import (
    APPLICATION_ID,
    MIGRATIONS,
    REQUEST_BODY,
    RESPONSE_BODY,
    SCHEMA_VERSION,
)

# The `flows` columns of versions 1 and 2: version 3 added the last three.
V2_FLOW_COLUMNS = FLOW_COLUMNS[:-3]
assert FLOW_COLUMNS[-3:] == ("request_sent", "first_response_byte", "tls")
V2_INSERT_FLOW = (
    f"INSERT INTO flows ({', '.join(V2_FLOW_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in V2_FLOW_COLUMNS)})"
)
V1_INSERT_HEADER = "INSERT INTO headers (flow, part, idx, name, value) VALUES (?, ?, ?, ?, ?)"

# Order, case, repeats, Latin-1 beyond ASCII, and what JSON has to escape.
REQUEST_FIELDS = [
    (b"Host", b"api.example.test"),
    (b"Cookie", b"a=1"),
    (b"cookie", b"b=2"),
    (b"X-Quote", b'say "hi" \\ back\tslash'),
    (b"X-Latin", b"caf\xe9 \xff"),
]
RESPONSE_FIELDS = [
    (b"Content-Type", b"text/html"),
    (b"Set-Cookie", b"session=abc; HttpOnly"),
    (b"Set-Cookie", b"theme=dark"),
    (b"Content-Encoding", b"identity"),
]


def _flows() -> list[tuple[Flow, bytes, bytes]]:
    flows = []
    for n in range(1, 4):
        request = Request(
            "POST", "https", "api.example.test", 443, f"/v1/{n}", "HTTP/1.1",
            Headers(list(REQUEST_FIELDS)),
            trailers=Headers([(b"X-Sum", b"%d" % n)]) if n == 2 else None,
        )  # fmt: skip
        response = Response(200, "OK", "HTTP/1.1", Headers(list(RESPONSE_FIELDS)))
        flow = Flow(
            ("127.0.0.1", 5000 + n),
            request,
            ("10.0.0.1", 443),
            response,
            timestamps=Timestamps(start=1000.0 + n, end=1000.5 + n),
            request_body_size=5,
            response_body_size=3000,
        )
        flows.append((flow, b"hello", bytes(range(256)) * 11 + b"tail"))
    return flows


def _write_v1(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    with db:
        for n, (flow, request_body, response_body) in enumerate(_flows(), start=1):
            db.execute(V2_INSERT_FLOW, flow_row(flow, n)[: len(V2_FLOW_COLUMNS)])
            heads = [(0, flow.request.headers), (2, flow.request.trailers)]
            heads.append((1, flow.response.headers if flow.response else None))
            # Rows in reverse: idx, not the order of insertion, is the fields' order.
            for part, fields in reversed(heads):
                lines = fields.fields if fields is not None else []
                for idx, (name, value) in reversed(list(enumerate(lines))):
                    db.execute(
                        V1_INSERT_HEADER,
                        (n, part, idx, name.decode("latin-1"), value.decode("latin-1")),
                    )
            db.execute(INSERT_BODY, (n, REQUEST_BODY, 0, request_body))
            db.execute(INSERT_BODY, (n, RESPONSE_BODY, 0, response_body[:1000]))
            db.execute(INSERT_BODY, (n, RESPONSE_BODY, 1, response_body[1000:]))
        db.execute("UPDATE ids SET next = 4")
    db.close()


def _listed(path: Path) -> list[tuple[Flow, bytes, bytes]]:
    db = open_readonly(path)
    try:
        return [
            (flow, body(db, flow.store_id or 0, REQUEST_BODY), body(db, flow.store_id or 0, 1))
            for flow in iter_flows(db)
        ]
    finally:
        db.close()


def test_a_v1_file_is_upgraded_when_opened_to_write_and_reads_back_the_same_flows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    _write_v1(path)
    with pytest.raises(ConfigError, match=r"older waylay \(schema version 1\)"):
        open_readonly(path)  # a reader never upgrades

    open_database(path).close()

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    objects = set(db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
    assert objects == {
        ("table", "flows"), ("index", "flows_started"), ("index", "flows_host"),
        ("table", "heads"), ("view", "headers"), ("table", "ids"), ("table", "bodies"),
    }  # fmt: skip
    db.close()
    listed = _listed(path)
    assert len(listed) == 3
    for (flow, request_body, response_body), (back, stored_request, stored_response) in zip(
        _flows(), listed, strict=True
    ):
        assert back.request == flow.request
        assert back.response == flow.response
        assert back.timestamps == flow.timestamps
        assert (stored_request, stored_response) == (request_body, response_body)


def test_an_upgraded_file_heads_are_the_json_a_v2_writer_writes(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _write_v1(path)
    open_database(path).close()
    db = sqlite3.connect(path)
    migrated = db.execute("SELECT flow, part, json(fields) FROM heads ORDER BY 1, 2").fetchall()
    written = sorted(
        (n, part, db.execute("SELECT json(?)", (fields,)).fetchone()[0])
        for n, (flow, _, _) in enumerate(_flows(), start=1)
        for _, part, fields in head_rows(flow, n)
    )
    assert migrated == written


def test_an_upgraded_file_takes_new_flows_after_its_old_ones(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _write_v1(path)
    db = open_database(path)
    flow, request_body, _ = _flows()[0]
    flow.timestamps = Timestamps(start=2000.0, end=2000.5)
    with db:
        db.execute(INSERT_FLOW, flow_row(flow, 4))
        db.executemany(INSERT_HEAD, head_rows(flow, 4))
        db.execute(INSERT_BODY, (4, REQUEST_BODY, 0, request_body))
    db.close()
    listed = _listed(path)
    assert [f.store_id for f, _, _ in listed] == [1, 2, 3, 4]
    assert listed[3][0].request == flow.request


@pytest.mark.parametrize("older", [1, 2])
def test_a_current_file_is_refused_by_an_older_waylay_and_left_alone(
    tmp_path: Path, older: int
) -> None:
    """What a v1 or v2 waylay does with a v3 file: its own check, run on the file as v3 left it."""
    path = tmp_path / "new.db"
    open_database(path).close()
    before = path.read_bytes()
    db = sqlite3.connect(path)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    (tables,) = db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # v1 read this too
    db.close()
    assert (version, tables > 0) == (SCHEMA_VERSION, True)
    assert version > older  # so its prepare() raises "written by a newer waylay"
    assert path.read_bytes() == before


def _write_v2(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.executescript(MIGRATIONS[0] + MIGRATIONS[1])
    db.execute("PRAGMA user_version = 2")
    with db:
        for n, (flow, request_body, response_body) in enumerate(_flows(), start=1):
            db.execute(V2_INSERT_FLOW, flow_row(flow, n)[: len(V2_FLOW_COLUMNS)])
            db.executemany(INSERT_HEAD, head_rows(flow, n))
            db.execute(INSERT_BODY, (n, REQUEST_BODY, 0, request_body))
            db.execute(INSERT_BODY, (n, RESPONSE_BODY, 0, response_body))
        db.execute("UPDATE ids SET next = 4")
    db.close()


def test_a_v2_file_is_upgraded_and_its_flows_read_null_moments_and_no_tls(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _write_v2(path)
    with pytest.raises(ConfigError, match=r"older waylay \(schema version 2\)"):
        open_readonly(path)

    open_database(path).close()

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    assert db.execute(
        "SELECT count(*) FROM flows WHERE request_sent IS NULL AND first_response_byte IS NULL"
        " AND tls IS NULL"
    ).fetchone() == (3,)
    db.close()
    listed = _listed(path)
    assert len(listed) == 3
    for (flow, request_body, response_body), (back, stored_request, stored_response) in zip(
        _flows(), listed, strict=True
    ):
        assert back.request == flow.request
        assert back.response == flow.response
        assert back.timestamps == flow.timestamps  # start and end; the middle ones 0.0
        assert (back.client_tls, back.server_tls) == (None, None)
        assert (stored_request, stored_response) == (request_body, response_body)


# --- the view: docs/flows.md's queries, unchanged ----------------------------------------------


@pytest.fixture
def upgraded(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "old.db"
    _write_v1(path)
    open_database(path).close()
    return sqlite3.connect(path)


def test_the_headers_view_has_v1s_columns_and_rows(upgraded: sqlite3.Connection) -> None:
    rows = upgraded.execute(
        "SELECT flow, part, idx, name, value FROM headers WHERE flow = 2 ORDER BY part, idx"
    ).fetchall()
    expected = [
        *((2, 0, i, n.decode("latin-1"), v.decode("latin-1")) for i, (n, v) in
          enumerate(REQUEST_FIELDS)),
        *((2, 1, i, n.decode("latin-1"), v.decode("latin-1")) for i, (n, v) in
          enumerate(RESPONSE_FIELDS)),
        (2, 2, 0, "X-Sum", "2"),
    ]  # fmt: skip
    assert rows == expected


def test_the_documented_queries_run(upgraded: sqlite3.Connection) -> None:
    # Verbatim from docs/flows.md, "The schema".
    slowest = upgraded.execute(
        """SELECT url, status, round((ended - started) * 1000) AS ms FROM flows
 WHERE host = 'api.example.test' ORDER BY ms DESC LIMIT 10;"""
    ).fetchall()
    assert len(slowest) == 3
    cookies = upgraded.execute(
        """SELECT f.url, h.value FROM flows f JOIN headers h ON h.flow = f.id
 WHERE h.part = 1 AND lower(h.name) = 'set-cookie';"""
    ).fetchall()
    assert sorted(cookies) == sorted(
        (f"https://api.example.test/v1/{n}", value)
        for n in (1, 2, 3)
        for value in ("session=abc; HttpOnly", "theme=dark")
    )
    failures = upgraded.execute(
        "SELECT error_code, count(*) FROM flows WHERE error IS NOT NULL GROUP BY 1 ORDER BY 2 DESC;"
    ).fetchall()
    assert failures == []
