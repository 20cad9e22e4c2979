"""Slowloris: clients that send a request head one byte a second (issue 9, "Done when").

Each holds a connection for as long as its head is not complete; unbounded, a few hundred of
them hold every connection a proxy has. waylay times a head from its first byte
(`--head-timeout`, 30 s by default, 2 s here): then the client gets a 408 and is closed. The
clock does not run while a kept-alive connection is idle between requests (that is
`--client-idle-timeout`), and meanwhile every other client is served as usual: plain HTTP and
inside intercepted tunnels alike.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from .contract import proxy_request
from .origin import Origin
from .pki import TestCA
from .tls_clients import tls_wire
from .tls_origin import TlsOrigin
from .waylay_process import StartWaylay, WaylayProcess
from .wire import WireClient, request_bytes

HEAD_TIMEOUT = 2.0
# The sweeper looks every HEAD_TIMEOUT / 4 seconds; allow for it and a busy machine.
LATE = 1.5
HTTPS_HOST = "www.example.test"


@dataclass
class Trickle:
    """What one slow client saw: when its first byte left, when it was answered and closed."""

    sent: int = 0
    first_byte_at: float = 0.0
    closed_at: float = 0.0
    received: bytes = b""
    error: str = ""


def _trickle(client: WireClient, head: bytes, outcome: Trickle, pace: float = 1.0) -> None:
    """Send ``head`` a byte every ``pace`` seconds until waylay answers; then wait for the close."""
    try:
        outcome.first_byte_at = time.monotonic()
        for byte in head:
            client.send(bytes([byte]))
            outcome.sent += 1
            answer = client.read_available(wait=pace)
            if answer:
                outcome.received = answer + client.wait_closed(timeout=5.0)
                break
        outcome.closed_at = time.monotonic()
    except (OSError, AssertionError) as exc:
        outcome.error = repr(exc)
    finally:
        client.close()


def _fetch(waylay: WaylayProcess, origin: Origin, n: int) -> float:
    started = time.monotonic()
    with WireClient(waylay.port, timeout=5.0) as client:
        client.send(proxy_request(origin, "GET", f"/echo?normal={n}"))
        assert client.read_response().json()["target"] == f"/echo?normal={n}"
    return time.monotonic() - started


def _fetch_https(waylay: WaylayProcess, tls_origin: TlsOrigin, confdir: Path, n: int) -> float:
    started = time.monotonic()
    with tls_wire(waylay, f"{HTTPS_HOST}:{tls_origin.port}", confdir) as client:
        client.send(request_bytes("GET", f"/echo?tls={n}", [("Host", HTTPS_HOST)]))
        assert client.read_response().json()["target"] == f"/echo?tls={n}"
    return time.monotonic() - started


@pytest.mark.timeout(60)
def test_slow_heads_are_closed_at_the_timeout_while_others_are_served(
    origin: Origin,
    tls_origin: TlsOrigin,
    start_waylay: StartWaylay,
    pki: TestCA,
    confdir: Path,
) -> None:
    ca = str(pki.cert_path)
    waylay = start_waylay("--upstream-ca", ca, "--head-timeout", str(HEAD_TIMEOUT))
    _fetch_https(waylay, tls_origin, confdir, -1)  # the forged certificate is made once
    baseline = waylay.open_fds()
    plain_head = proxy_request(origin, "GET", "/echo?slowloris")
    tls_head = request_bytes("GET", "/echo?slowloris", [("Host", HTTPS_HOST)])
    slow: list[tuple[WireClient, bytes, Trickle]] = []
    for _ in range(20):
        slow.append((WireClient(waylay.port), plain_head, Trickle()))
    for _ in range(5):
        tunnel = tls_wire(waylay, f"{HTTPS_HOST}:{tls_origin.port}", confdir)
        slow.append((tunnel, tls_head, Trickle()))
    threads = [threading.Thread(target=_trickle, args=item, daemon=True) for item in slow]
    for thread in threads:
        thread.start()

    # Meanwhile, others are served as usual: never slower than a second.
    durations: list[float] = []
    n = 0
    deadline = time.monotonic() + HEAD_TIMEOUT + LATE + 0.5
    while time.monotonic() < deadline:
        durations.append(_fetch(waylay, origin, n))
        if n % 5 == 0:
            durations.append(_fetch_https(waylay, tls_origin, confdir, n))
        n += 1
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=10)

    print(f"{len(durations)} normal requests meanwhile, slowest {max(durations) * 1000:.0f} ms")
    assert max(durations) < 1.0, durations
    for _client, _head, outcome in slow:
        assert not outcome.error, outcome
        took = outcome.closed_at - outcome.first_byte_at
        assert HEAD_TIMEOUT <= took < HEAD_TIMEOUT + LATE, outcome
        assert outcome.sent <= HEAD_TIMEOUT + LATE + 1, outcome
        head, _, reason = outcome.received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), outcome
        assert b"\r\nX-Waylay-Error: head-timeout\r\n" in head + b"\r\n", outcome
        assert b"--head-timeout" in reason, outcome
    assert not [r for r in origin.requests + tls_origin.requests if "slowloris" in r.target]
    assert origin.wait_until(lambda: waylay.open_fds() <= baseline), (waylay.open_fds(), baseline)


def test_the_head_clock_starts_at_the_heads_first_byte(
    origin: Origin, start_waylay: StartWaylay
) -> None:
    # Idle between requests is not a slow head: a kept-alive connection silent for longer
    # than --head-timeout still gets its next request served.
    waylay = start_waylay("--head-timeout", "1")
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo?first"))
        assert client.read_response().status == 200
        time.sleep(2.5)
        client.send(proxy_request(origin, "GET", "/echo?after-idle"))
        assert client.read_response().json()["target"] == "/echo?after-idle"


def test_a_head_sent_in_pieces_within_the_timeout_is_served(
    origin: Origin, start_waylay: StartWaylay
) -> None:
    waylay = start_waylay("--head-timeout", "2")
    head = proxy_request(origin, "GET", "/echo?pieces")
    with WireClient(waylay.port) as client:
        for piece in (head[:10], head[10:30], head[30:]):
            client.send(piece)
            time.sleep(0.5)
        assert client.read_response().json()["target"] == "/echo?pieces"


def test_an_idle_client_is_closed_at_the_idle_timeout_without_a_word(
    origin: Origin, start_waylay: StartWaylay
) -> None:
    waylay = start_waylay("--client-idle-timeout", "1")
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo?once"))
        assert client.read_response().status == 200
        started = time.monotonic()
        # Nothing is owed to a client between requests: no 408, just the close.
        assert client.wait_closed(timeout=4.0) == b""
        assert 1.0 <= time.monotonic() - started < 3.0
