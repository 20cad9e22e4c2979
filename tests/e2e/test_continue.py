"""``Expect: 100-continue`` through the proxy (RFC 9110 §10.1.1, §15.2.1).

The client must see ``100 Continue`` before it sends its body, and an origin that answers
from the head alone must have that final answer reach the client, which then never has to
send the body at all.
"""

from __future__ import annotations

import time
from pathlib import Path

from .clients import Curl
from .contract import proxy_request
from .origin import Origin, pattern_bytes, pattern_sha256
from .waylay_process import WaylayProcess
from .wire import WireClient


def test_client_sees_100_before_sending_body(origin: Origin, waylay: WaylayProcess) -> None:
    body = pattern_bytes(200_000)
    head = proxy_request(
        origin,
        "POST",
        "/echo",
        [("Expect", "100-continue"), ("Content-Length", str(len(body)))],
    )
    with WireClient(waylay.port) as client:
        client.send(head)
        interim = client.read_response(b"POST")
        assert (interim.status, interim.body) == (100, b"")
        client.send(body)
        informational, final = client.read_final_response(b"POST")
    assert all(r.status == 100 for r in informational)
    assert final.status == 200
    echo = final.json()
    assert (echo["body_length"], echo["body_sha256"]) == (len(body), pattern_sha256(len(body)))


def test_curl_large_upload_gets_100_continue(origin: Origin, curl: Curl, tmp_path: Path) -> None:
    body = pattern_bytes(2 * 1024 * 1024)
    (tmp_path / "body").write_bytes(body)
    started = time.monotonic()
    # Without a 100 curl would wait the whole 5 s before sending the body anyway.
    result = curl(
        "-v",
        "--expect100-timeout",
        "5",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        f"@{tmp_path / 'body'}",
        origin.url("/echo"),
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert b"< HTTP/1.1 100" in result.stderr, result.stderr
    assert elapsed < 4, f"curl waited {elapsed:.1f} s: no prompt 100 Continue"
    assert b'"body_sha256": "' + pattern_sha256(len(body)).encode() in result.stdout


def test_final_status_without_100_reaches_client(origin: Origin, waylay: WaylayProcess) -> None:
    head = proxy_request(
        origin,
        "POST",
        "/expect-reject",
        [("Expect", "100-continue"), ("Content-Length", str(50 * 1024 * 1024))],
    )
    with WireClient(waylay.port) as client:
        client.send(head)
        informational, final = client.read_final_response(b"POST")
    assert informational == [], "a 100 told the client to send 50 MiB the origin refused"
    assert (final.status, final.body) == (413, b"too large\n")
