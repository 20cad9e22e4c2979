"""Hook tables and dispatch, and the hooks' order on a real exchange through the proxy."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from waylay.context import ProxyContext
from waylay.flow import Client, Flow
from waylay.hooks import HOOKS, HookTable, dispatch, dispatch_now
from waylay.hosts import Resolver
from waylay.options import Options, parse_listen
from waylay.server import ProxyServer


class Recorder:
    """Implements every hook, records (hook, what it saw)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def client_connected(self, client: Client) -> None:
        self.calls.append(("client_connected", client.address[0]))

    async def requestheaders(self, flow: Flow) -> None:
        await asyncio.sleep(0)  # an async hook is awaited in place
        self.calls.append(("requestheaders", flow.request.url))

    def request(self, flow: Flow) -> None:
        self.calls.append(("request", flow.request_body_size))

    async def responseheaders(self, flow: Flow) -> None:
        assert flow.response is not None
        self.calls.append(("responseheaders", flow.response.status_code))

    def response(self, flow: Flow) -> None:
        self.calls.append(("response", flow.response_body_size))

    def error(self, flow: Flow) -> None:
        assert flow.error is not None
        self.calls.append(("error", flow.error.code))

    def client_disconnected(self, client: Client) -> None:
        self.calls.append(("client_disconnected", client.disconnected_at > 0))


def test_table_collects_only_implemented_hooks() -> None:
    class OnlyResponse:
        def response(self, flow: Flow) -> None: ...

    recorder, only = Recorder(), OnlyResponse()
    table = HookTable([recorder, only, object()])
    assert table.response == (recorder.response, only.response)
    assert table.error == (recorder.error,)
    empty = HookTable()
    assert all(getattr(empty, name) == () for name in HOOKS)


def test_a_failing_hook_is_logged_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []

    def broken(flow: object) -> None:
        raise ValueError("addon bug")

    async def later(flow: object) -> None:
        seen.append("later")

    with caplog.at_level(logging.ERROR, logger="waylay.hooks"):
        asyncio.run(dispatch((broken, later), object()))
    assert seen == ["later"]
    assert "addon bug" in caplog.text and "broken" in caplog.text


def test_dispatch_now_runs_plain_hooks_at_once() -> None:
    seen: list[str] = []
    assert dispatch_now((lambda f: seen.append("a"), lambda f: seen.append("b")), object()) is None
    assert seen == ["a", "b"]


def test_dispatch_now_returns_the_rest_from_the_first_asynchronous_hook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    async def slow(flow: object) -> None:
        await asyncio.sleep(0)
        seen.append("slow")

    async def broken_later(flow: object) -> None:
        await asyncio.sleep(0)
        raise ValueError("async addon bug")

    hooks = (
        lambda f: seen.append("first"),
        slow,
        lambda f: seen.append("after slow"),
        broken_later,
        lambda f: seen.append("last"),
    )

    async def run() -> None:
        rest = dispatch_now(hooks, object())
        assert seen == ["first"]  # nothing after the asynchronous hook has run yet
        assert rest is not None
        await rest

    with caplog.at_level(logging.ERROR, logger="waylay.hooks"):
        asyncio.run(run())
    assert seen == ["first", "slow", "after slow", "last"]
    assert "async addon bug" in caplog.text and "broken_later" in caplog.text


async def _origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(5)
    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nyes")
    await writer.drain()
    writer.close()


async def _through_proxy(recorder: Recorder, tmp_path: Path, origin_port: int) -> bytes:
    options = Options(listen=parse_listen("127.0.0.1:0"), confdir=tmp_path)
    resolver = Resolver({"hooked.example.test": ("127.0.0.1",)}, hosts_only=True)
    server = ProxyServer(ProxyContext.build(options, resolver, HookTable([recorder])))
    port = await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST http://hooked.example.test:%d/x HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 5\r\nConnection: close\r\n\r\nhello" % origin_port
    )
    answer = await reader.read()
    writer.close()
    for _ in range(100):
        if recorder.calls and recorder.calls[-1][0] == "client_disconnected":
            break
        await asyncio.sleep(0.01)
    await server.stop()
    return answer


def test_hooks_run_in_order_on_a_real_exchange(tmp_path: Path) -> None:
    async def main() -> bytes:
        origin = await asyncio.start_server(_origin, "127.0.0.1", 0)
        port = origin.sockets[0].getsockname()[1]
        async with origin:
            return await _through_proxy(recorder, tmp_path, port)

    recorder = Recorder()
    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 201 Created\r\n") and answer.endswith(b"yes")
    assert [name for name, _ in recorder.calls] == [
        "client_connected",
        "requestheaders",
        "request",
        "responseheaders",
        "response",
        "client_disconnected",
    ]
    seen = dict(recorder.calls)
    assert seen["requestheaders"].startswith("http://hooked.example.test:")
    assert (seen["request"], seen["responseheaders"], seen["response"]) == (5, 201, 3)


def test_error_hook_sees_a_refused_server(tmp_path: Path) -> None:
    async def main() -> bytes:
        # A port that was just free and is closed again: the connect is refused.
        origin = await asyncio.start_server(_origin, "127.0.0.1", 0)
        port = origin.sockets[0].getsockname()[1]
        origin.close()
        await origin.wait_closed()
        return await _through_proxy(recorder, tmp_path, port)

    recorder = Recorder()
    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 502 ")
    assert ("error", "connection-refused") in recorder.calls
    assert "response" not in dict(recorder.calls)
