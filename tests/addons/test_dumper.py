"""The dump addon's line: time, client, method, URL, status, size, duration."""

from __future__ import annotations

import io
import re

import pytest

from waylay.addons.dumper import Dumper, human_duration, human_size
from waylay.flow import Error, Flow, Request, Response, Timestamps
from waylay.headers import Headers


def _flow(**kwargs: object) -> Flow:
    request = Request("GET", "http", "api.example.test", 8080, "/a?b=1", "HTTP/1.1", Headers())
    flow = Flow(("127.0.0.1", 5555), request, timestamps=Timestamps(start=1000.0, end=1000.25))
    for name, value in kwargs.items():
        setattr(flow, name, value)
    return flow


def test_response_line_plain() -> None:
    out = io.StringIO()
    flow = _flow(response=Response(200, "OK", "HTTP/1.1", Headers()), response_body_size=1536)
    Dumper(out, colour=False).response(flow)
    line = out.getvalue()
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d 127\.0\.0\.1:5555 GET http://api\.example\.test:8080/a\?b=1 "
        r"200 1\.5k 250ms\n",
        line,
    ), line


def test_error_line_and_colour() -> None:
    out = io.StringIO()
    flow = _flow(error=Error("example.test refused the connection", "connection-refused"))
    Dumper(out, colour=True).error(flow)
    line = out.getvalue()
    assert "\033[" in line and "<< example.test refused the connection" in line
    piped = io.StringIO()  # not a TTY: no colour unless asked
    Dumper(piped).error(flow)
    assert "\033[" not in piped.getvalue()


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0b"),
        (1023, "1023b"),
        (1024, "1.0k"),
        (10 * 1024, "10k"),
        (5 * 1024**2, "5.0m"),
        (300 * 1024**3, "300g"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(("seconds", "text"), [(0.0123, "12ms"), (1.25, "1.2s"), (250, "250s")])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_tcp_line() -> None:
    out = io.StringIO()
    request = Request("", "tcp", "2001:2:2::2", 7, "", "", Headers())
    flow = Flow(
        ("198.18.1.2", 5555), request, timestamps=Timestamps(1000.0, end=1002.0), kind="tcp"
    )
    flow.request_body_size, flow.response_body_size = 12, 3 * 1024
    Dumper(out, colour=False).tcp_end(flow)
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d 198\.18\.1\.2:5555 TCP tcp://\[2001:2:2::2\]:7 12b up 3\.0k down 2\.0s\n",
        out.getvalue(),
    ), out.getvalue()
