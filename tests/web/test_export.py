"""Export as curl and httpx: the command a user runs sends exactly the stored request.

Each case is a request full of what a shell or a client would read as something else —
`$(touch pwned)`, backticks, quotes, newlines, globbing braces, dot segments, a body that
starts with `@`, NUL bytes, Latin-1 header bytes, an empty header value — and the command
is run for real: curl by `sh -c`, the Python by the test's own interpreter, against an origin
that records what it received. It must receive the stored method, target, header fields (in
their case and order) and body, and no file named pwned may appear.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.origin import Origin
from waylay.flow import Flow, Request, Timestamps
from waylay.headers import Headers
from waylay.store.schema import REQUEST_TRUNCATED
from waylay.web.export import curl_command, httpx_code

INJECTION = "$(touch pwned) `touch pwned` ; touch pwned | touch pwned && 'quoted' \"double\""


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    server = Origin()
    server.start()
    yield server
    server.stop()


def _flow(
    origin: Origin,
    method: str,
    target: str,
    fields: list[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    version: str = "HTTP/1.1",
) -> Flow:
    authority = f"127.0.0.1:{origin.port}".encode()
    fields = [(b"Host", authority), *fields]
    if body:
        fields.append((b"Content-Length", str(len(body)).encode()))
    request = Request(
        method, "http", "127.0.0.1", origin.port, target, version, Headers.wrap(fields)
    )
    flow = Flow(("127.0.0.1", 5000), request, timestamps=Timestamps(start=1.0, end=2.0))
    flow.request_body_size = len(body)
    return flow


CASES = {
    "injection in every part": (
        "POST",
        "/echo/$(touch%20pwned)/`id`?q=';touch+pwned;'&x=$HOME",
        [
            (b"X-Attack", INJECTION.encode()),
            (b"X-Quote", b'it\'s "here"'),
            (b"User-Agent", b"$(touch pwned)"),
        ],
        f"{INJECTION}\nsecond line\r\nthird\ttabbed\n".encode(),
    ),
    "curl's own readings: globbing, dot segments, @file": (
        "PUT",
        "/echo/{a,b}/[1-3]/../x/./y",
        [(b"Content-Type", b"text/plain")],
        b"@/etc/passwd",
    ),
    "binary body with NUL, %, backslashes and a leading dash": (
        "POST",
        "/echo/binary",
        [(b"Content-Type", b"application/octet-stream")],
        b"-n %s %d \\0 \\n \\\\" + bytes(range(256)) + b"\x00\x00end",
    ),
    "not UTF-8: a Latin-1 header value": (
        "GET",
        "/echo/latin1",
        [(b"X-Name", b"caf\xe9 cr\xe8me"), (b"X-Utf8", "naïve €".encode())],
        b"",
    ),
    "an empty header value, repeated fields, odd case": (
        "GET",
        "/echo/fields",
        [(b"x-EMPTY", b""), (b"Cookie", b"a=1"), (b"Cookie", b"b=2"), (b"aCCEPT", b"*/*")],
        b"",
    ),
    "the proxy's own fields are not sent": (
        "GET",
        "/echo/hop-by-hop",
        [
            (b"Proxy-Authorization", b"Basic dXNlcjpwYXNz"),
            (b"Proxy-Connection", b"Keep-Alive"),
            (b"Connection", b"keep-alive, X-Drop"),
            (b"X-Drop", b"named in Connection"),
            (b"X-Keep", b"kept"),
        ],
        b"",
    ),
    "a GET with a body": ("GET", "/echo/get-body", [], b"query=1"),
    "a DELETE without a body": ("DELETE", "/echo/item/7", [], b""),
    "no User-Agent, no Accept, no Content-Type: none added": (
        "POST",
        "/echo/bare",
        [],
        b"plain=1",
    ),
}


def _received(origin: Origin, before: int) -> dict[str, object]:
    assert origin.wait_until(lambda: len(origin.requests) > before)
    record = origin.requests[before]
    assert len(origin.requests) == before + 1, "one command, one request"
    return {
        "method": record.method,
        "target": record.target,
        "version": record.http_version,
        "headers": record.headers,
        "body": (record.body_length, record.body_sha256 if record.body_length else ""),
    }


# Hop-by-hop: for the proxy's connection, not the server's (the case above uses these).
NOT_SENT = {b"proxy-authorization", b"proxy-connection", b"connection", b"x-drop"}


def _expected(flow: Flow, body: bytes) -> dict[str, object]:
    return {
        "method": flow.request.method,
        "target": flow.request.path,
        "version": flow.request.http_version.removeprefix("HTTP/"),
        "headers": [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in flow.request.headers.fields
            if name.lower() not in NOT_SENT
        ],
        "body": (len(body), hashlib.sha256(body).hexdigest() if body else ""),
    }


@pytest.mark.parametrize("case", CASES)
def test_the_curl_command_run_by_sh_sends_exactly_the_stored_request(
    origin: Origin, tmp_path: Path, case: str
) -> None:
    method, target, fields, body = CASES[case]
    flow = _flow(origin, method, target, fields, body)
    command = curl_command(flow, body)
    assert "\0" not in command
    before = len(origin.requests)
    result = subprocess.run(
        ["sh", "-c", f"{command} --silent --show-error --max-time 10 --output /dev/null"],
        cwd=tmp_path,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == [], "the shell ran something from the request"
    assert _received(origin, before) == _expected(flow, body)


@pytest.mark.parametrize("case", CASES)
def test_the_httpx_code_run_by_python_sends_exactly_the_stored_request(
    origin: Origin, tmp_path: Path, case: str
) -> None:
    method, target, fields, body = CASES[case]
    flow = _flow(origin, method, target, fields, body)
    script = tmp_path / "replay.py"
    script.write_text(httpx_code(flow, body), encoding="utf-8")
    before = len(origin.requests)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=20,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"200 OK\n")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["replay.py"]
    assert _received(origin, before) == _expected(flow, body)


def test_http_1_0_and_head_keep_their_version_and_method(origin: Origin, tmp_path: Path) -> None:
    for method, version in (("HEAD", "HTTP/1.1"), ("GET", "HTTP/1.0")):
        flow = _flow(origin, method, "/echo/v", [], version=version)
        before = len(origin.requests)
        command = curl_command(flow, b"") + " --silent --max-time 10 --output /dev/null"
        subprocess.run(["sh", "-c", command], cwd=tmp_path, check=True, timeout=20)
        assert _received(origin, before) == _expected(flow, b"")


def test_every_word_is_quoted_for_sh() -> None:
    origin = Origin.__new__(Origin)
    origin.port = 8000
    flow = _flow(origin, "POST", "/a", [(b"X-Attack", INJECTION.encode())], b"x")
    words = shlex.split(curl_command(flow, b"x"))
    assert f"X-Attack: {INJECTION}" in words
    assert words[-2:] == ["--url", "http://127.0.0.1:8000/a"]


@pytest.mark.parametrize("export", [curl_command, httpx_code])
def test_what_cannot_be_sent_as_stored_is_refused(export: object) -> None:
    origin = Origin.__new__(Origin)
    origin.port = 8000
    truncated = _flow(origin, "POST", "/a", [], b"x" * 10)
    truncated.capture_flags = REQUEST_TRUNCATED
    not_stored = _flow(origin, "POST", "/a", [], b"x" * 10)
    tunnel = _flow(origin, "CONNECT", "", [])
    bad_name = _flow(origin, "GET", "/a", [(b"Bad Name", b"x")])
    for flow, body in ((truncated, b"x" * 5), (not_stored, b""), (tunnel, b""), (bad_name, b"")):
        with pytest.raises(ValueError):
            export(flow, body)  # type: ignore[operator]
