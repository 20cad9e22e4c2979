"""``--hosts FILE`` answers names before DNS; ``--hosts-only`` refuses every other name.

The file is in /etc/hosts syntax (conftest's HOSTS_FILE_TEXT): several names on a line, tabs,
comments after the names, commented-out lines, IPv6 addresses.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .contract import assert_waylay_error, proxy_request
from .origin import Origin
from .waylay_process import StartWaylay, WaylayProcess
from .wire import WireClient


def _echo_host(waylay: WaylayProcess, origin: Origin, host: str) -> str | None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo", host=host))
        response = client.read_response()
    assert response.status == 200, response.head + response.body
    return origin.requests[-1].header("Host")


@pytest.mark.parametrize("host", ["origin.example.test", "api.example.test", "tunnel.example.test"])
def test_every_name_of_the_file_resolves(origin: Origin, waylay: WaylayProcess, host: str) -> None:
    assert _echo_host(waylay, origin, host) == f"{host}:{origin.port}"


def test_names_match_without_regard_to_case(origin: Origin, waylay: WaylayProcess) -> None:
    assert _echo_host(waylay, origin, "Origin.EXAMPLE.test") is not None


def test_hosts_without_hosts_only(origin: Origin, start_waylay: StartWaylay) -> None:
    waylay = start_waylay(hosts_only=False)
    assert _echo_host(waylay, origin, "api.example.test") == f"api.example.test:{origin.port}"


@pytest.fixture
def origin_v6() -> Iterator[Origin]:
    server = Origin("::1")
    server.start()
    yield server
    server.stop()


def test_ipv6_address_in_the_file(origin_v6: Origin, waylay: WaylayProcess) -> None:
    assert _echo_host(waylay, origin_v6, "v6.example.test") == f"v6.example.test:{origin_v6.port}"


@pytest.mark.parametrize("host", ["commented.example.test", "not-listed.invalid"])
def test_hosts_only_refuses_other_names(origin: Origin, waylay: WaylayProcess, host: str) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo", host=host))
        assert_waylay_error(client.read_response(), 502, b"not in hosts file")
    assert origin.requests == []
