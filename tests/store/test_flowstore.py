"""FlowStore: batching to the writer thread, body capture in rows, limits, closing."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from waylay.errors import ConfigError
from waylay.flow import Flow, Request, Response, Timestamps
from waylay.headers import Headers
from waylay.store.flowstore import CHUNK_SIZE, FlowStore
from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.schema import (
    REQUEST_BODY,
    RESPONSE_BODY,
    RESPONSE_DROPPED,
    RESPONSE_TRUNCATED,
)


def _flow(path: str = "/") -> Flow:
    request = Request("GET", "http", "origin.example.test", 80, path, "HTTP/1.1",
                      Headers([(b"Host", b"origin.example.test")]))  # fmt: skip
    flow = Flow(("127.0.0.1", 4000), request, timestamps=Timestamps(start=1.0, end=2.0))
    flow.response = Response(200, "OK", "HTTP/1.1", Headers([(b"Content-Length", b"3")]))
    return flow


def _run(store: FlowStore, work: object) -> None:
    async def scenario() -> None:
        work()  # type: ignore[operator]
        await asyncio.sleep(0)

    asyncio.run(scenario())


def test_flows_are_written_and_read_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path)
    _run(store, lambda: [store.append(_flow(f"/{n}")) for n in range(250)])
    store.close()
    db = open_readonly(path)
    assert [f.request.path for f in iter_flows(db)] == [f"/{n}" for n in range(250)]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_body_is_stored_in_rows_and_joins_back(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path)
    data = os.urandom(2 * CHUNK_SIZE + 12345)
    flow = _flow()

    def work() -> None:
        capture = store.capture(flow, RESPONSE_BODY)
        assert capture is not None
        for start in range(0, len(data), 70000):
            capture(data[start : start + 70000])
        store.append(flow, capture)

    _run(store, work)
    store.close()
    db = open_readonly(path)
    assert flow.store_id is not None
    assert body(db, flow.store_id, RESPONSE_BODY) == data
    sizes = [r[0] for r in db.execute("SELECT length(data) FROM bodies ORDER BY seq")]
    assert sizes == [CHUNK_SIZE, CHUNK_SIZE, 12345]
    assert body(db, flow.store_id, REQUEST_BODY) == b""


def test_a_capture_keeps_its_own_copy_of_a_reused_buffer_and_splits_big_pieces(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path)
    big = os.urandom(2 * CHUNK_SIZE + 5)  # one piece, more than two rows
    flow = _flow()

    def work() -> None:
        capture = store.capture(flow, RESPONSE_BODY)
        assert capture is not None
        scratch = bytearray(b"a" * 1000)
        capture(memoryview(scratch))  # e.g. a TLS layer's read buffer, reused after the call
        scratch[:] = b"b" * 1000
        capture(big)
        store.append(flow, capture)

    _run(store, work)
    store.close()
    db = open_readonly(path)
    assert flow.store_id is not None
    assert body(db, flow.store_id, RESPONSE_BODY) == b"a" * 1000 + big
    sizes = [r[0] for r in db.execute("SELECT length(data) FROM bodies ORDER BY seq")]
    assert sizes == [CHUNK_SIZE, CHUNK_SIZE, 1005]


def test_a_body_over_the_limit_is_stored_truncated_and_marked(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path, body_limit=1000)
    flow = _flow()

    def work() -> None:
        capture = store.capture(flow, RESPONSE_BODY)
        assert capture is not None
        for _ in range(10):
            capture(b"x" * 300)
        store.append(flow, capture)

    _run(store, work)
    store.close()
    db = open_readonly(path)
    assert flow.store_id is not None
    assert body(db, flow.store_id, RESPONSE_BODY) == b"x" * 1000
    (stored,) = iter_flows(db)
    assert stored.capture_flags == RESPONSE_TRUNCATED


def test_when_the_writer_is_behind_capture_is_dropped_and_marked(tmp_path: Path) -> None:
    store = FlowStore(tmp_path / "flows.db", max_pending_bytes=CHUNK_SIZE)
    flow = _flow()

    def work() -> None:
        capture = store.capture(flow, RESPONSE_BODY)
        assert capture is not None
        # Nothing reaches the writer before the loop turns: the second MiB has no room.
        capture(b"y" * (3 * CHUNK_SIZE))
        store.append(flow, capture)

    _run(store, work)
    store.close()
    assert flow.capture_flags & RESPONSE_DROPPED
    assert store.dropped_bodies == 1


def test_a_body_limit_of_zero_keeps_no_body(tmp_path: Path) -> None:
    store = FlowStore(tmp_path / "flows.db", body_limit=0)
    assert store.capture(_flow(), RESPONSE_BODY) is None
    store.close()


def test_appending_keeps_the_flows_already_there(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    for run in range(2):
        store = FlowStore(path)
        _run(store, lambda: [store.append(_flow(f"/{run}-{n}")) for n in range(3)])  # noqa: B023
        store.close()
    db = open_readonly(path)
    assert [f.store_id for f in iter_flows(db)] == [1, 2, 3, 4, 5, 6]


def test_a_proxy_and_an_import_writing_one_file_never_share_ids(tmp_path: Path) -> None:
    from waylay.store.bulk import append_flows

    path = tmp_path / "flows.db"
    store = FlowStore(path)  # reserves a block of ids, as a running proxy does
    imported = append_flows(path, [(_flow("/imported"), None, None)])
    _run(store, lambda: store.append(_flow("/recorded")))
    store.close()
    db = open_readonly(path)
    stored = {f.request.path: f.store_id for f in iter_flows(db)}
    assert stored == {"/imported": imported[0], "/recorded": 1}
    assert imported[0] != 1


def test_a_temporary_store_is_removed_at_close() -> None:
    store = FlowStore.temporary()
    _run(store, lambda: store.append(_flow()))
    directory = store.path.parent
    assert store.path.exists()
    store.close()
    assert not directory.exists()


@pytest.mark.parametrize("content", [b"not a database at all" * 50, b""])
def test_a_file_that_is_not_a_flow_database_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "flows.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE notes (x)")
    other.commit()
    other.close()
    if content:
        path.write_bytes(content)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="not a waylay flow database"):
        FlowStore(path)
    assert path.read_bytes() == before


def test_a_tcp_flow_round_trips_with_its_first_bytes_capped(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path)
    request = Request("", "tcp", "198.18.2.2", 7, "", "", Headers())
    flow = Flow(
        ("198.18.1.2", 4000), request, timestamps=Timestamps(start=1.0, end=2.0), kind="tcp"
    )
    flow.request_body_size, flow.response_body_size = 100, 5000

    def work() -> None:
        up = store.capture(flow, REQUEST_BODY, limit=4096)
        down = store.capture(flow, RESPONSE_BODY, limit=4096)
        assert up is not None and down is not None
        up(b"u" * 100)
        down(b"d" * 3000)
        down(b"e" * 2000)
        store.append(flow, up, down)

    _run(store, work)
    store.close()
    db = open_readonly(path)
    (stored,) = iter_flows(db)
    assert stored.kind == "tcp" and stored.request.url == "tcp://198.18.2.2:7"
    assert stored.request.method == "" and stored.response is None
    assert (stored.request_body_size, stored.response_body_size) == (100, 5000)
    assert body(db, stored.store_id, REQUEST_BODY) == b"u" * 100
    assert body(db, stored.store_id, RESPONSE_BODY) == b"d" * 3000 + b"e" * 1096
    assert stored.capture_flags & RESPONSE_TRUNCATED
    assert db.execute("SELECT method, path FROM flows").fetchone() == (None, None)
