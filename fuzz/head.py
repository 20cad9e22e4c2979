"""Fuzz target: the HTTP/1 head parser and body framing (waylay.http1), under atheris.

The input is the start of a connection's bytes, read as a request and as a response. Any
bytes give "need more", a head or ProtocolError, never another exception. An accepted head
holds only tokens and clean values and serialises to itself; and a whole message both waylay
and h11 accept ends at the same byte for both, with the same body, headers and trailers (the
differential check of tests/http1/test_differential.py). Run with ``make fuzz``.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["waylay"]):
    from waylay.errors import ProtocolError
    from waylay.http1.body import request_framing, response_framing
    from waylay.http1.head import (
        find_head_end,
        parse_fields,
        parse_request_head,
        parse_response_head,
        parse_target,
    )
    from waylay.http1.serialize import request_head, response_head

from tests.http1.test_differential import assert_same_message
from tests.http1.test_properties import assert_clean


def request(data: bytes) -> None:
    end = find_head_end(data, 16 * 1024)
    if end <= 0:
        return
    head = parse_request_head(data[:end])
    assert_clean(head.headers)
    again = request_head(head.method, head.target, head.headers, head.version)
    assert parse_request_head(again) == head, "a request head that does not serialise to itself"
    parse_target(head.method, head.target)
    request_framing(head)


def response(data: bytes) -> None:
    end = find_head_end(data, 16 * 1024, response=True)
    if end <= 0:
        return
    head = parse_response_head(data[:end])
    assert_clean(head.headers)
    again = response_head(head.version, head.status, head.reason, head.headers)
    assert parse_response_head(again) == head, "a response head that does not serialise to itself"
    response_framing(head, b"GET")


def test_one_input(data: bytes) -> None:
    for parse in (request, response):
        try:
            parse(data)
        except ProtocolError as error:
            assert error.reason and error.status in (400, 431, 501, 502, 505), error
    for is_response in (False, True):
        with contextlib.suppress(ProtocolError):
            parse_fields(data, response=is_response)
        assert_same_message(data, response=is_response)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
