"""Edits of a paused flow (PATCH /api/live/{id}): what is applied, and what is refused.

Tables of (changes, expected) on flows built here; the API's own tests (test_live.py) show the
same edits going on the wire.
"""

from __future__ import annotations

import base64
import gzip
from typing import Any

import pytest

from tests.addons.sample_flows import request_flow, respond
from waylay.web.live import EditError, edit_request, edit_response


def test_a_request_edit_changes_what_it_names() -> None:
    flow = request_flow("http://origin.example.test/a", headers=[("X-Old", "1")], body=b"")
    edit_request(
        flow.request,
        {
            "method": "PUT",
            "url": "https://other.example.test:8443/b?q=1",
            "headers": [["X-New", "2"], ["X-New", "3"]],
            "body": "héllo",
        },
    )
    request = flow.request
    assert (request.method, request.scheme, request.host, request.port, request.path) == (
        "PUT",
        "https",
        "other.example.test",
        8443,
        "/b?q=1",
    )
    assert request.headers.items_multi() == [("X-New", "2"), ("X-New", "3")]
    assert request.raw_content == "héllo".encode()


def test_a_body_is_the_decoded_content_encoded_as_the_headers_say() -> None:
    flow = request_flow(
        headers=[("Content-Encoding", "gzip"), ("Content-Length", "3")], body=gzip.compress(b"x")
    )
    edit_request(flow.request, {"body_base64": base64.b64encode(b"\x00new").decode()})
    assert flow.request.raw_content is not None
    assert gzip.decompress(flow.request.raw_content) == b"\x00new"
    assert flow.request.headers["content-length"] == str(len(flow.request.raw_content))


def test_new_headers_decide_the_body_s_encoding() -> None:
    flow = request_flow(headers=[("Content-Encoding", "gzip")], body=gzip.compress(b"x"))
    edit_request(flow.request, {"headers": [["Content-Type", "text/plain"]], "body": "plain"})
    assert flow.request.raw_content == b"plain"


def test_a_response_edit_changes_what_it_names() -> None:
    flow = respond(request_flow(), 200, headers=[("Content-Type", "text/plain")], body=b"old")
    assert flow.response is not None
    edit_response(
        flow.response,
        {"status_code": 418, "reason": "Short And Stout", "headers": [], "body": "new"},
    )
    response = flow.response
    assert (response.status_code, response.reason, response.raw_content) == (
        418,
        "Short And Stout",
        b"new",
    )
    assert response.headers.items_multi() == []


# (changes, a piece of the reason): each refused, and the request left as it was.
REQUEST_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"method": "GE T"}, "is not a method"),
    ({"method": ""}, "is not a method"),
    ({"method": 1}, "is not a method"),
    ({"url": "ftp://origin.example.test/"}, "url:"),
    ({"url": "/relative"}, "url:"),
    ({"url": None}, "url: a string"),
    ({"headers": [["X-A", "a\r\nb"]]}, "CR, LF or NUL"),
    ({"headers": [["X A", "1"]]}, "not a valid header name"),
    ({"headers": [["X-A", "é€"]]}, "outside Latin-1"),
    ({"headers": {"X-A": "1"}}, "a list of [name, value] pairs"),
    ({"headers": [["X-A"]]}, "a list of [name, value] pairs"),
    ({"body": 5}, "body: a string"),
    ({"body_base64": "not base64!"}, "not base64"),
    ({"body": "a", "body_base64": "YQ=="}, "not both"),
    ({"status_code": 200}, "unknown field 'status_code'"),
    # The method is fine, the URL not: neither is applied.
    ({"method": "PUT", "url": "ftp://x/"}, "url:"),
    # A Content-Encoding waylay cannot apply to the new body.
    ({"headers": [["Content-Encoding", "x-custom"]], "body": "a"}, "body:"),
]


@pytest.mark.parametrize(("changes", "reason"), REQUEST_REFUSALS)
def test_request_refusals(changes: dict[str, Any], reason: str) -> None:
    flow = request_flow("http://origin.example.test/a", headers=[("X-Old", "1")], body=b"b")
    with pytest.raises(EditError) as raised:
        edit_request(flow.request, changes)
    assert reason in str(raised.value)
    request = flow.request
    assert (request.method, request.url, request.raw_content) == (
        "GET",
        "http://origin.example.test/a",
        b"b",
    )
    assert request.headers.items_multi() == [("Host", "origin.example.test"), ("X-Old", "1")]


RESPONSE_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"status_code": 100}, "from 200 to 999"),
    ({"status_code": 1000}, "from 200 to 999"),
    ({"status_code": "200"}, "from 200 to 999"),
    ({"status_code": True}, "from 200 to 999"),
    ({"reason": "a\r\nb"}, "one line of Latin-1"),
    ({"reason": "€"}, "one line of Latin-1"),
    ({"status_code": 204}, "a 204 response has no body"),
    ({"status_code": 304, "body": "x"}, "a 304 response has no body"),
    ({"headers": [["Bad Name", "1"]]}, "not a valid header name"),
    ({"method": "GET"}, "unknown field 'method'"),
]


@pytest.mark.parametrize(("changes", "reason"), RESPONSE_REFUSALS)
def test_response_refusals(changes: dict[str, Any], reason: str) -> None:
    flow = respond(request_flow(), 200, headers=[("X-Old", "1")], body=b"old")
    response = flow.response
    assert response is not None
    with pytest.raises(EditError) as raised:
        edit_response(response, changes)
    assert reason in str(raised.value)
    assert (response.status_code, response.reason, response.raw_content) == (200, "OK", b"old")
    assert response.headers.items_multi() == [("X-Old", "1")]


def test_an_empty_body_may_go_on_a_204() -> None:
    flow = respond(request_flow(), 200, body=b"")
    assert flow.response is not None
    edit_response(flow.response, {"status_code": 204})
    assert flow.response.status_code == 204


def test_a_body_given_back_unchanged_keeps_its_wire_bytes() -> None:
    # The page sends the whole message each time: what it did not change must not change.
    wire = gzip.compress(b"same", mtime=1)
    flow = request_flow(headers=[("Content-Encoding", "gzip")], body=wire)
    headers = [["Content-Encoding", "gzip"], ["X-Edited", "1"]]
    edit_request(flow.request, {"headers": headers, "body": "same"})
    assert flow.request.raw_content == wire


def test_a_body_that_could_not_be_decoded_is_not_encoded_twice() -> None:
    # LIVE shows such a body as it is on the wire; given back so, it stays so.
    broken = b"\x1f\x8bnot really gzip"
    flow = request_flow(headers=[("Content-Encoding", "gzip")], body=broken)
    edit_request(flow.request, {"body_base64": base64.b64encode(broken).decode()})
    assert flow.request.raw_content == broken


def test_an_unchanged_body_under_a_removed_encoding_goes_decoded() -> None:
    flow = request_flow(headers=[("Content-Encoding", "gzip")], body=gzip.compress(b"plain"))
    edit_request(flow.request, {"headers": [], "body": "plain"})
    assert flow.request.raw_content == b"plain"
