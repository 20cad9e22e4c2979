"""Faults (issue 9, point 5), each proved with an origin that misbehaves on cue.

What is proved elsewhere is not repeated: a refused connection, a reset before the response
and a name not in the hosts file are 502s (test_errors.py, which also counts descriptors
after them: `test_no_socket_left_behind_after_errors`); a client that vanishes mid-upload or
mid-download over plain HTTP closes the upstream side (test_errors.py); an origin cut
mid-response inside an intercepted tunnel aborts the client without a close_notify, and
untrusted, expired or misnamed server certificates and failed handshakes are 502s with the
reason (test_interception_failures.py, test_interception.py).

Here: what exactly a client receives of a body the server cut short — a prefix of what the
server sent, never a final chunk, and a reset to end it, the one signal a read-until-close
body has — and that the flow records the error; a client that vanishes mid-upload inside an
intercepted tunnel; and the failures before a response, over every path a request takes
(absolute URL, CONNECT, inside an intercepted tunnel), each recorded in the flow. After each,
waylay's open descriptors return to where they were.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from .contract import assert_waylay_error
from .origin import (
    ORIGIN_HOST,
    TRUNCATED_CHUNKED_PAYLOAD,
    TRUNCATED_CL_PAYLOAD,
    TRUNCATED_CLOSE_PAYLOAD,
    MiB,
    Origin,
    pattern_bytes,
)
from .pki import TestCA
from .tls_clients import tls_wire
from .tls_origin import TlsOrigin
from .waylay_process import RunWaylay, StartWaylay, WaylayProcess
from .wire import WireClient, request_bytes

HTTPS_HOST = "www.example.test"
PAYLOADS = {
    "cl": TRUNCATED_CL_PAYLOAD,
    "chunked": TRUNCATED_CHUNKED_PAYLOAD,
    "close": TRUNCATED_CLOSE_PAYLOAD,
}


def _flows(run_waylay: RunWaylay, path: Path, count: int) -> list[dict[str, object]]:
    """The flows of ``path`` once there are ``count`` of them (the writer commits in batches)."""
    deadline = time.monotonic() + 5
    while True:
        result = run_waylay("flows", str(path), "--json")
        assert result.returncode == 0, result.stderr
        flows = [json.loads(line) for line in result.stdout.splitlines()]
        if len(flows) >= count or time.monotonic() > deadline:
            return flows
        time.sleep(0.1)


def _no_leak(waylay: WaylayProcess, baseline: int) -> None:
    deadline = time.monotonic() + 5
    while waylay.open_fds() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    assert waylay.open_fds() <= baseline, (waylay.open_fds(), baseline)


def _read_to_the_end(sock: socket.socket) -> tuple[bytes, str]:
    """Everything the peer sent, and how it ended: "fin" or "rst"."""
    sock.settimeout(5)
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return bytes(data), "rst"
    return bytes(data), "fin"


def _dechunk(body: bytes) -> tuple[bytes, bool]:
    """The payload of a chunked body, strictly, and whether its last chunk came."""
    payload = bytearray()
    while True:
        line_end = body.find(b"\r\n")
        if line_end < 0:
            return bytes(payload), False
        size = int(body[:line_end], 16)
        if size == 0:
            return bytes(payload), True
        chunk = body[line_end + 2 : line_end + 2 + size]
        payload += chunk
        if len(chunk) < size:
            return bytes(payload), False
        body = body[line_end + 2 + size :]
        if body[:2] != b"\r\n":
            return bytes(payload), False
        body = body[2:]


@pytest.mark.parametrize(
    ("framing", "end", "version"),
    [
        ("cl", "rst", "1.1"),
        ("cl", "fin", "1.1"),
        ("chunked", "rst", "1.1"),
        ("chunked", "fin", "1.1"),
        # An HTTP/1.0 client gets a chunked body de-chunked, read until close: only the
        # reset tells it the body is not whole.
        ("chunked", "rst", "1.0"),
        ("chunked", "fin", "1.0"),
        ("close", "rst", "1.1"),
        ("close", "rst", "1.0"),
    ],
)
def test_a_body_the_server_cuts_short_never_looks_complete(
    origin: Origin,
    start_waylay: StartWaylay,
    run_waylay: RunWaylay,
    tmp_path: Path,
    framing: str,
    end: str,
    version: str,
) -> None:
    save = tmp_path / "flows.db"
    waylay = start_waylay("--save", str(save))
    baseline = waylay.open_fds()
    path = f"/truncate?framing={framing}&end={end}"
    with socket.create_connection(("127.0.0.1", waylay.port)) as sock:
        sock.sendall(
            f"GET {origin.url(path)} HTTP/{version}\r\n"
            f"Host: {ORIGIN_HOST}:{origin.port}\r\n\r\n".encode()
        )
        received, how = _read_to_the_end(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    fields = head.lower()
    assert head.startswith(b"HTTP/1.1 200 "), received[:300]
    # Whatever the framing, the connection ends with a reset: the client cannot take a
    # clean close for the end of the body.
    assert how == "rst", (head, len(body))
    sent = PAYLOADS[framing]
    if b"transfer-encoding: chunked" in fields:
        payload, last_chunk = _dechunk(body)
        assert not last_chunk, "a final chunk after a body the server cut short"
    else:
        payload = body
        if b"content-length:" in fields:
            assert b"content-length: 100000" in fields and len(body) < 100000
    # Nothing but what the server sent: no extra bytes.
    assert sent.startswith(payload), (len(payload), payload[-20:])

    [flow] = _flows(run_waylay, save, 1)
    assert flow["status"] == 200 and flow["url"] == origin.url(path)
    error = flow["error"]
    assert isinstance(error, dict), flow
    assert error["code"] == "truncated-response", error
    assert "mid-response" in str(error["reason"]), error
    _no_leak(waylay, baseline)


def test_a_read_until_close_body_that_ends_with_a_fin_is_complete(
    origin: Origin, start_waylay: StartWaylay, run_waylay: RunWaylay, tmp_path: Path
) -> None:
    # The contrast: for a body without a length a FIN is its end (RFC 9112 §6.3), not a fault.
    save = tmp_path / "flows.db"
    waylay = start_waylay("--save", str(save))
    with socket.create_connection(("127.0.0.1", waylay.port)) as sock:
        sock.sendall(
            f"GET {origin.url('/truncate?framing=close&end=fin')} HTTP/1.1\r\n"
            f"Host: {ORIGIN_HOST}:{origin.port}\r\n\r\n".encode()
        )
        received, how = _read_to_the_end(sock)
    assert how == "fin"
    assert received.partition(b"\r\n\r\n")[2] == TRUNCATED_CLOSE_PAYLOAD
    [flow] = _flows(run_waylay, save, 1)
    assert flow["error"] is None and flow["response_size"] == len(TRUNCATED_CLOSE_PAYLOAD)


def test_a_body_cut_short_inside_an_intercepted_tunnel_ends_with_a_reset(
    tls_origin: TlsOrigin,
    start_waylay: StartWaylay,
    pki: TestCA,
    run_waylay: RunWaylay,
    confdir: Path,
    tmp_path: Path,
) -> None:
    # HTTP/1.0 inside TLS: the de-chunked body is read until close. A ragged TLS end (a FIN
    # without close_notify) is what many clients accept as that close; a reset is not.
    save = tmp_path / "flows.db"
    waylay = start_waylay("--upstream-ca", str(pki.cert_path), "--save", str(save))
    baseline = waylay.open_fds()
    client = tls_wire(waylay, f"{HTTPS_HOST}:{tls_origin.port}", confdir)
    client.send(
        request_bytes(
            "GET", "/truncate?framing=chunked&end=rst", [("Host", HTTPS_HOST)], version="HTTP/1.0"
        )
    )
    with pytest.raises(ConnectionResetError):
        client.read_until_close()
    assert client.ended == ""
    client.close()
    [flow] = [flow for flow in _flows(run_waylay, save, 1) if "/truncate" in str(flow["url"])]
    assert isinstance(flow["error"], dict) and flow["error"]["code"] == "truncated-response"
    _no_leak(waylay, baseline)


@pytest.mark.parametrize("vanish", ["close", "abort"])
def test_a_client_vanishing_mid_upload_inside_a_tunnel_closes_the_upstream(
    tls_origin: TlsOrigin,
    start_waylay: StartWaylay,
    pki: TestCA,
    run_waylay: RunWaylay,
    confdir: Path,
    tmp_path: Path,
    vanish: str,
) -> None:
    save = tmp_path / "flows.db"
    waylay = start_waylay("--upstream-ca", str(pki.cert_path), "--save", str(save))
    baseline = waylay.open_fds()
    client = tls_wire(waylay, f"{HTTPS_HOST}:{tls_origin.port}", confdir)
    client.send(
        request_bytes("POST", "/echo", [("Host", HTTPS_HOST), ("Content-Length", str(10 * MiB))])
    )
    client.send(pattern_bytes(1 * MiB))
    assert tls_origin.wait_until(
        lambda: bool(tls_origin.requests) and tls_origin.requests[0].body_length > 0
    )
    getattr(client, vanish)()
    assert tls_origin.connections[0].closed.wait(5), "upstream still open after the client left"
    assert not tls_origin.requests[0].body_complete
    flows = _flows(run_waylay, save, 1)
    post = [flow for flow in flows if flow["method"] == "POST"]
    assert len(post) == 1 and isinstance(post[0]["error"], dict), flows
    _no_leak(waylay, baseline)


# --- failures before a response: 502 with the reason, recorded, nothing left open ----------


def _plain(waylay: WaylayProcess, url: str) -> bytes:
    host = url.split("/")[2]
    with WireClient(waylay.port) as client:
        client.send(f"GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        response = client.read_response()
    assert_waylay_error(response, 502)
    code = response.header("X-Waylay-Error")
    assert code is not None
    return code


def _connect(waylay: WaylayProcess, authority: str) -> bytes:
    with WireClient(waylay.port) as client:
        client.send(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        response = client.read_response(b"CONNECT")
    assert_waylay_error(response, 502)
    code = response.header("X-Waylay-Error")
    assert code is not None
    return code


def _inside(waylay: WaylayProcess, authority: str, confdir: Path) -> bytes:
    with tls_wire(waylay, authority, confdir) as client:
        client.send(request_bytes("GET", "/echo", [("Host", HTTPS_HOST)]))
        response = client.read_response()
    assert_waylay_error(response, 502)
    code = response.header("X-Waylay-Error")
    assert code is not None
    return code


def test_failures_before_a_response_are_502s_recorded_and_leave_nothing_open(
    refused_port: int,
    tls_origin: TlsOrigin,
    start_waylay: StartWaylay,
    run_waylay: RunWaylay,
    confdir: Path,
    tmp_path: Path,
) -> None:
    # No --upstream-ca: the TLS origin's certificate is not trusted.
    save = tmp_path / "flows.db"
    waylay = start_waylay("--save", str(save))
    tls = f"{HTTPS_HOST}:{tls_origin.port}"
    cases = [
        (lambda: _plain(waylay, "http://not-listed.invalid/"), b"not-in-hosts-file"),
        (lambda: _connect(waylay, "not-listed.invalid:443"), b"not-in-hosts-file"),
        (lambda: _plain(waylay, f"http://{ORIGIN_HOST}:{refused_port}/"), b"connection-refused"),
        (lambda: _connect(waylay, f"{ORIGIN_HOST}:{refused_port}"), b"connection-refused"),
        (lambda: _plain(waylay, f"https://{tls}/echo"), b"upstream-cert-untrusted"),
        (lambda: _inside(waylay, tls, confdir), b"upstream-cert-untrusted"),
    ]
    cases[-1][0]()  # the forged certificate and the CA files are made once, before counting
    baseline = waylay.open_fds()
    for _ in range(3):
        for fault, code in cases:
            assert fault() == code
    _no_leak(waylay, baseline)
    flows = _flows(run_waylay, save, 1 + 3 * len(cases))
    codes = [flow["error"]["code"] for flow in flows if isinstance(flow["error"], dict)]
    assert len(codes) == 1 + 3 * len(cases), flows
    assert {code.encode() for code in codes} == {code for _, code in cases}
    assert tls_origin.requests == []
