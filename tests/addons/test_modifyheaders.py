"""--modify-headers on flows built here: set, add, remove, which side, which hooks, @FILE."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from waylay.addons.modifyheaders import ModifyHeaders, modify_headers
from waylay.hooks import HookTable

from .sample_flows import request_flow, respond


def _addon(*rules: str) -> ModifyHeaders:
    addon = modify_headers(rules)
    assert addon is not None
    return addon


def test_no_rules_no_addon() -> None:
    assert modify_headers(()) is None


# (rules, request fields before, fields after) — on a request: ~q and ~d match, ~s does not.
REQUEST_CASES = [
    (["/X-A/1"], [], [("X-A", "1")]),
    (["/X-A/1"], [("x-a", "old"), ("X-A", "older")], [("X-A", "1")]),
    (["/x-a/1"], [("X-A", "old")], [("x-a", "1")]),  # names match without regard to case
    (["/X-A/1", "/X-A/2"], [("X-A", "old")], [("X-A", "1"), ("X-A", "2")]),
    (["/X-A/"], [("X-A", "a"), ("Other", "o"), ("X-A", "b")], [("Other", "o")]),
    (["/X-A/"], [("Other", "o")], [("Other", "o")]),  # removing what is not there
    (["/~q/X-A/a/b"], [], [("X-A", "a/b")]),
    (["/~d origin.example.test/X-A/1"], [], [("X-A", "1")]),
    (["/~d elsewhere/X-A/1"], [("X-A", "kept")], [("X-A", "kept")]),
    (["/~s/X-A/1"], [("X-A", "kept")], [("X-A", "kept")]),  # no response yet: ~s never matches
    (["/~c 200/X-A/"], [("X-A", "kept")], [("X-A", "kept")]),
    (["/~hq x-b/X-A/1", "/~hq nope/X-A/2"], [("X-B", "1")], [("X-B", "1"), ("X-A", "1")]),
    (["/X-A/  padded  "], [], [("X-A", "padded")]),
]


@pytest.mark.parametrize(("rules", "before", "after"), REQUEST_CASES)
def test_request_headers(
    rules: list[str], before: list[tuple[str, str]], after: list[tuple[str, str]]
) -> None:
    flow = request_flow(headers=[("Host", "origin.example.test"), *before])
    _addon(*rules).modify_request(flow)
    assert flow.request.headers.items_multi() == [("Host", "origin.example.test"), *after]


def test_filters_see_the_flow_before_any_rule_changed_it() -> None:
    # The second rule's filter looks for the header the first rule removes: it still matches.
    flow = request_flow(headers=[("Host", "h"), ("X-Old", "1")])
    _addon("/X-Old/", "/~hq x-old/X-New/1").modify_request(flow)
    assert flow.request.headers.items_multi() == [("Host", "h"), ("X-New", "1")]


def test_response_side() -> None:
    addon = _addon("/~q/X-Req/1", "/~s/X-Resp/1", "/~c 404/X-Missing/1", "/X-Both/1", "/Server/")
    flow = request_flow(headers=[("Host", "h")])
    addon.modify_request(flow)
    assert flow.request.headers.items_multi() == [("Host", "h"), ("X-Req", "1"), ("X-Both", "1")]
    respond(flow, 404, headers=[("Server", "origin"), ("Content-Length", "0")])
    addon.modify_response(flow)
    assert flow.response is not None
    assert flow.response.headers.items_multi() == [
        ("Content-Length", "0"),
        ("X-Resp", "1"),
        ("X-Missing", "1"),
        ("X-Both", "1"),
    ]


def test_an_answer_made_by_another_addon_is_not_a_request_to_modify() -> None:
    flow = request_flow(headers=[("Host", "h")])
    respond(flow, 403)
    _addon("/X-A/1").modify_request(flow)
    assert "X-A" not in flow.request.headers


def test_killed_flows_are_left_alone() -> None:
    flow = respond(request_flow(), 200)
    flow.kill()
    _addon("/X-A/1").modify_response(flow)
    assert flow.response is not None and "X-A" not in flow.response.headers


def test_heads_only_unless_a_filter_reads_bodies() -> None:
    heads = _addon("/~d a/X-A/1", "/X-B/2")
    table = HookTable([heads])
    assert len(table.requestheaders) == len(table.responseheaders) == 1
    assert table.request == table.response == ()
    bodies = _addon("/~d a/X-A/1", "/~bq secret/X-B/2")
    table = HookTable([bodies])
    assert table.requestheaders == table.responseheaders == ()
    assert len(table.request) == len(table.response) == 1


def test_body_filter_on_whole_bodies() -> None:
    addon = _addon("/~bq secret/X-Secret/yes")
    flow = request_flow(headers=[("Host", "h")], body=b"the secret word")
    assert addon.request is not None
    addon.request(flow)
    assert flow.request.headers["X-Secret"] == "yes"
    other = request_flow(headers=[("Host", "h")], body=b"nothing")
    addon.request(other)
    assert "X-Secret" not in other.request.headers


def test_value_from_a_file_read_each_time(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    token = tmp_path / "token"
    token.write_bytes(b"first\r\n")
    addon = _addon(f"|X-Token|@{token}")
    flow = request_flow(headers=[("Host", "h")])
    addon.modify_request(flow)
    assert flow.request.headers["X-Token"] == "first"
    token.write_bytes(b"second\n")
    addon.modify_request(flow)
    assert flow.request.headers.get_all("X-Token") == ["second"]
    token.write_bytes(b"")
    addon.modify_request(flow)  # an empty file: the header is removed
    assert "X-Token" not in flow.request.headers
    token.write_bytes(b"a\nb")
    flow = request_flow(headers=[("Host", "h"), ("X-Token", "old")])
    with caplog.at_level(logging.WARNING):
        addon.modify_request(flow)
    assert "skipped" in caplog.text and "more than one line" in caplog.text
    token.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        addon.modify_request(flow)
    assert "skipped" in caplog.text
    assert flow.request.headers["X-Token"] == "old"  # the rule is skipped as a whole


def test_value_from_a_file_with_latin1_bytes(tmp_path: Path) -> None:
    value = tmp_path / "value"
    value.write_bytes(b"caf\xe9\n")
    flow = request_flow(headers=[("Host", "h")])
    _addon(f"|X-A|@{value}").modify_request(flow)
    assert flow.request.headers.fields[-1] == (b"X-A", b"caf\xe9")
