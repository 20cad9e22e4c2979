"""detect.classify: TLS, HTTP/1 or other from the first bytes, whatever the port."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.testdata import CLIENTHELLOS
from waylay.detect import MAX_REQUEST_LINE, classify

CAPTURES = CLIENTHELLOS


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (b"", None),
        (b"\x16", None),
        (b"\x16\x03", None),
        (b"\x16\x03\x01", "tls"),
        (b"\x16\x03\x03\x02\x00\x01", "tls"),
        (b"\x16\x05", "other"),
        (b"GET / HTTP/1.1\r\n", "http"),
        (b"GET / HTTP/1.0\n", "http"),  # bare LF: the HTTP parser decides what to make of it
        (b"POST /upload?x=1 HTTP/1.1\r\nHost: a\r\n", "http"),
        (b"OPTIONS * HTTP/1.1\r\n", "http"),
        (b"GET", None),
        (b"GET /", None),
        (b"GET / HT", None),
        (b"GET / HTTP/1.1\r", None),
        (b"GET / HTTP/2.0\r\n", "other"),
        (b"GET / FTP/1.1", "other"),
        (b"GET  / HTTP/1.1\r\n", "other"),  # two spaces: not a request line
        (b"hello", None),  # could still be a method: the peek timeout decides
        (b"hello world\n", "other"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "other"),
        (b"EHLO mail.example.test\r\n", "other"),
        (b"\x00\x01\x02", "other"),
        (b"GET /\x00 HTTP/1.1\r\n", "other"),
        (b"G\xc3\xa9T / HTTP/1.1\r\n", "other"),
    ],
)
def test_classify_table(data: bytes, verdict: str | None) -> None:
    assert classify(data) == verdict


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.bin")))
def test_real_client_hellos_are_tls_from_their_first_three_bytes(name: str) -> None:
    data = (CAPTURES / name).read_bytes()
    assert classify(data[:3]) == "tls"
    assert classify(data) == "tls"


def test_the_capture_directory_is_there() -> None:
    assert len(list(CAPTURES.glob("*.bin"))) >= 7


def test_an_endless_request_line_is_other() -> None:
    assert classify(b"GET /" + b"a" * MAX_REQUEST_LINE) == "other"


@given(st.binary(max_size=200))
def test_a_verdict_never_changes_as_bytes_arrive(data: bytes) -> None:
    verdict = None
    for end in range(len(data) + 1):
        now = classify(data[:end])
        if verdict is not None:
            assert now == verdict
        verdict = now


@given(st.sampled_from([b"GET", b"PUT", b"PATCH", b"M-SEARCH"]), st.binary(max_size=40))
def test_prefixes_of_request_lines_wait_for_more(method: bytes, junk: bytes) -> None:
    line = method + b" /" + junk.hex().encode() + b" HTTP/1.1\r\n"
    for end in range(1, len(line)):
        assert classify(line[:end]) is None
    assert classify(line) == "http"
