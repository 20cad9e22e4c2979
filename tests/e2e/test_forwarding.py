"""Requests and responses forwarded as sent: origin form, Host, hop-by-hop fields.

RFC 9112 §3.2.2 (absolute form in, origin form out, Host from the target's authority),
RFC 9110 §7.6.1 (Connection and the fields it names, plus the hop-by-hop list of the issue,
are not forwarded), and every other field keeps its case and order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .clients import Curl, httpx_client
from .contract import proxy_request
from .origin import Origin, pattern_bytes, pattern_sha256
from .waylay_process import WaylayProcess
from .wire import WireClient


def test_get_with_curl(origin: Origin, curl: Curl) -> None:
    result = curl(origin.url("/bytes/100000"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == pattern_bytes(100_000)
    assert [(r.method, r.target) for r in origin.requests] == [("GET", "/bytes/100000")]


def test_get_with_httpx(origin: Origin, waylay: WaylayProcess) -> None:
    with httpx_client(waylay.url) as client:
        response = client.get(origin.url("/echo?a=1&b=x%20y"))
    assert response.status_code == 200
    echo = response.json()
    assert (echo["method"], echo["target"], echo["body_length"]) == ("GET", "/echo?a=1&b=x%20y", 0)


def test_post_with_curl(origin: Origin, curl: Curl, tmp_path: Path) -> None:
    body = pattern_bytes(300_000)
    (tmp_path / "body").write_bytes(body)
    result = curl(
        "--data-binary",
        f"@{tmp_path / 'body'}",
        "-H",
        "Content-Type: application/octet-stream",
        origin.url("/echo"),
    )
    assert result.returncode == 0, result.stderr
    echo = json.loads(result.stdout)
    assert echo["method"] == "POST"
    assert (echo["body_length"], echo["body_sha256"]) == (len(body), pattern_sha256(len(body)))
    assert ["Content-Length", str(len(body))] in echo["headers"]


def _pieces(total: int) -> Iterator[bytes]:
    yield from (pattern_bytes(total)[i : i + 7000] for i in range(0, total, 7000))


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_post_with_httpx(origin: Origin, waylay: WaylayProcess, framing: str) -> None:
    # httpx sends a bytes body with Content-Length and a generator body chunked.
    total = 250_000
    content = pattern_bytes(total) if framing == "content-length" else _pieces(total)
    with httpx_client(waylay.url) as client:
        response = client.post(origin.url("/echo"), content=content)
    assert response.status_code == 200
    echo = response.json()
    assert (echo["body_length"], echo["body_sha256"]) == (total, pattern_sha256(total))
    sent = {name.lower(): value for name, value in echo["headers"]}
    if framing == "chunked":
        assert sent.get("transfer-encoding") == "chunked"
    else:
        assert sent.get("content-length") == str(total)


def test_request_target_sent_in_origin_form(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo/a%2Fb;p?q=a%20b&r=%7E&&s"))
        response = client.read_response()
    assert response.status == 200
    assert origin.requests[0].target == "/echo/a%2Fb;p?q=a%20b&r=%7E&&s"
    assert origin.requests[0].http_version == "1.1"


def test_empty_path_becomes_slash(origin: Origin, waylay: WaylayProcess) -> None:
    # RFC 9112 §3.2.1: an empty path is sent as "/".
    with WireClient(waylay.port) as client:
        client.send(
            f"GET http://{origin.authority} HTTP/1.1\r\nHost: {origin.authority}\r\n\r\n".encode()
        )
        response = client.read_response()
    assert (response.status, response.body) == (404, b"no route\n")
    assert origin.requests[0].target == "/"


def test_host_replaced_by_target_authority(origin: Origin, waylay: WaylayProcess) -> None:
    headers = [("Host", "wrong.example.test"), ("X-After", "1")]
    request = f"GET {origin.url('/echo', 'api.example.test')} HTTP/1.1\r\n"
    request += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    with WireClient(waylay.port) as client:
        client.send(request.encode())
        response = client.read_response()
    assert response.status == 200
    seen = origin.requests[0]
    assert seen.header_values("Host") == [f"api.example.test:{origin.port}"]
    assert seen.header("X-After") == "1"


HOP_BY_HOP_REQUEST = [
    ("X-First", "1"),
    ("Connection", "keep-alive, X-Drop-Me, x-also-drop"),
    ("X-Drop-Me", "secret"),
    ("Keep-Alive", "timeout=5"),
    ("x-lower-case", "kept"),
    ("Proxy-Connection", "keep-alive"),
    ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
    ("TE", "trailers"),
    ("X-Also-Drop", "secret2"),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "h2c"),
    ("X-MiXeD-CaSe", "Kept"),
    ("Accept", "*/*"),
    ("X-Dup", "a"),
    ("X-Dup", "b"),
    ("Cookie", "a=1"),
    ("Cookie", "b=2"),
    ("X-Last", "z"),
]
END_TO_END_REQUEST = [
    ("X-First", "1"),
    ("x-lower-case", "kept"),
    ("X-MiXeD-CaSe", "Kept"),
    ("Accept", "*/*"),
    ("X-Dup", "a"),
    ("X-Dup", "b"),
    ("Cookie", "a=1"),
    ("Cookie", "b=2"),
    ("X-Last", "z"),
]


def _own_connection_header(values: list[str]) -> None:
    """A proxy may state its own connection options upstream, never the client's."""
    tokens = {token.strip().lower() for value in values for token in value.split(",")}
    assert tokens <= {"keep-alive", "close"}, values


def test_hop_by_hop_request_fields_dropped_rest_kept_in_order(
    origin: Origin, waylay: WaylayProcess
) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo", HOP_BY_HOP_REQUEST))
        response = client.read_response()
    assert response.status == 200
    seen = origin.requests[0]
    _own_connection_header(seen.header_values("Connection"))
    forwarded = [
        (name, value)
        for name, value in seen.headers
        # RFC 9110 §7.6.3: a proxy may add Via.
        if name.lower() not in ("host", "via", "connection")
    ]
    assert forwarded == END_TO_END_REQUEST


def test_hop_by_hop_response_fields_dropped_rest_kept_in_order(
    origin: Origin, waylay: WaylayProcess
) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/hop-response"))
        response = client.read_response()
    assert (response.status, response.body) == (200, b"ok\n")
    names = [name for name in response.header_names if name.lower() not in (b"via", b"connection")]
    _own_connection_header([v.decode() for v in response.header_values("Connection")])
    assert [n for n in names if n.lower() != b"content-length"] == [
        b"X-Resp-First",
        b"x-resp-lower",
        b"X-Resp-MiXeD",
        b"Content-Type",
    ]
    assert response.header("X-Resp-MiXeD") == b"Kept"


def test_response_header_case_kept_for_curl(origin: Origin, curl: Curl) -> None:
    result = curl("-D", "-", "-o", "/dev/null", origin.url("/hop-response"))
    assert result.returncode == 0, result.stderr
    head = result.stdout
    assert b"\r\nX-Resp-MiXeD: Kept\r\n" in head
    assert b"\r\nx-resp-lower: kept\r\n" in head
    assert b"X-Resp-Drop" not in head
    assert b"Keep-Alive" not in head


def test_origin_status_and_reason_relayed(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/status/418"))
        response = client.read_response()
    assert (response.status, response.reason, response.body) == (
        418,
        b"I'm a Teapot",
        b"status 418\n",
    )
    assert response.header("X-Waylay-Error") is None
