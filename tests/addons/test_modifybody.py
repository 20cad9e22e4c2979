"""--modify-body on flows built here: decoded bodies, templates, @FILE, which side."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import brotli
import pytest

from waylay.addons.modifybody import ModifyBody, modify_body
from waylay.hooks import HookTable

from .sample_flows import request_flow, respond


def _addon(*rules: str) -> ModifyBody:
    addon = modify_body(rules)
    assert addon is not None
    return addon


def test_no_rules_no_addon() -> None:
    assert modify_body(()) is None


# (rules, body before, body after)
CASES = [
    (["/hello/bye"], b"hello, hello", b"bye, bye"),
    (["/HELLO/bye"], b"hello", b"hello"),  # case-sensitive unless the regex says otherwise
    (["/(?i)HELLO/bye"], b"Hello", b"bye"),
    (["/a.b/X"], b"a\nb", b"X"),  # DOTALL: . crosses lines, as in mitmproxy
    (["/(\\w+)@(\\w+)/\\2 at \\1"], b"me@host", b"host at me"),
    (["/(?P<n>\\d+)/<\\g<n>>"], b"a1b22", b"a<1>b<22>"),
    (["/a/b", "/b/c"], b"a", b"c"),  # each rule sees what the one before left
    (["/x/"], b"xax", b"a"),  # an empty replacement deletes
    (["/é/e"], "café".encode(), b"cafe"),  # the regex is UTF-8, matched as bytes
    (["|~q|a/b|c/d"], b"1 a/b 2", b"1 c/d 2"),
]


@pytest.mark.parametrize(("rules", "before", "after"), CASES)
def test_request_body(rules: list[str], before: bytes, after: bytes) -> None:
    flow = request_flow(method="POST", headers=[("Content-Length", str(len(before)))], body=before)
    _addon(*rules).request(flow)
    assert flow.request.raw_content == after
    assert flow.request.headers["Content-Length"] == str(len(after))


def test_gzip_response_is_decoded_and_encoded_again() -> None:
    original = b"<p>hello world</p>" * 100
    raw = gzip.compress(original)
    flow = respond(
        request_flow(),
        headers=[("Content-Encoding", "gzip"), ("Content-Length", str(len(raw)))],
        body=raw,
    )
    _addon("/world/there").response(flow)
    assert flow.response is not None and flow.response.raw_content is not None
    assert gzip.decompress(flow.response.raw_content) == original.replace(b"world", b"there")
    assert flow.response.headers["Content-Length"] == str(len(flow.response.raw_content))
    assert flow.response.headers["Content-Encoding"] == "gzip"


def test_brotli_response() -> None:
    raw = brotli.compress(b"one two")
    flow = respond(request_flow(), headers=[("Content-Encoding", "br")], body=raw)
    _addon("/two/three").response(flow)
    assert flow.response is not None and flow.response.raw_content is not None
    assert brotli.decompress(flow.response.raw_content) == b"one three"


def test_no_match_keeps_the_very_bytes() -> None:
    raw = gzip.compress(b"nothing to see", mtime=0)
    flow = respond(request_flow(), headers=[("Content-Encoding", "gzip")], body=raw)
    _addon("/absent/x").response(flow)
    assert flow.response is not None and flow.response.raw_content is raw


def test_streamed_body_is_left_alone() -> None:
    flow = respond(request_flow(), body=None)
    _addon("/a/b").response(flow)
    assert flow.response is not None and flow.response.raw_content is None


def test_undecodable_body_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    flow = respond(request_flow(), headers=[("Content-Encoding", "gzip")], body=b"not gzip")
    with caplog.at_level(logging.WARNING):
        _addon("/not/yes").response(flow)
    assert flow.response is not None and flow.response.raw_content == b"not gzip"
    assert "left as it is" in caplog.text


def test_sides() -> None:
    addon = _addon("/~q/a/request", "/~s/a/response", "/~c 201/a/created")
    flow = request_flow(method="POST", body=b"a")
    addon.request(flow)
    assert flow.request.raw_content == b"request"
    respond(flow, 201, body=b"a")
    addon.response(flow)
    assert flow.response is not None and flow.response.raw_content == b"response"
    assert flow.request.raw_content == b"request"  # the response hook does not touch it


def test_filter_on_the_response_body() -> None:
    addon = _addon("/~bs secret/secret/[redacted]")
    flow = respond(request_flow(), body=b"a secret")
    addon.response(flow)
    assert flow.response is not None and flow.response.raw_content == b"a [redacted]"


def test_an_answer_made_by_another_addon_leaves_the_request_alone() -> None:
    flow = respond(request_flow(method="POST", body=b"a"), 403, body=b"no")
    _addon("/a/b").request(flow)
    assert flow.request.raw_content == b"a"


def test_takes_whole_bodies() -> None:
    table = HookTable([_addon("/a/b")])
    assert len(table.request) == len(table.response) == 1
    assert table.requestheaders == table.responseheaders == ()


def test_replacement_file_is_literal_and_read_each_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    replacement = tmp_path / "replacement.js"
    replacement.write_bytes(b"var re = /\\d+/; // \\1 stays\n")
    addon = _addon(f"|~q|<script>|@{replacement}")
    flow = request_flow(method="POST", body=b"<script>")
    addon.request(flow)
    assert flow.request.raw_content == b"var re = /\\d+/; // \\1 stays\n"
    replacement.write_bytes(b"v2")
    flow = request_flow(method="POST", body=b"<script>")
    addon.request(flow)
    assert flow.request.raw_content == b"v2"
    replacement.unlink()
    flow = request_flow(method="POST", body=b"<script>")
    with caplog.at_level(logging.WARNING):
        addon.request(flow)
    assert flow.request.raw_content == b"<script>" and "skipped" in caplog.text
