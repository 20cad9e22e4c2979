"""The limits and timeouts of issue 9, point 4, each set by its flag and seen by a real client.

How many clients are served at once (`--max-connections`: the next gets a 503 and the others
go on), how big a head may be (`--max-head-size`, `--max-headers`: 431), how long a server
may take to accept (`--connect-timeout`: 504) and how long an idle kept-alive server
connection is kept (`--upstream-idle-timeout`). The slow-head and idle-client clocks are in
test_slowloris.py.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from ..testdata import CLIENTHELLOS
from .contract import assert_waylay_error, proxy_request
from .origin import ORIGIN_HOST, Origin, TunnelPeer
from .waylay_process import StartWaylay
from .wire import WireClient


def _served(client: WireClient, origin: Origin, name: str) -> None:
    client.send(proxy_request(origin, "GET", f"/echo?{name}"))
    assert client.read_response().json()["target"] == f"/echo?{name}"


def test_one_client_over_max_connections_gets_a_503_and_the_others_go_on(
    origin: Origin, start_waylay: StartWaylay
) -> None:
    waylay = start_waylay("--max-connections", "3")
    served = [WireClient(waylay.port) for _ in range(3)]
    try:
        for n, client in enumerate(served):
            _served(client, origin, f"first-{n}")
        with WireClient(waylay.port) as extra:
            response = extra.read_response()
            assert_waylay_error(response, 503, b"--max-connections")
            assert response.header("X-Waylay-Error") == b"too-many-connections"
            assert extra.wait_closed() == b""
        # Those already served keep their connections and go on.
        for n, client in enumerate(served):
            _served(client, origin, f"again-{n}")
        # One leaves: its place is free for the next client.
        served.pop().close()
        deadline = time.monotonic() + 5
        while True:
            with WireClient(waylay.port) as late:
                late.send(proxy_request(origin, "GET", "/echo?late"))
                response = late.read_response()
            if response.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert response.json()["target"] == "/echo?late"
    finally:
        for client in served:
            client.close()
    assert waylay.wait_for_stderr("turned away with a 503")
    assert [r.target for r in origin.requests].count("/echo?late") == 1


def test_upstream_idle_timeout_closes_a_kept_alive_server_connection(
    origin: Origin, start_waylay: StartWaylay
) -> None:
    waylay = start_waylay("--upstream-idle-timeout", "1")
    with WireClient(waylay.port) as client:
        _served(client, origin, "before")
        started = time.monotonic()
        assert origin.connections[0].closed.wait(4), "the idle server connection was kept"
        assert 1.0 <= time.monotonic() - started < 3.5
        # The client's own connection stays, and its next request gets a new one.
        _served(client, origin, "after")
    assert [r.connection_id for r in origin.requests] == [0, 1]


def test_a_kept_alive_server_connection_is_reused_within_the_idle_timeout(
    origin: Origin, start_waylay: StartWaylay
) -> None:
    waylay = start_waylay("--upstream-idle-timeout", "5")
    with WireClient(waylay.port) as client:
        _served(client, origin, "one")
        time.sleep(1.5)
        _served(client, origin, "two")
    assert [r.connection_id for r in origin.requests] == [0, 0]


def test_heads_over_the_flags_limits_are_431(origin: Origin, start_waylay: StartWaylay) -> None:
    waylay = start_waylay("--max-head-size", "4k", "--max-headers", "10")
    cases = {
        "too-big": [("X-Pad", "p" * 5000)],
        "too-many": [(f"X-Field-{n}", "1") for n in range(10)],  # Host and 10 more
    }
    for name, headers in cases.items():
        with WireClient(waylay.port) as client:
            client.send(proxy_request(origin, "GET", f"/echo?{name}", headers))
            assert_waylay_error(client.read_response(), 431)
            client.wait_closed()
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo?fits", [("X-Pad", "p" * 3000)]))
        assert client.read_response().status == 200
        # A response head over the limit is the server's fault: 502.
        client.send(proxy_request(origin, "GET", "/big-head?size=5000"))
        assert_waylay_error(client.read_response(), 502, b"head")
    assert [r.target for r in origin.requests] == ["/echo?fits", "/big-head?size=5000"]


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose listener never accepts and whose backlog is full: a connect just waits."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    fillers = []
    # Linux queues backlog + 1 connections; the SYNs after them are dropped, not refused.
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def test_connect_timeout_is_a_504(full_backlog: int, start_waylay: StartWaylay) -> None:
    waylay = start_waylay("--connect-timeout", "1")
    started = time.monotonic()
    with WireClient(waylay.port) as client:
        url = f"http://{ORIGIN_HOST}:{full_backlog}/"
        client.send(f"GET {url} HTTP/1.1\r\nHost: {ORIGIN_HOST}:{full_backlog}\r\n\r\n".encode())
        response = client.read_response()
    assert_waylay_error(response, 504, b"timed out after 1s")
    assert response.header("X-Waylay-Error") == b"connect-timeout"
    assert 1.0 <= time.monotonic() - started < 3.0


def test_a_clienthello_over_max_peek_size_is_relayed_untouched(
    tunnel_peer: TunnelPeer, start_waylay: StartWaylay
) -> None:
    # Chromium's ClientHello (1,988 bytes, post-quantum key share) over a 1 KiB peek limit:
    # waylay does not read on for it; the tunnel carries it to the server as it was.
    hello = (CLIENTHELLOS / "chromium.bin").read_bytes()
    assert len(hello) > 1024
    waylay = start_waylay("--max-peek-size", "1k")
    authority = f"tunnel.example.test:{tunnel_peer.port}"
    with WireClient(waylay.port) as client:
        client.send(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        assert client.read_head().status == 200
        client.send(hello)
        assert client.read_exactly(len(hello)) == hello  # the echo got it byte for byte
    assert waylay.wait_for_stderr("longer than 1024 bytes"), waylay.stderr_text()
