"""FlowStore's other writes and its listeners: delete, clear and flush go through the writer's
queue in order with the flows; listeners hear of appended and of committed flows on the loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from waylay.flow import Flow, Request, Response, Timestamps
from waylay.headers import Headers
from waylay.store.flowstore import FlowStore
from waylay.store.reader import iter_flows, open_readonly
from waylay.store.schema import REQUEST_BODY, RESPONSE_BODY


def _flow(path: str = "/") -> Flow:
    request = Request("POST", "http", "origin.example.test", 80, path, "HTTP/1.1",
                      Headers([(b"Host", b"origin.example.test")]))  # fmt: skip
    flow = Flow(("127.0.0.1", 4000), request, timestamps=Timestamps(start=1.0, end=2.0))
    flow.response = Response(200, "OK", "HTTP/1.1", Headers([(b"Content-Length", b"3")]))
    return flow


def _append_with_bodies(store: FlowStore, path: str) -> Flow:
    flow = _flow(path)
    captures = [store.capture(flow, part) for part in (REQUEST_BODY, RESPONSE_BODY)]
    for capture in captures:
        assert capture is not None
        capture(b"body of " + path.encode())
    store.append(flow, *captures)
    return flow


def _counts(path: Path) -> tuple[int, int, int]:
    db = open_readonly(path)
    try:
        return tuple(  # type: ignore[return-value]
            db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("flows", "heads", "bodies")
        )
    finally:
        db.close()


def test_delete_removes_a_flow_its_heads_and_bodies_even_one_still_in_the_batch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path)

    async def scenario() -> list[int]:
        flows = [_append_with_bodies(store, f"/{n}") for n in range(3)]
        # The flows are still in the loop's batch: the delete is queued after them.
        ids = [flow.store_id for flow in flows]
        assert None not in ids
        return await store.delete([ids[1], 999_999_999])  # type: ignore[list-item]

    deleted = asyncio.run(scenario())
    store.close()
    db = open_readonly(path)
    paths = [flow.request.path for flow in iter_flows(db)]
    db.close()
    assert paths == ["/0", "/2"]
    assert len(deleted) == 1
    assert _counts(path) == (2, 4, 4)


def test_clear_removes_every_committed_flow_and_ids_are_not_reused(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path)

    async def scenario() -> tuple[int, int, int]:
        first = _append_with_bodies(store, "/before")
        count = await store.clear()
        after = _append_with_bodies(store, "/after")
        await store.flush()
        assert first.store_id is not None and after.store_id is not None
        return count, first.store_id, after.store_id

    count, first_id, after_id = asyncio.run(scenario())
    store.close()
    assert count == 1
    assert after_id > first_id
    db = open_readonly(path)
    assert [flow.request.path for flow in iter_flows(db)] == ["/after"]
    db.close()
    assert _counts(path) == (1, 2, 2)


def test_clear_keeps_the_bodies_of_a_flow_still_streaming(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path)

    async def scenario() -> None:
        streaming = _flow("/streaming")
        capture = store.capture(streaming, RESPONSE_BODY)
        assert capture is not None
        capture(b"x" * (300 * 1024))  # more than a row: one goes to the writer now
        await store.flush()
        await store.clear()
        store.append(streaming, capture)
        await store.flush()

    asyncio.run(scenario())
    store.close()
    db = open_readonly(path)
    (flow,) = iter_flows(db)
    assert flow.store_id is not None
    stored = db.execute(
        "SELECT sum(length(data)) FROM bodies WHERE flow = ?", (flow.store_id,)
    ).fetchone()[0]
    db.close()
    assert stored == 300 * 1024


def test_flush_returns_once_what_was_appended_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path)

    async def scenario() -> int:
        for n in range(5):
            store.append(_flow(f"/{n}"))
        await store.flush()
        db = open_readonly(path)
        try:
            return len(list(iter_flows(db)))
        finally:
            db.close()

    assert asyncio.run(scenario()) == 5
    store.close()


def test_listeners_hear_of_appended_flows_and_committed_ids_on_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "flows.db"
    store = FlowStore(path)
    appended: list[int | None] = []
    committed: list[int] = []
    threads: set[int] = set()

    def on_append(flow: Flow) -> None:
        appended.append(flow.store_id)
        threads.add(threading.get_ident())

    def on_commit(ids: list[int]) -> None:
        committed.extend(ids)
        threads.add(threading.get_ident())

    store.append_listeners.append(on_append)
    store.commit_listeners.append(on_commit)

    async def scenario() -> None:
        for n in range(3):
            store.append(_flow(f"/{n}"))
        assert len(appended) == 3 and committed == []  # nothing is committed yet
        await store.flush()
        await asyncio.sleep(0)  # the commit's call_soon_threadsafe ran before flush's

    asyncio.run(scenario())
    store.close()
    assert None not in appended
    assert committed == appended
    assert threads == {threading.get_ident()}
