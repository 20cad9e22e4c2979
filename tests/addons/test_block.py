"""--block on flows built here: 403s naming the rule, CONNECT refused, which hooks."""

from __future__ import annotations

from waylay.addons.block import Block, block
from waylay.hooks import HookTable

from .sample_flows import request_flow, respond


def _addon(*rules: str) -> Block:
    addon = block(rules)
    assert addon is not None
    return addon


def test_no_rules_no_addon() -> None:
    assert block(()) is None


def test_matching_request_is_answered_403_naming_the_rule() -> None:
    addon = _addon("~d nothing.test", "~d ads.example.test & ~u /track")
    flow = request_flow("http://ads.example.test/track?id=1")
    addon.block(flow)
    response = flow.response
    assert response is not None and response.status_code == 403
    assert response.reason == "Forbidden"
    assert response.raw_content == b"waylay: blocked by --block '~d ads.example.test & ~u /track'\n"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Waylay-Error"] == "blocked"


def test_the_first_matching_rule_is_named() -> None:
    flow = request_flow("http://ads.example.test/")
    _addon("~d ads", "~d example").block(flow)
    assert flow.response is not None and b"'~d ads'" in (flow.response.raw_content or b"")


def test_other_requests_go_on() -> None:
    flow = request_flow("http://origin.example.test/")
    _addon("~d ads.example.test").block(flow)
    assert flow.response is None


def test_response_filters_never_block() -> None:
    for rule in ("~s", "~c 200", "~hs server", "~ts html", "~a"):
        flow = request_flow("http://origin.example.test/")
        _addon(rule).block(flow)
        assert flow.response is None, rule


def test_connect_refused() -> None:
    addon = _addon("~d ads.example.test")
    flow = request_flow("ads.example.test:443", method="CONNECT")
    addon.http_connect(flow)
    assert flow.response is not None and flow.response.status_code == 403
    other = request_flow("origin.example.test:443", method="CONNECT")
    addon.http_connect(other)
    assert other.response is None


def test_an_answer_already_made_is_kept() -> None:
    flow = respond(request_flow("http://ads.example.test/"), 200, body=b"mapped")
    _addon("~d ads").block(flow)
    assert flow.response is not None and flow.response.status_code == 200


def test_hooks() -> None:
    table = HookTable([_addon("~d ads")])
    assert len(table.requestheaders) == 1 and len(table.http_connect) == 1
    assert table.request == table.response == table.responseheaders == ()
    table = HookTable([_addon("~d ads", "~bq password")])
    assert table.requestheaders == () and len(table.request) == 1
    flow = request_flow("http://origin.example.test/", method="POST", body=b"password=1")
    table.request[0](flow)
    assert flow.response is not None and flow.response.status_code == 403
    connect = request_flow("origin.example.test:443", method="CONNECT")
    table.http_connect[0](connect)  # a CONNECT has no body: ~bq cannot match it
    assert connect.response is None
