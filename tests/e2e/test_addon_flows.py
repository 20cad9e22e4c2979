"""Addons change flows: what a hook does to a request or a response is what goes on.

A real proxy (ProxyServer on loopback, in the test's loop) with test addons, real clients
(httpx, or raw sockets where the bytes matter) and the h11 origin of the suite. Each test
shows one thing a hook can do, on the wire: the origin's record says what it received, the
client's response what it got.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from waylay.context import ProxyContext
from waylay.flow import Client, ClientHelloData, Flow, Response
from waylay.hooks import HookTable
from waylay.hosts import Resolver
from waylay.options import Options, parse_listen
from waylay.server import ProxyServer

from .origin import Origin
from .pki import TestCA
from .tls_origin import TlsOrigin

HOST = "origin.example.test"


@asynccontextmanager
async def proxy(
    tmp_path: Path, addons: Iterable[object], **options: Any
) -> AsyncIterator[tuple[ProxyServer, str]]:
    settings = replace(
        Options(listen=parse_listen("127.0.0.1:0"), confdir=tmp_path / "conf"), **options
    )
    names = (HOST, "other.example.test", "www.example.test")
    resolver = Resolver({name: ("127.0.0.1",) for name in names}, True)
    server = ProxyServer(ProxyContext.build(settings, resolver, HookTable(list(addons))))
    port = await server.start()
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        await server.stop()


def client(proxy_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=proxy_url, timeout=10)


async def raw_exchange(proxy_url: str, data: bytes) -> bytes:
    """Send ``data`` to the proxy on a new connection; everything it answers until it closes."""
    host, port = proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


class Hooked:
    """An addon made of the hooks a test gives it by name."""

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        for name, hook in hooks.items():
            setattr(self, name, hook)


def echoed(response: httpx.Response) -> dict[str, Any]:
    payload: dict[str, Any] = response.json()
    payload["headers"] = {name.lower(): value for name, value in payload["headers"]}
    return payload


def test_a_request_hook_reads_the_whole_body_and_what_it_changes_is_sent(
    origin: Origin, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def request(flow: Flow) -> None:
        seen["content"] = flow.request.content
        seen["json"] = flow.request.json()
        flow.request.headers["X-Added"] = "by addon"
        del flow.request.headers["X-Drop"]
        flow.request.content = json.dumps({"changed": True}).encode()
        flow.request.path = "/echo/changed?q=1"
        flow.request.method = "PUT"

    async def main() -> httpx.Response:
        async with proxy(tmp_path, [Hooked(request=request)]) as (_, url), client(url) as http:
            return await http.post(
                origin.url("/echo/original"), json={"a": 1}, headers={"X-Drop": "1"}
            )

    response = asyncio.run(main())
    assert seen == {"content": b'{"a":1}', "json": {"a": 1}}
    payload = echoed(response)
    body = json.dumps({"changed": True}).encode()
    assert payload["method"] == "PUT" and payload["target"] == "/echo/changed?q=1"
    assert payload["headers"]["x-added"] == "by addon" and "x-drop" not in payload["headers"]
    assert payload["body_length"] == len(body)
    assert payload["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert payload["headers"]["content-length"] == str(len(body))


def test_a_chunked_upload_is_read_whole_and_sent_with_its_length(
    origin: Origin, tmp_path: Path
) -> None:
    seen: list[bytes | None] = []

    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"one,", b"two,", b"three"):
            yield piece

    async def main() -> httpx.Response:
        hook = Hooked(request=lambda flow: seen.append(flow.request.content))
        async with proxy(tmp_path, [hook]) as (_, url), client(url) as http:
            return await http.post(origin.url("/echo/"), content=pieces())

    payload = echoed(asyncio.run(main()))
    assert seen == [b"one,two,three"]
    assert payload["body_length"] == 13 and "transfer-encoding" not in payload["headers"]


def test_a_headers_only_addon_never_makes_a_body_buffer(origin: Origin, tmp_path: Path) -> None:
    seen: list[Any] = []
    body = b"x" * 300_000

    async def main() -> httpx.Response:
        hook = Hooked(
            requestheaders=lambda flow: seen.append(flow.request.raw_content),
            responseheaders=lambda flow: seen.append(flow.response and flow.response.raw_content),
        )
        async with proxy(tmp_path, [hook]) as (_, url), client(url) as http:
            return await http.post(origin.url("/echo/"), content=body)

    payload = echoed(asyncio.run(main()))
    assert seen == [None, None]
    assert payload["body_length"] == len(body)


def test_a_request_hook_answers_without_the_server(origin: Origin, tmp_path: Path) -> None:
    responses: list[int] = []

    def request(flow: Flow) -> None:
        flow.response = Response.make(418, "short and stout", {"Content-Type": "text/plain"})

    async def main() -> list[httpx.Response]:
        hook = Hooked(
            request=request, response=lambda flow: responses.append(flow.response_body_size)
        )
        async with proxy(tmp_path, [hook]) as (_, url), client(url) as http:
            # Twice on one connection: the answer keeps the connection usable.
            return [await http.post(origin.url("/echo/"), content=b"body") for _ in range(2)]

    answers = asyncio.run(main())
    assert [(a.status_code, a.text) for a in answers] == [(418, "short and stout")] * 2
    assert answers[0].headers["content-length"] == "15"
    assert origin.requests == [] and responses == [15, 15]


def test_a_requestheaders_answer_closes_a_connection_whose_body_was_not_read(
    origin: Origin, tmp_path: Path
) -> None:
    def requestheaders(flow: Flow) -> None:
        flow.response = Response.make(200, b"early")

    async def main() -> bytes:
        async with proxy(tmp_path, [Hooked(requestheaders=requestheaders)]) as (_, url):
            return await raw_exchange(
                url,
                f"POST {origin.url('/echo/')} HTTP/1.1\r\nHost: {HOST}\r\n"
                "Content-Length: 5\r\n\r\nhello".encode(),
            )

    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nearly")
    assert b"Connection: close" in answer and origin.requests == []


def test_a_response_hook_changes_the_body_the_client_gets(origin: Origin, tmp_path: Path) -> None:
    def response(flow: Flow) -> None:
        assert flow.response is not None
        payload = flow.response.json()
        payload["method"] = "CHANGED"
        flow.response.text = json.dumps(payload)
        flow.response.headers["X-Seen"] = str(len(flow.response.raw_content or b""))

    async def main() -> httpx.Response:
        async with proxy(tmp_path, [Hooked(response=response)]) as (_, url), client(url) as http:
            return await http.get(origin.url("/echo/"))

    answer = asyncio.run(main())
    assert answer.json()["method"] == "CHANGED"
    assert answer.headers["content-length"] == str(len(answer.content))
    assert "x-seen" in answer.headers


def test_a_response_hook_sees_a_chunked_body_whole_and_its_trailers(
    origin: Origin, tmp_path: Path
) -> None:
    seen: list[Any] = []

    def response(flow: Flow) -> None:
        assert flow.response is not None
        seen.append((flow.response.content, flow.response.trailers))
        flow.response.content = flow.response.content.upper()  # type: ignore[union-attr]

    async def main() -> bytes:
        async with proxy(tmp_path, [Hooked(response=response)]) as (_, url):
            return await raw_exchange(
                url,
                f"GET {origin.url('/chunked')} HTTP/1.1\r\nHost: {HOST}\r\n"
                "Connection: close\r\n\r\n".encode(),
            )

    answer = asyncio.run(main())
    head, _, body = answer.partition(b"\r\n\r\n")
    content, trailers = seen[0]
    assert trailers is not None and "x-checksum" in trailers
    assert body == content.upper() and b"Content-Length: %d" % len(body) in head
    assert b"Transfer-Encoding" not in head


def test_gzip_bodies_are_decoded_for_the_hook_and_encoded_again(tmp_path: Path) -> None:
    async def gzip_origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = gzip.compress(b"hello, world")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    seen: list[bytes | None] = []

    def response(flow: Flow) -> None:
        assert flow.response is not None
        seen.append(flow.response.content)
        flow.response.content = b"goodbye, world"

    async def main() -> httpx.Response:
        origin = await asyncio.start_server(gzip_origin, "127.0.0.1", 0)
        port = origin.sockets[0].getsockname()[1]
        hooked = proxy(tmp_path, [Hooked(response=response)])
        async with origin, hooked as (_, url), client(url) as http:
            return await http.get(f"http://{HOST}:{port}/")

    answer = asyncio.run(main())
    assert seen == [b"hello, world"]
    assert answer.headers["content-encoding"] == "gzip" and answer.text == "goodbye, world"


def test_a_hook_can_send_the_request_to_another_server(origin: Origin, tmp_path: Path) -> None:
    other = Origin()
    other.start()
    try:

        def requestheaders(flow: Flow) -> None:
            flow.request.url = other.url("/echo/moved", host="other.example.test")

        async def main() -> httpx.Response:
            hook = Hooked(requestheaders=requestheaders)
            async with proxy(tmp_path, [hook]) as (_, url), client(url) as http:
                return await http.post(origin.url("/echo/"), content=b"payload")

        payload = echoed(asyncio.run(main()))
        assert origin.requests == [] and payload["target"] == "/echo/moved"
        assert payload["headers"]["host"] == f"other.example.test:{other.port}"
        assert payload["body_length"] == 7
    finally:
        other.stop()


def test_kill_resets_the_client_and_reaches_the_error_hook(origin: Origin, tmp_path: Path) -> None:
    errors: list[str] = []

    async def main() -> bytes:
        hook = Hooked(
            request=lambda flow: flow.kill(),
            error=lambda flow: errors.append(flow.error.code),
        )
        async with proxy(tmp_path, [hook]) as (_, url):
            try:
                return await raw_exchange(
                    url, f"GET {origin.url('/echo/')} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
                )
            except ConnectionResetError:
                return b"reset"

    assert asyncio.run(main()) in (b"", b"reset")
    assert errors == ["killed"] and origin.requests == []


def test_kill_in_a_response_hook_sends_nothing_of_the_response(
    origin: Origin, tmp_path: Path
) -> None:
    async def main() -> bytes:
        async with proxy(tmp_path, [Hooked(response=lambda flow: flow.kill())]) as (_, url):
            try:
                return await raw_exchange(
                    url, f"GET {origin.url('/echo/')} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
                )
            except ConnectionResetError:
                return b"reset"

    assert asyncio.run(main()) in (b"", b"reset")
    assert len(origin.requests) == 1


def test_an_intercepted_flow_waits_for_resume_and_others_go_on(
    origin: Origin, tmp_path: Path
) -> None:
    paused: list[Flow] = []

    def request(flow: Flow) -> None:
        if flow.request.path.startswith("/echo/hold"):
            flow.intercept()
            paused.append(flow)

    async def main() -> tuple[httpx.Response, httpx.Response, int]:
        hooked = proxy(tmp_path, [Hooked(request=request)])
        async with hooked as (_, url), client(url) as held, client(url) as free:
            waiting = asyncio.create_task(held.get(origin.url("/echo/hold")))
            while not paused:
                await asyncio.sleep(0.01)
            other = await free.get(origin.url("/echo/free"))  # not blocked by the pause
            seen_while_paused = len(origin.requests)
            flow = paused[0]
            assert flow.intercepted and not waiting.done()
            flow.request.headers["X-Edited"] = "while paused"
            flow.resume()
            return await waiting, other, seen_while_paused

    held, other, seen_while_paused = asyncio.run(main())
    assert seen_while_paused == 1 and other.status_code == 200
    assert echoed(held)["headers"]["x-edited"] == "while paused"


def test_a_stream_function_transforms_a_response_as_it_streams(
    origin: Origin, tmp_path: Path
) -> None:
    def responseheaders(flow: Flow) -> None:
        assert flow.response is not None
        flow.response.stream = lambda piece: piece.replace(b"a", b"A")

    async def main() -> bytes:
        # A response hook too: a stream function still wins (nothing is buffered).
        hook = Hooked(responseheaders=responseheaders, response=lambda flow: None)
        async with proxy(tmp_path, [hook]) as (_, url):
            return await raw_exchange(
                url,
                f"GET {origin.url('/status/200')} HTTP/1.1\r\nHost: {HOST}\r\n"
                "Connection: close\r\n\r\n".encode(),
            )

    answer = asyncio.run(main())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    assert body == b"b\r\nstAtus 200\n\r\n0\r\n\r\n"


def test_a_stream_function_transforms_an_upload(origin: Origin, tmp_path: Path) -> None:
    def requestheaders(flow: Flow) -> None:
        # Doubles each piece, and at the end (b"") adds a last word.
        flow.request.stream = lambda piece: piece * 2 if piece else b"!"

    async def main() -> httpx.Response:
        hook = Hooked(requestheaders=requestheaders, request=lambda flow: None)
        async with proxy(tmp_path, [hook]) as (_, url), client(url) as http:
            return await http.post(origin.url("/echo/"), content=b"abc")

    payload = echoed(asyncio.run(main()))
    assert payload["body_length"] == 7
    assert payload["body_sha256"] == hashlib.sha256(b"abcabc!").hexdigest()


def test_bodies_over_the_limit_stream_past_the_hooks_intact(origin: Origin, tmp_path: Path) -> None:
    seen: list[Any] = []
    upload = bytes(range(256)) * 1000

    async def main() -> tuple[httpx.Response, httpx.Response]:
        hook = Hooked(
            request=lambda flow: seen.append(("request", flow.request.raw_content)),
            response=lambda flow: seen.append(("response", flow.response.raw_content)),
        )
        hooked = proxy(tmp_path, [hook], stream_large_bodies=100_000)
        async with hooked as (_, url), client(url) as http:
            up = await http.post(origin.url("/echo/"), content=upload)
            down = await http.get(origin.url("/bytes/300000"))
            return up, down

    up, down = asyncio.run(main())
    assert echoed(up)["body_sha256"] == hashlib.sha256(upload).hexdigest()
    assert len(down.content) == 300_000
    assert ("request", None) in seen and ("response", None) in seen


def test_a_chunked_response_over_the_limit_is_chunked_again(tmp_path: Path) -> None:
    pieces = [bytes([65 + n]) * 3000 for n in range(5)]

    async def slow_chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.02)  # each piece its own read at the proxy
        writer.write(b"0\r\nX-Sum: 5\r\n\r\n")
        await writer.drain()
        writer.close()

    seen: list[bytes | None] = []

    async def main() -> tuple[bytes, bytes]:
        origin = await asyncio.start_server(slow_chunks, "127.0.0.1", 0)
        port = origin.sockets[0].getsockname()[1]
        hook = Hooked(response=lambda flow: seen.append(flow.response.raw_content))
        async with origin, proxy(tmp_path, [hook], stream_large_bodies=4000) as (_, url):
            request = f"GET http://{HOST}:{port}/ HTTP/1.1\r\nHost: {HOST}\r\n"
            eleven = await raw_exchange(url, (request + "Connection: close\r\n\r\n").encode())
            ten = await raw_exchange(url, request.replace("1.1", "1.0", 1).encode() + b"\r\n")
            return eleven, ten

    eleven, ten = asyncio.run(main())
    head, _, body = eleven.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    assert _dechunk(body) == b"".join(pieces)
    # HTTP/1.0 has no chunks: the body ends with the connection.
    head, _, body = ten.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and body == b"".join(pieces)
    assert seen == [None, None]


def _dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, body = out + body[:size], body[size + 2 :]


def test_expect_100_continue_is_answered_by_waylay_when_it_reads_the_body(
    origin: Origin, tmp_path: Path
) -> None:
    seen: list[bytes | None] = []

    async def main() -> tuple[bytes, bytes]:
        async with proxy(tmp_path, [Hooked(request=lambda f: seen.append(f.request.content))]) as (
            _,
            url,
        ):
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"PUT {origin.url('/echo/')} HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 4\r\n"
                "Expect: 100-continue\r\nConnection: close\r\n\r\n".encode()
            )
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(b"body")
            rest = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            return interim, rest

    interim, rest = asyncio.run(main())
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n" and seen == [b"body"]
    assert rest.startswith(b"HTTP/1.1 200 ")
    assert origin.requests[0].header("expect") is None


def test_http_connect_can_refuse_a_tunnel(origin: Origin, tmp_path: Path) -> None:
    def http_connect(flow: Flow) -> None:
        assert flow.request.method == "CONNECT"
        flow.response = Response.make(403, b"no tunnels to " + flow.request.host.encode())

    async def main() -> bytes:
        async with proxy(tmp_path, [Hooked(http_connect=http_connect)]) as (_, url):
            connect = f"CONNECT {origin.authority} HTTP/1.1\r\nHost: {origin.authority}\r\n"
            return await raw_exchange(url, connect.encode() + b"\r\n")

    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert answer.endswith(f"no tunnels to {HOST}".encode()) and origin.connections == []


def test_tls_clienthello_sees_the_sni_and_can_pass_the_connection_through(
    tmp_path: Path,
) -> None:
    seen: list[tuple[str | None, tuple[str, int]]] = []

    def tls_clienthello(data: ClientHelloData) -> None:
        seen.append((data.client_hello.sni, data.server_address))
        data.ignore_connection = True

    async def main() -> bytes:
        # A server that answers the tunnel's first bytes with its own: relayed means it
        # gets the client's ClientHello itself, untouched.
        received = asyncio.get_running_loop().create_future()

        async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.set_result(await reader.read(5))
            writer.close()

        origin = await asyncio.start_server(server, "127.0.0.1", 0)
        port = origin.sockets[0].getsockname()[1]
        async with origin, proxy(tmp_path, [Hooked(tls_clienthello=tls_clienthello)]) as (_, url):
            host, proxy_port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(proxy_port))
            writer.write(f"CONNECT {HOST}:{port} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")

            context = ssl.create_default_context()
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = context.wrap_bio(incoming, outgoing, server_hostname="sni.example.test")
            with pytest.raises(ssl.SSLWantReadError):
                tls.do_handshake()
            writer.write(outgoing.read())
            first = await asyncio.wait_for(received, 5)
            writer.close()
            return first

    first = asyncio.run(main())
    assert first[:1] == b"\x16"  # the ClientHello itself reached the server
    assert seen[0][0] == "sni.example.test" and seen[0][1][0] == HOST


def test_client_hooks_see_each_connection(origin: Origin, tmp_path: Path) -> None:
    events: list[str] = []

    async def main() -> None:
        hook = Hooked(
            client_connected=lambda c: events.append(f"in {isinstance(c, Client)}"),
            client_disconnected=lambda c: events.append(f"out {c.disconnected_at > 0}"),
        )
        async with proxy(tmp_path, [hook]) as (_, url):
            async with client(url) as http:
                await http.get(origin.url("/echo/"))
            for _ in range(200):
                if len(events) == 2:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(main())
    assert events == ["in True", "out True"]


def test_tcp_message_hooks_see_and_change_a_relayed_protocol(tmp_path: Path) -> None:
    seen: list[tuple[bool, bytes]] = []

    def tcp_message(flow: Flow) -> None:
        assert flow.messages is not None and len(flow.messages) == 1
        message = flow.messages[-1]
        seen.append((message.from_client, message.content))
        if message.from_client:
            message.content = message.content.upper()
        else:  # the server's DROP lines never reach the client
            lines = message.content.splitlines(keepends=True)
            message.content = b"".join(line for line in lines if line != b"DROP\n")

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(b"DROP\n" if line == b"SECRET\n" else line)
            await writer.drain()
        writer.close()

    async def main() -> tuple[bytes, bytes]:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # A short peek: the client speaks first but its words are neither TLS nor HTTP.
        async with server, proxy(tmp_path, [Hooked(tcp_message=tcp_message)]) as (_, url):
            host, proxy_port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(proxy_port))
            writer.write(f"CONNECT {HOST}:{port} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"\x00hello\n")
            first = await asyncio.wait_for(reader.readline(), 5)
            writer.write(b"secret\n")
            writer.write(b"again\n")
            second = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            return first, second

    first, second = asyncio.run(main())
    assert first == b"\x00HELLO\n"
    assert second == b"AGAIN\n"  # the server's "DROP" answer to SECRET never arrived
    assert (True, b"\x00hello\n") in seen
    assert any(not from_client and b"DROP\n" in data for from_client, data in seen)


def test_a_host_header_an_addon_sets_is_sent_as_it_is(origin: Origin, tmp_path: Path) -> None:
    def requestheaders(flow: Flow) -> None:
        flow.request.headers["Host"] = "virtual.example.test"

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with proxy(tmp_path, []) as (_, url), client(url) as http:
            plain = await http.get(origin.url("/echo/"), headers={"Host": "ignored.example.test"})
        hooked = proxy(tmp_path, [Hooked(requestheaders=requestheaders)])
        async with hooked as (_, url), client(url) as http:
            return plain, await http.get(origin.url("/echo/"))

    plain, hooked = asyncio.run(main())
    # Without an addon the URL names the server, whatever Host said (RFC 9112 §3.2.2).
    assert echoed(plain)["headers"]["host"] == origin.authority
    assert echoed(hooked)["headers"]["host"] == "virtual.example.test"


@pytest.mark.parametrize("how", ["absolute", "by-name", "localhost", "connect"])
def test_the_web_ui_is_never_reachable_through_the_proxy(tmp_path: Path, how: str) -> None:
    """The UI's address (any server listening there stands for it) is refused, however named."""
    reached: list[bytes] = []

    async def ui(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.append(await reader.read(100))
        writer.close()

    async def main() -> bytes:
        server = await asyncio.start_server(ui, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server, proxy(tmp_path, []) as (proxy_server, url):
            proxy_server.ctx.web_ui = ("127.0.0.1", port)
            host = {"absolute": "127.0.0.1", "by-name": HOST, "localhost": "localhost"}.get(
                how, HOST
            )
            if how == "connect":
                request = f"CONNECT {HOST}:{port} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n"
            else:
                request = f"GET http://{host}:{port}/api/flows HTTP/1.1\r\nHost: x\r\n\r\n"
            return await raw_exchange(url, request.encode())

    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n"), answer
    # A name or a CONNECT is known to lead there only once connected: nothing is ever sent.
    assert b"X-Waylay-Error: web-ui-not-through-proxy" in answer
    assert b"".join(reached) == b""


def test_a_flow_still_paused_when_waylay_stops_is_recorded_as_killed(
    origin: Origin, tmp_path: Path
) -> None:
    from waylay.store.reader import iter_flows, open_readonly

    paused: list[Flow] = []

    def request(flow: Flow) -> None:
        flow.intercept()
        paused.append(flow)

    save = tmp_path / "flows.db"

    async def main() -> None:
        async with proxy(tmp_path, [Hooked(request=request)], save=save) as (server, url):
            waiting = asyncio.create_task(
                raw_exchange(
                    url, f"GET {origin.url('/echo/')} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                )
            )
            while not paused:
                await asyncio.sleep(0.01)
            await server.stop()  # nobody resumed it
            server.ctx.store.close()
            await asyncio.gather(waiting, return_exceptions=True)

    asyncio.run(main())
    db = open_readonly(save)
    flows = list(iter_flows(db))
    db.close()
    assert [(f.request.path, f.error and f.error.code) for f in flows] == [("/echo/", "killed")]
    assert origin.requests == []


def test_an_intercepted_flow_shows_each_sides_tls(
    tls_origin: TlsOrigin, pki: TestCA, tmp_path: Path
) -> None:
    seen: list[Flow] = []

    async def main() -> httpx.Response:
        hooked = proxy(tmp_path, [Hooked(response=seen.append)], upstream_ca=pki.cert_path)
        async with hooked as (server, url):
            trust = server.ctx.options.confdir / "waylay-ca-cert.pem"
            verify = ssl.create_default_context(cafile=str(trust))
            async with httpx.AsyncClient(proxy=url, verify=verify, timeout=10) as http:
                return await http.get(f"https://www.example.test:{tls_origin.port}/echo/")

    assert asyncio.run(main()).status_code == 200
    flow = seen[0]
    client, server = flow.client_tls, flow.server_tls
    assert client is not None and server is not None
    assert (client.sni, client.alpn) == ("www.example.test", "http/1.1")
    assert client.version in ("TLSv1.2", "TLSv1.3") and "www.example.test" in client.cert_names
    assert (server.sni, server.alpn, server.version) == ("www.example.test", "http/1.1", "TLSv1.3")
    # The server's own names and issuer, as its certificate says.
    assert set(server.cert_names) >= {"www.example.test", "api.example.test", "127.0.0.1"}
    assert server.issuer is not None and "waylay tests" in server.issuer.lower()
    assert server.not_before is not None and server.not_after is not None
    assert server.not_before < time.time() < server.not_after
