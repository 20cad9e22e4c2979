"""The flow database's schema: creation, version checks, and flows as rows and back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from waylay.errors import ConfigError
from waylay.flow import Error, Flow, Request, Response, Timestamps, TlsDetails
from waylay.headers import Headers
from waylay.store.rows import (
    INSERT_FLOW,
    INSERT_HEAD,
    SELECT_FLOWS,
    flow_from_row,
    flow_row,
    head_rows,
)
from waylay.store.schema import APPLICATION_ID, SCHEMA_VERSION, prepare


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    prepare(db, str(path))
    return db


def test_a_new_file_gets_the_schema_and_its_version(tmp_path: Path) -> None:
    db = _open(tmp_path / "flows.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"flows", "heads", "bodies", "ids"}
    views = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='view'")}
    assert views == {"headers"}


def test_opening_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    _open(path).close()
    before = path.read_bytes()
    _open(path).close()
    assert path.read_bytes() == before


def test_a_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    db = _open(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="newer waylay"):
        _open(path)
    assert path.read_bytes() == before


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(ConfigError, match="not a waylay flow database"):
        _open(path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not flows\n" * 100)
    with pytest.raises(ConfigError, match="not a waylay flow database"):
        _open(path)
    assert path.read_bytes() == b"these are not flows\n" * 100


def test_a_flow_round_trips_through_its_rows(tmp_path: Path) -> None:
    db = _open(tmp_path / "flows.db")
    flow = Flow(
        ("127.0.0.1", 5000),
        Request(
            "POST",
            "https",
            "api.example.test",
            8443,
            "/v1/x?q=1",
            "HTTP/1.1",
            Headers([(b"Host", b"api.example.test:8443"), (b"X-Bin", b"\xe9t\xe9")]),
            trailers=Headers([(b"X-Sum", b"1")]),
        ),
        server_address=("127.0.0.1", 8443),
        response=Response(200, "OK", "HTTP/1.1", Headers([(b"Content-Type", b"application/json")])),
        error=Error("the server closed the connection mid-response", "upstream-error"),
        timestamps=Timestamps(
            start=1000.5, request_sent=1000.75, first_response_byte=1001.0, end=1001.25
        ),
        request_body_size=3,
        response_body_size=10,
        capture_flags=2,
    )
    db.execute(INSERT_FLOW, flow_row(flow, 7))
    db.executemany(INSERT_HEAD, head_rows(flow, 7))
    row = db.execute(SELECT_FLOWS + " WHERE f.id = 7").fetchone()
    headers: dict[int, list[tuple[str, str]]] = {}
    for part, name, value in db.execute(
        "SELECT part, name, value FROM headers WHERE flow = 7 ORDER BY part, idx"
    ):
        headers.setdefault(part, []).append((name, value))
    back = flow_from_row(row, headers)
    assert back.request == flow.request
    assert back.response == flow.response
    assert back.error == flow.error
    assert back.timestamps == flow.timestamps
    assert (back.store_id, back.capture_flags) == (7, 2)
    assert back.server_address == flow.server_address
    assert (back.client_tls, back.server_tls) == (None, None)


CLIENT_TLS = TlsDetails("TLSv1.3", "http/1.1", "api.example.test", ("api.example.test",))
SERVER_TLS = TlsDetails(
    "TLSv1.2",
    None,
    sni="api.example.test",
    cert_names=("api.example.test", "*.example.test", "caf\u00e9.test"),
    issuer="CN=Test CA,O=Exämple",
    not_before=1700000000.0,
    not_after=1800000000.5,
)


@pytest.mark.parametrize(
    ("client", "server"),
    [(CLIENT_TLS, SERVER_TLS), (CLIENT_TLS, None), (None, SERVER_TLS), (None, None)],
)
def test_each_sides_tls_round_trips_through_the_tls_column(
    tmp_path: Path, client: TlsDetails | None, server: TlsDetails | None
) -> None:
    db = _open(tmp_path / "flows.db")
    flow = Flow(
        ("127.0.0.1", 5000),
        Request("GET", "https", "api.example.test", 443, "/", "HTTP/1.1", Headers([])),
    )
    flow.client_tls, flow.server_tls = client, server
    db.execute(INSERT_FLOW, flow_row(flow, 1))
    row = db.execute(SELECT_FLOWS).fetchone()
    back = flow_from_row(row)
    assert (back.client_tls, back.server_tls) == (client, server)
    assert flow_from_row(row, tls=False).client_tls is None  # a listing never parses it
    (text,) = db.execute("SELECT tls FROM flows").fetchone()
    if client is None and server is None:
        assert text is None
    else:  # compact, and queryable with SQLite's JSON functions
        assert ", " not in text and ": " not in text
        assert db.execute("SELECT json_extract(tls, '$.server.issuer') FROM flows").fetchone() == (
            server.issuer if server else None,
        )


def test_unknown_middle_moments_are_null_and_read_back_as_zero(tmp_path: Path) -> None:
    db = _open(tmp_path / "flows.db")
    flow = Flow(
        ("127.0.0.1", 5000),
        Request("GET", "http", "example.test", 80, "/", "HTTP/1.1", Headers([])),
    )
    flow.timestamps = Timestamps(start=1000.0, end=1000.5)
    db.execute(INSERT_FLOW, flow_row(flow, 1))
    assert db.execute("SELECT request_sent, first_response_byte FROM flows").fetchone() == (
        None,
        None,
    )
    assert flow_from_row(db.execute(SELECT_FLOWS).fetchone()).timestamps == flow.timestamps
