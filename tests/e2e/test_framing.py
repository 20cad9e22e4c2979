"""Message framing relayed right (RFC 9112 §6): chunked with trailers, read-until-close,
bodies that never come (HEAD, 204, 304), and an HTTP/1.0 client behind a chunked origin.

After each bodiless response the same client connection is used again: a proxy that waited
for, or forwarded, a body that does not exist would hang or answer garbage there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .clients import Curl, httpx_client
from .contract import proxy_request
from .origin import CHUNKED_BODY, CHUNKED_TRAILERS, Origin, pattern_bytes, pattern_sha256
from .waylay_process import WaylayProcess
from .wire import WireClient

TRAILERS = [(name.encode(), value.encode()) for name, value in CHUNKED_TRAILERS]


def _echo_still_works(client: WireClient, origin: Origin) -> None:
    client.send(proxy_request(origin, "GET", "/echo?after"))
    response = client.read_response()
    assert response.status == 200
    assert response.json()["target"] == "/echo?after"


def test_chunked_response_trailers_relayed(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/chunked"))
        response = client.read_response()
        assert response.status == 200
        assert response.framing == "chunked"
        assert response.body == CHUNKED_BODY
        assert response.trailers == TRAILERS
        _echo_still_works(client, origin)


def test_chunked_trailers_reach_curl(origin: Origin, curl: Curl, tmp_path: Path) -> None:
    # curl writes trailers into its header dump after the head.
    head, body = tmp_path / "head", tmp_path / "body"
    result = curl("-D", str(head), "-o", str(body), origin.url("/chunked"))
    assert result.returncode == 0, result.stderr
    assert body.read_bytes() == CHUNKED_BODY
    dumped = head.read_bytes()
    for name, value in TRAILERS:
        assert b"\r\n" + name + b": " + value + b"\r\n" in dumped, dumped


def test_chunked_raw_bytes_end_with_trailers_for_curl(origin: Origin, curl: Curl) -> None:
    result = curl("--raw", origin.url("/chunked"))
    assert result.returncode == 0, result.stderr
    expected_tail = b"0\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in TRAILERS) + b"\r\n"
    assert result.stdout.endswith(expected_tail), result.stdout[-300:]


def test_read_until_close_body_relayed(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/close?n=200000"))
        response = client.read_response()
    assert response.status == 200
    # Passed on either chunked (connection kept) or close-delimited; the bytes are what counts.
    assert response.framing in ("chunked", "close")
    assert response.body == pattern_bytes(200_000)


def test_read_until_close_body_with_curl(origin: Origin, curl: Curl) -> None:
    result = curl(origin.url("/close?n=150001"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == pattern_bytes(150_001)


def test_head_has_no_body(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "HEAD", "/bytes/1000"))
        response = client.read_response(b"HEAD")
        assert response.status == 200
        assert response.header("Content-Length") == b"1000"
        _echo_still_works(client, origin)
    assert [r.method for r in origin.requests] == ["HEAD", "GET"]


def test_head_with_curl(origin: Origin, curl: Curl) -> None:
    result = curl("-I", origin.url("/bytes/1000"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"HTTP/1.1 200")
    assert b"\r\nContent-Length: 1000\r\n" in result.stdout
    assert result.stdout.endswith(b"\r\n\r\n")


def test_204_has_no_body(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/status/204"))
        response = client.read_response()
        assert response.status == 204
        assert response.header("X-Status") == b"204"
        assert response.header("Transfer-Encoding") is None
        _echo_still_works(client, origin)


def test_304_has_no_body_even_with_content_length(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/status/304", [("If-None-Match", '"v1"')]))
        response = client.read_response()
        assert response.status == 304
        assert response.header("ETag") == b'"v1"'
        assert response.header("Content-Length") == b"1234"
        _echo_still_works(client, origin)


def test_204_and_304_with_httpx(origin: Origin, waylay: WaylayProcess) -> None:
    with httpx_client(waylay.url) as client:
        assert client.get(origin.url("/status/204")).status_code == 204
        not_modified = client.get(origin.url("/status/304"))
        assert (not_modified.status_code, not_modified.content) == (304, b"")
        assert client.get(origin.url("/echo")).json()["target"] == "/echo"


def test_http10_client_gets_chunked_origin_dechunked(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/chunked", version="HTTP/1.0"))
        response = client.read_response()
        rest = client.wait_closed()
    seen = origin.requests[0]
    # RFC 9110 §6.2: the proxy speaks its own version upstream, so the origin may chunk.
    assert seen.http_version == "1.1", "waylay forwarded HTTP/1.0; the origin could not chunk"
    assert seen.response_framing == "chunked"
    assert response.status == 200
    # RFC 9112 §6.1: no chunked coding to a 1.0 client; the body ends when the connection does.
    assert response.header("Transfer-Encoding") is None
    assert response.header("Content-Length") is None
    assert response.framing == "close"
    assert response.body == CHUNKED_BODY
    assert rest == b""


def test_http10_client_with_curl(origin: Origin, curl: Curl) -> None:
    result = curl("-0", "-D", "-", origin.url("/chunked"))
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == CHUNKED_BODY


def test_http10_request_forwarded_with_body(origin: Origin, waylay: WaylayProcess) -> None:
    body = pattern_bytes(70_000)
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "POST", "/echo", body=body, version="HTTP/1.0"))
        response = client.read_response()
        client.wait_closed()
    assert response.status == 200
    assert json.loads(response.body)["body_length"] == len(body)


def test_chunked_request_trailers_relayed(origin: Origin, waylay: WaylayProcess) -> None:
    chunks = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Req-Trailer: yes\r\nx-req-sum: 11\r\n\r\n"
    head = proxy_request(origin, "POST", "/echo", [("Transfer-Encoding", "chunked")])
    with WireClient(waylay.port) as client:
        client.send(head + chunks)
        response = client.read_response()
        _echo_still_works(client, origin)
    echo = response.json()
    assert (echo["body_length"], echo["body_sha256"]) == (
        11,
        hashlib.sha256(b"hello world").hexdigest(),
    )
    assert echo["trailers"] == [["X-Req-Trailer", "yes"], ["x-req-sum", "11"]]


def test_chunked_upload_with_curl(origin: Origin, curl: Curl, tmp_path: Path) -> None:
    body = pattern_bytes(1_000_003)
    (tmp_path / "body").write_bytes(body)
    result = curl(
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        f"@{tmp_path / 'body'}",
        origin.url("/echo"),
    )
    assert result.returncode == 0, result.stderr
    echo = json.loads(result.stdout)
    assert (echo["body_length"], echo["body_sha256"]) == (len(body), pattern_sha256(len(body)))
