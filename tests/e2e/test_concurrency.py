"""Connections are independent: many at once, and one stuck or slow one holds up no other."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from .contract import proxy_request
from .origin import MiB, Origin, pattern_bytes, pattern_sha256
from .waylay_process import WaylayProcess
from .wire import WireClient


def test_twenty_clients_at_once(origin: Origin, waylay: WaylayProcess) -> None:
    def one_client(n: int) -> list[str]:
        targets = []
        with WireClient(waylay.port) as client:
            for i in range(5):
                size = 1000 * (n + 1) + i
                client.send(
                    proxy_request(origin, "POST", f"/echo?c={n}&i={i}", body=pattern_bytes(size))
                )
                echo = client.read_response().json()
                assert (echo["body_length"], echo["body_sha256"]) == (size, pattern_sha256(size))
                targets.append(echo["target"])
        return targets

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one_client, range(20)))
    assert results == [[f"/echo?c={n}&i={i}" for i in range(5)] for n in range(20)]
    assert len(origin.requests) == 100


def test_hanging_upstream_blocks_no_other_client(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as stuck:
        stuck.send(proxy_request(origin, "GET", "/hang"))
        assert origin.wait_until(lambda: len(origin.requests) == 1)
        started = time.monotonic()
        with WireClient(waylay.port) as other:
            other.send(proxy_request(origin, "GET", "/echo?other"))
            assert other.read_response().json()["target"] == "/echo?other"
        assert time.monotonic() - started < 2


def test_client_not_reading_blocks_no_other_client(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as idle_reader:
        idle_reader.send(proxy_request(origin, "GET", f"/download/{200 * MiB}"))
        idle_reader.read_head()
        started = time.monotonic()
        with WireClient(waylay.port) as other:
            other.send(proxy_request(origin, "GET", "/bytes/300000"))
            assert other.read_response().body == pattern_bytes(300_000)
        assert time.monotonic() - started < 2
    # Back-pressure, not buffering: the stalled download did not pile up in the proxy.
    assert waylay.vmhwm() < 100 * MiB
