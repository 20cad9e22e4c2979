"""append_flows: many flows in one transaction, into new and existing databases, or not at all."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from waylay.errors import ConfigError
from waylay.flow import Error, Flow, Request, Response, Timestamps
from waylay.headers import Headers
from waylay.store.bulk import append_flows
from waylay.store.flowstore import CHUNK_SIZE, open_database
from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.schema import REQUEST_BODY, RESPONSE_BODY, SCHEMA_VERSION


def _flow(path: str = "/", *, response: bool = True) -> Flow:
    fields = [(b"Host", b"api.example.test:8443"), (b"X-Case", b"Kept")]
    request = Request("POST", "https", "api.example.test", 8443, path, "HTTP/1.1", Headers(fields))
    flow = Flow(("127.0.0.1", 4000), request, timestamps=Timestamps(start=10.0, end=10.5))
    if response:
        flow.response = Response(
            201, "Created", "HTTP/1.1", Headers([(b"content-type", b"text/plain")])
        )
    else:
        flow.error = Error("the server reset the connection", "upstream-reset")
    return flow


def _bodies(path: Path, store_id: int) -> tuple[bytes, bytes]:
    db = open_readonly(path)
    try:
        return body(db, store_id, REQUEST_BODY), body(db, store_id, RESPONSE_BODY)
    finally:
        db.close()


def _chunk_sizes(path: Path, store_id: int, part: int) -> list[int]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute(
            "SELECT length(data) FROM bodies WHERE flow = ? AND part = ? ORDER BY seq",
            (store_id, part),
        )
        return [row[0] for row in rows]
    finally:
        db.close()


def test_a_new_database_is_created_0600_with_the_flows_in_order(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    flows = [(_flow("/a"), b"ping", b"pong"), (_flow("/b", response=False), None, None)]
    ids = append_flows(path, flows)
    assert ids == [1, 2]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    db = open_readonly(path)
    stored = list(iter_flows(db))
    db.close()
    assert [f.request.path for f in stored] == ["/a", "/b"]
    assert stored[0].request.headers.fields == [
        (b"Host", b"api.example.test:8443"),
        (b"X-Case", b"Kept"),
    ]
    assert stored[0].response is not None and stored[0].response.status_code == 201
    assert stored[1].response is None
    assert stored[1].error == Error("the server reset the connection", "upstream-reset")
    assert _bodies(path, 1) == (b"ping", b"pong")
    assert _bodies(path, 2) == (b"", b"")


def test_an_existing_database_keeps_its_flows_and_ids_continue(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    assert append_flows(path, [(_flow(f"/{n}"), None, b"old") for n in range(3)]) == [1, 2, 3]
    assert append_flows(path, [(_flow("/new"), None, b"new")]) == [4]
    db = open_readonly(path)
    assert [f.request.path for f in iter_flows(db)] == ["/0", "/1", "/2", "/new"]
    db.close()
    assert _bodies(path, 2) == (b"", b"old")
    assert _bodies(path, 4) == (b"", b"new")


def test_ids_follow_the_largest_even_after_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    append_flows(path, [(_flow(), None, None)] * 3)
    db = open_database(path)
    db.execute("DELETE FROM flows WHERE id = 2")
    db.close()
    assert append_flows(path, [(_flow(), None, None)]) == [4]


def test_bodies_are_stored_in_rows_of_chunk_size(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    upload = os.urandom(CHUNK_SIZE)  # exactly one row
    download = os.urandom(2 * CHUNK_SIZE + 12345)
    (store_id,) = append_flows(path, [(_flow(), upload, download)])
    assert _chunk_sizes(path, store_id, REQUEST_BODY) == [CHUNK_SIZE]
    assert _chunk_sizes(path, store_id, RESPONSE_BODY) == [CHUNK_SIZE, CHUNK_SIZE, 12345]
    assert _bodies(path, store_id) == (upload, download)


@pytest.mark.parametrize("empty", [None, b""])
def test_an_empty_or_missing_body_has_no_rows(tmp_path: Path, empty: bytes | None) -> None:
    path = tmp_path / "flows.db"
    (store_id,) = append_flows(path, [(_flow(), empty, empty)])
    assert _chunk_sizes(path, store_id, REQUEST_BODY) == []
    assert _chunk_sizes(path, store_id, RESPONSE_BODY) == []


def test_nothing_at_all_still_makes_a_database(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    assert append_flows(path, []) == []
    open_readonly(path).close()


def _notes(path: Path) -> None:
    path.write_bytes(b"these are notes, not flows\n" * 40)


def _other_sqlite(path: Path) -> None:
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE notes (x)")
    other.commit()
    other.close()


def _newer_waylay(path: Path) -> None:
    open_database(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}").connection.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_notes, "not a waylay flow database"),
        (_other_sqlite, "not a waylay flow database"),
        (_newer_waylay, "newer waylay"),
    ],
)
def test_a_file_that_is_not_a_usable_database_is_refused_and_left_alone(
    tmp_path: Path, make: object, message: str
) -> None:
    path = tmp_path / "other.db"
    make(path)  # type: ignore[operator]
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=message) as caught:
        append_flows(path, [(_flow(), b"x", b"y")])
    assert str(path) in caught.value.reason
    assert path.read_bytes() == before


def _failing(after: int) -> Iterator[tuple[Flow, bytes | None, bytes | None]]:
    for n in range(after):
        yield _flow(f"/{n}"), None, b"body" * 1000
    raise ConfigError("entry 3: bad input")


def test_a_failure_half_way_leaves_an_existing_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    append_flows(path, [(_flow("/kept"), None, b"kept")])
    with pytest.raises(ConfigError, match="entry 3"):
        append_flows(path, _failing(2))
    db = open_readonly(path)
    assert [f.request.path for f in iter_flows(db)] == ["/kept"]
    assert db.execute("SELECT count(*) FROM bodies").fetchone()[0] == 1
    db.close()


def test_a_failure_half_way_removes_a_database_it_created(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    with pytest.raises(ConfigError, match="entry 3"):
        append_flows(path, _failing(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_database_locked_by_another_writer_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    append_flows(path, [(_flow("/kept"), None, None)])
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(ConfigError, match=f"cannot write to {path}"):
            append_flows(path, [(_flow("/new"), None, None)], busy_timeout=0.1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    db = open_readonly(path)
    assert [f.request.path for f in iter_flows(db)] == ["/kept"]
    db.close()
