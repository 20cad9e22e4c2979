"""--map-remote on flows built here: the new URL, the Host header, which hooks."""

from __future__ import annotations

import logging

import pytest

from waylay.addons.mapremote import MapRemote, map_remote
from waylay.hooks import HookTable

from .sample_flows import request_flow, respond


def _addon(*rules: str) -> MapRemote:
    addon = map_remote(rules)
    assert addon is not None
    return addon


def test_no_rules_no_addon() -> None:
    assert map_remote(()) is None


# (rules, URL before, Host before, URL after, Host after)
CASES = [
    # Another host: Host follows, with the port when it is not the default.
    (
        ["|origin.example.test|other.example.test:8080"],
        "http://origin.example.test/a?b=1",
        "origin.example.test",
        "http://other.example.test:8080/a?b=1",
        "other.example.test:8080",
    ),
    # The path alone: Host is left as the client wrote it.
    (
        ["|/v1/|/v2/"],
        "http://api.example.test/v1/x",
        "API.example.test",
        "http://api.example.test/v2/x",
        "API.example.test",
    ),
    # http to https on the default ports: the authority is the same, Host too.
    (
        ["|^http://|https://"],
        "http://api.example.test/x",
        "api.example.test",
        "https://api.example.test/x",
        "api.example.test",
    ),
    # A port that was explicit and becomes the default one.
    (
        ["|:8080/|/"],
        "http://api.example.test:8080/x",
        "api.example.test:8080",
        "http://api.example.test/x",
        "api.example.test",
    ),
    # Groups, and an IPv6 host in brackets.
    (
        ["|^http://([^/]+)/api/(.*)$|http://[::1]:9000/\\2?from=\\1"],
        "http://api.example.test/api/users",
        "api.example.test",
        "http://[::1]:9000/users?from=api.example.test",
        "[::1]:9000",
    ),
    # Rules one after the other, each on what the one before left.
    (
        ["|a.example.test|b.example.test", "|b.example.test|c.example.test"],
        "http://a.example.test/",
        "a.example.test",
        "http://c.example.test/",
        "c.example.test",
    ),
    # A filter that does not match, and a regex that does not: nothing changes.
    (
        ["|~d elsewhere|origin|other", "|nowhere|x"],
        "http://origin.example.test/",
        "origin.example.test",
        "http://origin.example.test/",
        "origin.example.test",
    ),
]


@pytest.mark.parametrize(("rules", "url", "host", "new_url", "new_host"), CASES)
def test_rewrite(rules: list[str], url: str, host: str, new_url: str, new_host: str) -> None:
    flow = request_flow(url, headers=[("Host", host)])
    _addon(*rules).map_request(flow)
    assert flow.request.url == new_url
    assert flow.request.headers.get_all("Host") == [new_host]


def test_request_parts_follow_the_url() -> None:
    flow = request_flow("http://origin.example.test/a")
    _addon("|^http://origin.example.test/|https://api.example.test:8443/b/").map_request(flow)
    request = flow.request
    assert (request.scheme, request.host, request.port, request.path) == (
        "https",
        "api.example.test",
        8443,
        "/b/a",
    )


def test_no_host_header_gets_none() -> None:
    flow = request_flow("http://origin.example.test/", http_version="HTTP/1.0")
    del flow.request.headers["Host"]
    _addon("|origin|other").map_request(flow)
    assert flow.request.url == "http://other.example.test/"
    assert "Host" not in flow.request.headers


@pytest.mark.parametrize("replacement", ["ftp://x/", "not a url", "http://a b/", "http://u@h/"])
def test_a_result_that_is_not_a_url_is_not_applied(
    replacement: str, caplog: pytest.LogCaptureFixture
) -> None:
    flow = request_flow("http://origin.example.test/")
    with caplog.at_level(logging.WARNING):
        _addon(f"|^.*$|{replacement}").map_request(flow)
    assert flow.request.url == "http://origin.example.test/"
    assert flow.request.headers["Host"] == "origin.example.test"
    assert "not rewritten" in caplog.text


def test_connect_and_answered_flows_are_left_alone() -> None:
    connect = request_flow("origin.example.test:443", method="CONNECT")
    _addon("|origin|other").map_request(connect)
    assert connect.request.host == "origin.example.test"
    answered = respond(request_flow("http://origin.example.test/"), 403)
    _addon("|origin|other").map_request(answered)
    assert answered.request.host == "origin.example.test"


def test_requestheaders_unless_a_filter_reads_bodies() -> None:
    table = HookTable([_addon("|a|b")])
    assert len(table.requestheaders) == 1 and table.request == ()
    assert table.responseheaders == table.response == ()
    table = HookTable([_addon("|~bq x|a|b")])
    assert table.requestheaders == () and len(table.request) == 1
    flow = request_flow("http://a.example.test/", method="POST", body=b"x")
    addon = _addon("|~bq x|a.example|b.example")
    assert addon.request is not None
    addon.request(flow)
    assert flow.request.url == "http://b.example.test/"
