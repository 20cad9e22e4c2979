"""Persistent connections on both sides (RFC 9112 §9.3).

The client side is proved by one client socket carrying every request; the upstream side by
the origin's own record: one accepted connection that served them all.
"""

from __future__ import annotations

import time

from .clients import Curl, httpx_client
from .contract import proxy_request
from .origin import CHUNKED_BODY, Origin, pattern_bytes, pattern_sha256
from .waylay_process import WaylayProcess
from .wire import WireClient


def test_one_client_connection_one_upstream_connection(
    origin: Origin, waylay: WaylayProcess
) -> None:
    body = pattern_bytes(50_000)
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/chunked"))
        assert client.read_response().body == CHUNKED_BODY
        client.send(proxy_request(origin, "POST", "/echo", body=body))
        assert client.read_response().json()["body_sha256"] == pattern_sha256(len(body))
        client.send(proxy_request(origin, "GET", "/bytes/1000"))
        assert client.read_response().body == pattern_bytes(1000)
        client.send(proxy_request(origin, "GET", "/status/204"))
        assert client.read_response().status == 204
    assert len(origin.connections) == 1, [c.peer_port for c in origin.connections]
    assert [r.target for r in origin.connections[0].requests] == [
        "/chunked",
        "/echo",
        "/bytes/1000",
        "/status/204",
    ]


def test_pipelined_requests_answered_in_order(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(
            proxy_request(origin, "GET", "/echo?first")
            + proxy_request(origin, "POST", "/echo?second", body=b"x" * 1000)
            + proxy_request(origin, "GET", "/echo?third")
        )
        # Each pipelined request is parsed and forwarded on its own, in origin form.
        assert origin.wait_until(lambda: len(origin.requests) == 3)
        assert [r.target for r in origin.requests] == ["/echo?first", "/echo?second", "/echo?third"]
        targets = [client.read_response().json()["target"] for _ in range(3)]
    assert targets == ["/echo?first", "/echo?second", "/echo?third"]


def test_httpx_requests_share_the_upstream_connection(
    origin: Origin, waylay: WaylayProcess
) -> None:
    with httpx_client(waylay.url) as client:
        ids = {client.get(origin.url(f"/echo?n={n}")).json()["connection_id"] for n in range(3)}
        client.post(origin.url("/echo"), content=b"abc").raise_for_status()
    assert len(ids) == 1
    assert len(origin.connections) == 1
    assert len(origin.connections[0].requests) == 4


def test_curl_reuses_its_proxy_connection(origin: Origin, curl: Curl) -> None:
    result = curl(
        "-v", "-o", "/dev/null", "-o", "/dev/null", origin.url("/echo?1"), origin.url("/echo?2")
    )
    assert result.returncode == 0, result.stderr
    assert b"Re-using existing connection" in result.stderr, result.stderr
    assert len(origin.connections) == 1
    assert [r.target for r in origin.requests] == ["/echo?1", "/echo?2"]


def test_upstream_that_closed_idle_connection_is_not_reused(
    origin: Origin, waylay: WaylayProcess
) -> None:
    # The origin answers, then drops the idle connection 0.2 s later without a word, as servers
    # with a keep-alive timeout do. The next request must still be answered by the origin.
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo?idle-close=0.2"))
        assert client.read_response().status == 200
        assert origin.wait_until(lambda: origin.connections[0].closed.is_set())
        time.sleep(0.3)
        client.send(proxy_request(origin, "GET", "/echo?again"))
        response = client.read_response()
    assert response.status == 200, response.head + response.body
    assert response.json()["target"] == "/echo?again"
    assert len(origin.connections) == 2


def test_upstream_connection_close_then_next_request(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo?close=1"))
        first = client.read_response()
        assert first.status == 200
        closing = b"close" in b",".join(first.header_values("Connection")).lower()
        if closing:
            # waylay chose to close this client connection too, and said so: honour it.
            client.wait_closed()
            client = WireClient(waylay.port)
        client.send(proxy_request(origin, "GET", "/echo?next"))
        second = client.read_response()
        client.close()
    assert second.json()["target"] == "/echo?next"
    assert len(origin.connections) == 2


def test_request_on_a_connection_the_server_just_closed_is_sent_again(
    origin: Origin, waylay: WaylayProcess
) -> None:
    # RFC 9112 §9.3.1: a request without a body, sent on a reused connection that the server
    # closed before answering, may be retried on a new connection — the client never knows.
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/vanish-if-reused?first"))
        assert client.read_response().status == 200
        client.send(proxy_request(origin, "GET", "/vanish-if-reused?second"))
        response = client.read_response()
    assert response.status == 200, response.head + response.body
    assert response.json()["target"] == "/vanish-if-reused?second"
    assert [len(c.requests) for c in origin.connections] == [2, 1]


def test_request_with_a_body_is_not_sent_again(origin: Origin, waylay: WaylayProcess) -> None:
    # A POST is not idempotent, and its body was streamed and is gone: the client gets the
    # error, not a silent replay.
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/vanish-if-reused?first"))
        assert client.read_response().status == 200
        client.send(proxy_request(origin, "POST", "/vanish-if-reused?second", body=b"once"))
        response = client.read_response()
    assert response.status == 502
    # FIN or, as the origin left the body unread, RST: either way no second try.
    assert response.header("X-Waylay-Error") in (b"empty-response", b"connection-reset")
    assert len(origin.connections) == 1
