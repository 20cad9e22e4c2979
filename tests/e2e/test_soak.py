"""Soak (issue 9, "Done when"): many connections, some of them abandoned, and nothing stays.

Ten thousand connections one after the other, then a thousand open at once; plain HTTP and
intercepted HTTPS, and one client in ten vanishing half-way (half a head, then a reset; a
request, then gone before its answer; a reset mid-download; a CONNECT never followed by a
ClientHello; a ClientHello never finished). Afterwards waylay holds the descriptors it held
before, its resident memory is back near where it was (freed heap is handed back to the OS
every 10 s, memory.py), and it still answers.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .origin import MiB, Origin
from .pki import Issued, TestCA
from .tls_clients import client_context
from .tls_origin import TlsOrigin
from .waylay_process import StartWaylay, WaylayProcess

HTTPS_HOST = "www.example.test"
# Allowed growth of resident memory once the load is over and the heap trimmed.
RSS_SLACK = 24 * MiB
QUEUE = 2048


@pytest.fixture
def busy_origin() -> Iterator[Origin]:
    server = Origin(backlog=QUEUE)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def busy_tls_origin(origin_cert: Issued) -> Iterator[TlsOrigin]:
    server = TlsOrigin(origin_cert)
    server._listener.listen(QUEUE)  # the same socket, with a longer queue for the burst
    server.start()
    yield server
    server.stop()


def _abort(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body; the whole of it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    assert head.startswith(b"HTTP/1.1 200 "), head
    return body


def _request(path: str, host: str, *, close: bool = True) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{connection}\r\n".encode()


def _connect(waylay: WaylayProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", waylay.port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _tunnel(waylay: WaylayProcess, authority: str) -> socket.socket:
    sock = _connect(waylay)
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    return sock


def _settled(waylay: WaylayProcess, fds: int, rss: int, timeout: float = 25.0) -> tuple[int, int]:
    """Wait until descriptors and memory are back near the baseline; return where they are."""
    deadline = time.monotonic() + timeout
    while True:
        now_fds, now_rss = waylay.open_fds(), waylay.vmrss()
        if (now_fds <= fds and now_rss <= rss + RSS_SLACK) or time.monotonic() > deadline:
            return now_fds, now_rss
        time.sleep(0.25)


def _still_answers(waylay: WaylayProcess, origin: Origin) -> None:
    with _connect(waylay) as sock:
        sock.sendall(_request(origin.url("/echo?after"), origin.authority))
        assert b'"/echo?after"' in _read_response(sock)


def _warm_up(waylay: WaylayProcess, origin: Origin, tls_origin: TlsOrigin, confdir: Path) -> None:
    """One of each kind first: the forged certificate, the contexts and the modules are made."""
    context = client_context(confdir)
    for _ in range(20):
        with _connect(waylay) as sock:
            sock.sendall(_request(origin.url("/echo"), origin.authority))
            _read_response(sock)
        raw = _tunnel(waylay, f"{HTTPS_HOST}:{tls_origin.port}")
        with context.wrap_socket(raw, server_hostname=HTTPS_HOST) as tls:
            tls.sendall(_request("/echo", HTTPS_HOST))
            _read_response(tls)


def _baseline(waylay: WaylayProcess) -> tuple[int, int]:
    time.sleep(2.5)  # lingering closes of the warm-up end
    return waylay.open_fds(), waylay.vmrss()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_ten_thousand_connections_one_after_the_other(
    busy_origin: Origin,
    busy_tls_origin: TlsOrigin,
    start_waylay: StartWaylay,
    pki: TestCA,
    confdir: Path,
) -> None:
    waylay = start_waylay("--upstream-ca", str(pki.cert_path), "--quiet")
    origin, tls_origin = busy_origin, busy_tls_origin
    _warm_up(waylay, origin, tls_origin, confdir)
    fds, rss = _baseline(waylay)
    context = client_context(confdir)
    authority = f"{HTTPS_HOST}:{tls_origin.port}"
    url = origin.url("/echo?n")
    kinds = {"http": 0, "https": 0, "vanished": 0}
    started = time.monotonic()
    halfway = 0
    for n in range(10_000):
        if n == 5_000:
            halfway = waylay.vmrss()
        kind = n % 20
        if kind < 14:  # plain HTTP
            with _connect(waylay) as sock:
                sock.sendall(_request(url, origin.authority))
                _read_response(sock)
            kinds["http"] += 1
        elif kind < 18:  # intercepted HTTPS
            with context.wrap_socket(_tunnel(waylay, authority), server_hostname=HTTPS_HOST) as tls:
                tls.sendall(_request("/echo?n", HTTPS_HOST))
                _read_response(tls)
            kinds["https"] += 1
        elif kind == 18:  # half a head, then a reset
            sock = _connect(waylay)
            sock.sendall(_request(url, origin.authority)[:25])
            _abort(sock)
            kinds["vanished"] += 1
        elif n % 40 == 19:  # a whole request, gone before the answer
            sock = _connect(waylay)
            sock.sendall(_request(origin.url("/delay?s=0.05"), origin.authority))
            sock.close()
            kinds["vanished"] += 1
        else:  # a tunnel, and a ClientHello that is never finished
            sock = _tunnel(waylay, authority)
            sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            _abort(sock)
            kinds["vanished"] += 1
    elapsed = time.monotonic() - started
    peak, end = waylay.vmhwm(), waylay.vmrss()
    now_fds, now_rss = _settled(waylay, fds, rss)
    print(
        f"10,000 sequential connections ({kinds}) in {elapsed:.1f} s; fds {fds} -> {now_fds}; "
        f"RSS {rss / MiB:.1f} -> {halfway / MiB:.1f} halfway -> {end / MiB:.1f} at the end -> "
        f"{now_rss / MiB:.1f} MiB (peak {peak / MiB:.1f})"
    )
    assert now_fds <= fds, (now_fds, fds)
    assert now_rss <= rss + RSS_SLACK, (now_rss / MiB, rss / MiB)
    _still_answers(waylay, origin)


# --- a thousand at once ------------------------------------------------------------------


async def _http_client(
    waylay: WaylayProcess, origin: Origin, n: int, opened: asyncio.Barrier
) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", waylay.port)
    try:
        writer.write(_request(origin.url(f"/echo?c={n}"), origin.authority, close=False))
        await _async_response(reader)
        await opened.wait()  # every client holds its connection (and its upstream) now
        if n % 20 == 0:  # gone half-way through its second request
            writer.write(_request(origin.url("/echo"), origin.authority)[:30])
            await writer.drain()
            linger = struct.pack("ii", 1, 0)  # the abort is a reset
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            writer.transport.abort()
            return "vanished"
        writer.write(_request(origin.url(f"/echo?again={n}"), origin.authority))
        await _async_response(reader)
        return "http"
    finally:
        writer.close()


async def _https_client(
    waylay: WaylayProcess,
    authority: str,
    context: ssl.SSLContext,
    n: int,
    opened: asyncio.Barrier,
) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", waylay.port)
    try:
        writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        answer = await reader.readuntil(b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        if n % 20 == 1:  # a tunnel that never says anything, then a reset
            await opened.wait()
            writer.transport.abort()
            return "vanished"
        await writer.start_tls(context, server_hostname=HTTPS_HOST)
        writer.write(_request(f"/echo?c={n}", HTTPS_HOST, close=False))
        await _async_response(reader)
        await opened.wait()
        writer.write(_request(f"/echo?again={n}", HTTPS_HOST))
        await _async_response(reader)
        return "https"
    finally:
        writer.close()


async def _async_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


async def _thousand(
    waylay: WaylayProcess, origin: Origin, tls_origin: TlsOrigin, confdir: Path
) -> tuple[list[str], int]:
    count = 1000
    opened = asyncio.Barrier(count + 1)
    context = client_context(confdir)
    authority = f"{HTTPS_HOST}:{tls_origin.port}"
    clients = []
    for n in range(count):
        if n % 2:
            clients.append(_https_client(waylay, authority, context, n, opened))
        else:
            clients.append(_http_client(waylay, origin, n, opened))
        if n % 50 == 49:
            await asyncio.sleep(0.05)  # a burst, not one SYN flood
    tasks = [asyncio.ensure_future(client) for client in clients]
    async with asyncio.timeout(60):
        await opened.wait()
    at_once = waylay.open_fds()
    async with asyncio.timeout(60):
        outcomes = await asyncio.gather(*tasks)
    return outcomes, at_once


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_thousand_connections_at_once(
    busy_origin: Origin,
    busy_tls_origin: TlsOrigin,
    start_waylay: StartWaylay,
    pki: TestCA,
    confdir: Path,
) -> None:
    waylay = start_waylay("--upstream-ca", str(pki.cert_path), "--quiet")
    origin, tls_origin = busy_origin, busy_tls_origin
    _warm_up(waylay, origin, tls_origin, confdir)
    fds, rss = _baseline(waylay)
    started = time.monotonic()
    outcomes, at_once = asyncio.run(_thousand(waylay, origin, tls_origin, confdir))
    elapsed = time.monotonic() - started
    peak = waylay.vmhwm()
    now_fds, now_rss = _settled(waylay, fds, rss)
    counts = {kind: outcomes.count(kind) for kind in set(outcomes)}
    print(
        f"1,000 connections at once ({counts}) in {elapsed:.1f} s; fds {fds} -> {at_once} at "
        f"once -> {now_fds}; RSS {rss / MiB:.1f} -> {now_rss / MiB:.1f} MiB "
        f"(peak {peak / MiB:.1f})"
    )
    assert counts == {"http": 450, "https": 450, "vanished": 100}
    # All open together: a client and (but for the silent tunnels) a server descriptor each.
    assert at_once - fds >= 1900, (at_once, fds)
    assert now_fds <= fds, (now_fds, fds)
    assert now_rss <= rss + RSS_SLACK, (now_rss / MiB, rss / MiB)
    _still_answers(waylay, origin)
