"""Every error a client can see (INTERFACE.md, "Errors a client sees"; issue 2, point 7).

Upstream failures become waylay's own 502/504 pages. A malformed request gets a 400 (a head
too large or with too many fields a 431) and the connection closes: the request pipelined
behind it in the same write never reaches the origin, which is the request-smuggling
guarantee. Failures stay on their own connection, and a client that vanishes takes its
upstream connection with it.
"""

from __future__ import annotations

import time

import pytest

from .clients import Curl, httpx_client
from .contract import assert_waylay_error, proxy_request
from .origin import ORIGIN_HOST, MiB, Origin, ResetOnAccept, pattern_bytes
from .waylay_process import StartWaylay, WaylayProcess
from .wire import IncompleteResponse, Response, WireClient


def _fetch(waylay: WaylayProcess, url: str) -> Response:
    with WireClient(waylay.port) as client:
        client.send(f"GET {url} HTTP/1.1\r\nHost: {url.split('/')[2]}\r\n\r\n".encode())
        return client.read_response()


# --- upstream failures -------------------------------------------------------------------


def test_refused_upstream_is_502(refused_port: int, waylay: WaylayProcess) -> None:
    response = _fetch(waylay, f"http://{ORIGIN_HOST}:{refused_port}/")
    assert_waylay_error(response, 502)


def test_refused_upstream_with_curl(refused_port: int, curl: Curl) -> None:
    result = curl("-D", "-", f"http://{ORIGIN_HOST}:{refused_port}/x")
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 ")
    assert b"\r\nx-waylay-error: " in head.lower()
    assert body.strip() and b"\n" not in body.strip()


def test_upstream_reset_after_request_is_502(origin: Origin, waylay: WaylayProcess) -> None:
    response = _fetch(waylay, origin.url("/reset"))
    assert_waylay_error(response, 502)
    assert [r.target for r in origin.requests] == ["/reset"]


def test_upstream_reset_on_accept_is_502(
    reset_on_accept: ResetOnAccept, waylay: WaylayProcess
) -> None:
    response = _fetch(waylay, f"http://{ORIGIN_HOST}:{reset_on_accept.port}/")
    assert_waylay_error(response, 502)


def test_name_not_in_hosts_file_is_502(waylay: WaylayProcess) -> None:
    response = _fetch(waylay, "http://not-listed.invalid/")
    assert_waylay_error(response, 502, b"not in hosts file")


def test_name_not_in_hosts_file_with_httpx(waylay: WaylayProcess) -> None:
    with httpx_client(waylay.url) as client:
        response = client.get("http://not-listed.invalid:8080/path")
    assert response.status_code == 502
    assert response.headers.get("X-Waylay-Error")
    assert "not in hosts file" in response.text.lower()


def test_upstream_timeout_is_504(origin: Origin, start_waylay: StartWaylay) -> None:
    waylay = start_waylay(env={"WAYLAY_UPSTREAM_TIMEOUT": "1"})
    started = time.monotonic()
    response = _fetch(waylay, origin.url("/hang"))
    elapsed = time.monotonic() - started
    assert_waylay_error(response, 504)
    assert 0.9 <= elapsed < 6, elapsed
    # The proxy gave up on the upstream connection; it must not keep it open.
    assert origin.connections[0].closed.wait(5)


@pytest.mark.parametrize("end", ["fin", "rst"])
@pytest.mark.parametrize("framing", ["cl", "chunked"])
def test_upstream_cut_mid_body_is_not_passed_off_as_complete(
    origin: Origin, waylay: WaylayProcess, framing: str, end: str
) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", f"/truncate?framing={framing}&end={end}"))
        with pytest.raises((IncompleteResponse, ConnectionResetError)):
            response = client.read_response()
            pytest.fail(
                f"a complete response from a cut upstream: {response.head!r} {len(response.body)}"
            )


# --- malformed requests ------------------------------------------------------------------

A = "{authority}"
U = "http://{authority}/echo"

BAD_HEADS = {
    "unknown HTTP version": f"GET {U} HTTP/1.x\r\nHost: {A}\r\n\r\n",
    "forbidden character in method": f"GE@T {U} HTTP/1.1\r\nHost: {A}\r\n\r\n",
    "extra word in request line": f"GET {U} HTTP/1.1 extra\r\nHost: {A}\r\n\r\n",
    "not HTTP": "HELLO THERE\r\n\r\n",
    "space before colon": f"GET {U} HTTP/1.1\r\nHost: {A}\r\nX-Bad : 1\r\n\r\n",
    "field without colon": f"GET {U} HTTP/1.1\r\nHost: {A}\r\nX-No-Colon\r\n\r\n",
    "forbidden character in field name": f"GET {U} HTTP/1.1\r\nHost: {A}\r\nX(Bad): 1\r\n\r\n",
    "content-length not a number": f"POST {U} HTTP/1.1\r\nHost: {A}\r\nContent-Length: abc\r\n\r\n",
    "negative content-length": f"POST {U} HTTP/1.1\r\nHost: {A}\r\nContent-Length: -1\r\n\r\n",
    "conflicting content-lengths": (
        f"POST {U} HTTP/1.1\r\nHost: {A}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
    ),
    "content-length with transfer-encoding": (
        f"POST {U} HTTP/1.1\r\nHost: {A}\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "transfer-encoding not ending in chunked": (
        f"POST {U} HTTP/1.1\r\nHost: {A}\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
    ),
    "HTTP/1.1 without Host": f"GET {U} HTTP/1.1\r\nAccept: */*\r\n\r\n",
    "two Host fields": f"GET {U} HTTP/1.1\r\nHost: {A}\r\nHost: {A}\r\n\r\n",
}


def _assert_400_and_nothing_after(waylay: WaylayProcess, origin: Origin, bad: bytes) -> None:
    smuggled = proxy_request(origin, "GET", "/echo?smuggled")
    with WireClient(waylay.port) as client:
        client.send(bad + smuggled)
        response = client.read_response()
        assert_waylay_error(response, 400)
        after = client.wait_closed()
    assert after == b"", f"waylay answered after its 400: {after!r}"
    time.sleep(0.2)
    assert not [r.target for r in origin.requests if "smuggled" in r.target]


@pytest.mark.parametrize("template", BAD_HEADS.values(), ids=BAD_HEADS.keys())
def test_malformed_head_is_400_and_nothing_forwarded(
    origin: Origin, waylay: WaylayProcess, template: str
) -> None:
    bad = template.format(authority=origin.authority).encode()
    _assert_400_and_nothing_after(waylay, origin, bad)
    assert origin.requests == []


@pytest.mark.parametrize(
    "chunks",
    [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXX0\r\n\r\n", b"-1\r\nabc\r\n0\r\n\r\n"],
    ids=["chunk size not hex", "chunk data without CRLF", "negative chunk size"],
)
def test_malformed_chunked_body_is_400_and_nothing_after_forwarded(
    origin: Origin, waylay: WaylayProcess, chunks: bytes
) -> None:
    head = proxy_request(origin, "POST", "/echo", [("Transfer-Encoding", "chunked")])
    _assert_400_and_nothing_after(waylay, origin, head + chunks)
    assert not any(r.body_complete for r in origin.requests)


def _many_fields(count: int) -> list[tuple[str, str]]:
    return [(f"X-Field-{n}", str(n)) for n in range(count)]


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Big", "v" * (70 * 1024))],
        [("X-Half", "v" * (40 * 1024)), ("X-Other", "w" * (30 * 1024))],
    ],
    ids=["one 70 KiB field", "two fields over 64 KiB"],
)
def test_head_over_64_kib_is_431(
    origin: Origin, waylay: WaylayProcess, headers: list[tuple[str, str]]
) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo", headers))
        assert_waylay_error(client.read_response(), 431)
        client.wait_closed()
    assert origin.requests == []


def test_more_than_100_fields_is_431(origin: Origin, waylay: WaylayProcess) -> None:
    # Host and 100 more: 101 field lines.
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo", _many_fields(100)))
        assert_waylay_error(client.read_response(), 431)
        client.wait_closed()
    assert origin.requests == []


def test_heads_within_the_limits_pass(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo?fields", _many_fields(99)))
        assert client.read_response().status == 200
        client.send(proxy_request(origin, "GET", "/echo?big", [("X-Big", "v" * (60 * 1024))]))
        assert client.read_response().status == 200
    assert (
        len([name for name, _ in origin.requests[0].headers if name.startswith("X-Field-")]) == 99
    )
    assert origin.requests[1].header("X-Big") == "v" * (60 * 1024)


# --- isolation and clean-up --------------------------------------------------------------


def test_bad_request_does_not_disturb_other_connections(
    origin: Origin, waylay: WaylayProcess
) -> None:
    body = pattern_bytes(100_000)
    busy = WireClient(waylay.port)
    busy.send(
        proxy_request(origin, "POST", "/echo", [("Content-Length", str(len(body)))]) + body[:50_000]
    )
    assert origin.wait_until(lambda: bool(origin.requests) and origin.requests[0].body_length > 0)
    with WireClient(waylay.port) as bad:
        bad.send(b"\x00\x01\x02 not a request\r\n\r\n")
        assert_waylay_error(bad.read_response(), 400)
    with WireClient(waylay.port) as fresh:
        fresh.send(proxy_request(origin, "GET", "/echo?fresh"))
        assert fresh.read_response().json()["target"] == "/echo?fresh"
    busy.send(body[50_000:])
    echo = busy.read_response().json()
    busy.close()
    assert echo["body_length"] == len(body)


@pytest.mark.parametrize("vanish", ["close", "abort"])
def test_client_vanishing_mid_upload_closes_upstream(
    origin: Origin, waylay: WaylayProcess, vanish: str
) -> None:
    baseline = waylay.open_fds()
    client = WireClient(waylay.port)
    client.send(proxy_request(origin, "POST", "/echo", [("Content-Length", str(10 * MiB))]))
    client.send(pattern_bytes(1 * MiB))
    assert origin.wait_until(lambda: bool(origin.requests) and origin.requests[0].body_length > 0)
    getattr(client, vanish)()
    assert origin.connections[0].closed.wait(5), (
        "upstream connection still open after the client left"
    )
    assert not origin.requests[0].body_complete
    assert origin.wait_until(lambda: waylay.open_fds() <= baseline), (waylay.open_fds(), baseline)


@pytest.mark.parametrize("vanish", ["close", "abort"])
def test_client_vanishing_mid_download_closes_upstream(
    origin: Origin, waylay: WaylayProcess, vanish: str
) -> None:
    baseline = waylay.open_fds()
    client = WireClient(waylay.port)
    client.send(proxy_request(origin, "GET", f"/download/{1024 * MiB}"))
    client.read_head()
    client.read_exactly(1 * MiB)
    getattr(client, vanish)()
    assert origin.connections[0].closed.wait(5), (
        "upstream connection still open after the client left"
    )
    assert origin.wait_until(lambda: waylay.open_fds() <= baseline), (waylay.open_fds(), baseline)


def test_no_socket_left_behind_after_errors(
    origin: Origin, waylay: WaylayProcess, refused_port: int
) -> None:
    baseline = waylay.open_fds()
    for _ in range(5):
        with WireClient(waylay.port) as client:
            client.send(b"NOT HTTP\r\n\r\n")
            assert_waylay_error(client.read_response(), 400)
        assert_waylay_error(_fetch(waylay, f"http://{ORIGIN_HOST}:{refused_port}/"), 502)
        assert_waylay_error(_fetch(waylay, "http://not-listed.invalid/"), 502)
        assert_waylay_error(_fetch(waylay, origin.url("/reset")), 502)
    assert origin.wait_until(lambda: waylay.open_fds() <= baseline), (waylay.open_fds(), baseline)
