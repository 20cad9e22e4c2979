"""The built-in rules end to end: `waylay dump` with --modify-headers, --modify-body,
--map-remote, --map-local, --block and --intercept, curl as the client, h11 origins.

Each test proves what reached the origin (Origin.requests records every request, its headers
and body checksum) and what reached the client, so a rule that only changed waylay's own copy
of a flow shows as a failure.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .clients import curl as run_curl
from .origin import ORIGIN_HOST, ConnectionRecord, Origin, _Listener, pattern_bytes, pattern_sha256
from .pki import TestCA
from .tls_clients import waylay_ca
from .tls_origin import TlsOrigin
from .waylay_process import RunWaylay, StartWaylay, clean_env


@pytest.fixture
def other_origin() -> Iterator[Origin]:
    server = Origin()
    server.start()
    yield server
    server.stop()


def _head_and_body(output: bytes) -> tuple[list[str], bytes]:
    """curl -i's last response: its head lines and its body."""
    head, _, body = output.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n"), body


def _values(head: list[str], name: str) -> list[str]:
    prefix = name.lower() + ":"
    return [line.split(":", 1)[1].strip() for line in head if line.lower().startswith(prefix)]


def _post_json(proxy: str, url: str, body: bytes, home: Path) -> dict[str, object]:
    result = run_curl(proxy, "--data-binary", "@-", url, home=home, input=body)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


# --- --modify-headers ------------------------------------------------------------------------


def test_modify_headers_sets_adds_and_removes_on_each_side(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    proxy = start_waylay(
        "--modify-headers", "/~q/X-Added/yes",
        "--modify-headers", "/~q/User-Agent/",
        "--modify-headers", "/~s/X-Resp/1",
        "--modify-headers", "/~s/X-Resp/2",
        "--modify-headers", f"|~d {ORIGIN_HOST}|X-Both|a/b",
        "--modify-headers", "/~s/Server/",
        "--modify-headers", "/~c 404/X-Missing/yes",
    )  # fmt: skip
    result = run_curl(proxy.url, "-i", "-H", "X-Added: old", origin.url("/echo/h"), home=home)
    assert result.returncode == 0, result.stderr
    head, body = _head_and_body(result.stdout)
    seen = origin.requests[-1]
    assert seen.header_values("X-Added") == ["yes"]
    assert seen.header_values("User-Agent") == []
    assert seen.header_values("X-Both") == ["a/b"]
    assert seen.header_values("X-Resp") == []  # ~s never matches a request
    assert _values(head, "X-Resp") == ["1", "2"]
    assert _values(head, "X-Both") == ["a/b"]
    assert _values(head, "X-Added") == []  # ~q never matches a response
    assert _values(head, "X-Missing") == []
    assert json.loads(body)["target"] == "/echo/h"
    missing = run_curl(proxy.url, "-i", origin.url("/status/404"), home=home)
    assert _values(_head_and_body(missing.stdout)[0], "X-Missing") == ["yes"]


class HalfAndWait(_Listener):
    """Proves bodies stream: the request's first half must arrive while the client holds back
    its second; the response's first half is sent and the rest held until ``release``."""

    HALF = 1000

    def __init__(self) -> None:
        super().__init__()
        self.got_half = threading.Event()
        self.release = threading.Event()

    def serve(self, sock: socket.socket, record: ConnectionRecord) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        body = data.partition(b"\r\n\r\n")[2]
        while len(body) < 2 * self.HALF:
            if len(body) >= self.HALF:
                self.got_half.set()
            piece = sock.recv(65536)
            if not piece:
                return
            body += piece
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * self.HALF))
        sock.sendall(b"a" * self.HALF)
        self.release.wait(10)
        sock.sendall(b"b" * self.HALF)


def _read_until(sock: socket.socket, data: bytes, done: Callable[[bytes], bool]) -> bytes:
    """What ``sock`` sends, after ``data``, until ``done`` says enough or it goes quiet."""
    try:
        while not done(data):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    except TimeoutError:
        pass
    return data


@pytest.mark.parametrize(
    ("rule", "streams"),
    [
        (("--modify-headers", "/X-Rule/on"), True),
        (("--block", "~d nothing.example.test"), True),
        (("--map-remote", "|nothing.example.test|x.example.test"), True),
        (("--map-local", "|nothing.example.test|{folder}"), True),
        (("--modify-body", "/~s/nothing/x"), False),  # the control: bodies read whole
    ],
)
def test_rules_on_heads_let_bodies_stream(
    start_waylay: StartWaylay, home: Path, tmp_path: Path, rule: tuple[str, str], streams: bool
) -> None:
    server = HalfAndWait()
    server.start()
    try:
        proxy = start_waylay(rule[0], rule[1].format(folder=tmp_path))
        half = HalfAndWait.HALF
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=1.5) as sock:
            authority = f"{ORIGIN_HOST}:{server.port}"
            sock.sendall(
                f"POST http://{authority}/ HTTP/1.1\r\nHost: {authority}\r\n"
                f"Content-Length: {2 * half}\r\n\r\n".encode()
                + b"1" * half
            )
            assert server.got_half.wait(1.5) is streams
            sock.sendall(b"2" * half)
            answer = _read_until(sock, b"", lambda d: d.endswith(b"a" * half))
            # Streaming: the head and the first half, while the server holds the rest back;
            # read whole: nothing at all until the server sent it all.
            assert answer.endswith(b"a" * half) if streams else answer == b""
            if rule[0] == "--modify-headers":
                assert b"\r\nX-Rule: on\r\n" in answer
            server.release.set()
            answer = _read_until(sock, answer, lambda d: d.endswith(b"b" * half))
            assert answer.startswith(b"HTTP/1.1 200")
            assert answer.endswith(b"a" * half + b"b" * half)
    finally:
        server.release.set()
        server.stop()


def test_modify_headers_value_from_a_file(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("Bearer one\n")
    proxy = start_waylay("--modify-headers", f"|~q|Authorization|@{token}")
    run_curl(proxy.url, origin.url("/echo/1"), home=home)
    token.write_text("Bearer two\n")  # read again for every request
    run_curl(proxy.url, origin.url("/echo/2"), home=home)
    assert [r.header_values("Authorization") for r in origin.requests] == [
        ["Bearer one"],
        ["Bearer two"],
    ]


# --- --modify-body ---------------------------------------------------------------------------


def test_modify_body_in_requests_and_responses(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    proxy = start_waylay(
        "--modify-body", "/~q/hello/bye",
        "--modify-body", "|~s|status (\\d+)|code \\1 (was status)",
        "--modify-body", "/~s & ~u chunked/chunked/CHUNKED",
    )  # fmt: skip
    echoed = _post_json(proxy.url, origin.url("/echo/b"), b"hello, hello world", home)
    expected = b"bye, bye world"
    assert echoed["body_length"] == len(expected)
    assert echoed["body_sha256"] == hashlib.sha256(expected).hexdigest()
    result = run_curl(proxy.url, "-i", origin.url("/status/200"), home=home)
    assert result.returncode == 0, result.stderr
    head, body = _head_and_body(result.stdout)
    assert body == b"code 200 (was status)\n"
    assert _values(head, "Content-Length") == [str(len(body))]
    # A chunked response, rewritten whole and sent on with a framing that fits it.
    chunked = run_curl(proxy.url, origin.url("/chunked"), home=home)
    assert chunked.returncode == 0, chunked.stderr
    assert chunked.stdout.startswith(b"hello CHUNKED world\n")
    # No match: the body arrives as the server sent it.
    untouched = run_curl(proxy.url, origin.url("/bytes/100000"), home=home)
    assert untouched.stdout == pattern_bytes(100000)


# --- --map-remote ----------------------------------------------------------------------------


def test_map_remote_sends_the_request_to_another_server(
    start_waylay: StartWaylay, origin: Origin, other_origin: Origin, home: Path
) -> None:
    rule = f"|//{ORIGIN_HOST}:{origin.port}/old/|//api.example.test:{other_origin.port}/echo/"
    proxy = start_waylay("--map-remote", rule)
    size = 3 * 1024 * 1024
    echoed = _post_json(proxy.url, origin.url("/old/x?y=1"), pattern_bytes(size), home)
    assert echoed["target"] == "/echo/x?y=1"
    assert echoed["body_sha256"] == pattern_sha256(size)
    assert origin.requests == []
    seen = other_origin.requests[-1]
    assert seen.header_values("Host") == [f"api.example.test:{other_origin.port}"]
    # What the rule does not match goes where it was going.
    run_curl(proxy.url, origin.url("/echo/kept"), home=home)
    assert [r.target for r in origin.requests] == ["/echo/kept"]
    assert proxy.wait_for_stdout(f"POST http://api.example.test:{other_origin.port}/echo/x?y=1")


def test_map_remote_from_https_to_a_plain_http_server(
    start_waylay: StartWaylay,
    tls_origin: TlsOrigin,
    origin: Origin,
    confdir: Path,
    home: Path,
    pki: TestCA,
) -> None:
    rule = f"|^https://www.example.test:{tls_origin.port}/|http://{ORIGIN_HOST}:{origin.port}/"
    # waylay meets the server's certificate before the request (it forges one like it).
    proxy = start_waylay("--map-remote", rule, "--upstream-ca", str(pki.cert_path))
    url = tls_origin.url("/echo/secure")
    result = subprocess.run(
        ["curl", "-q", "-sS", "--max-time", "20", "-x", proxy.url,
         "--cacert", str(waylay_ca(confdir)), url],
        capture_output=True, env=clean_env(home), timeout=35,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["target"] == "/echo/secure"
    assert origin.requests[-1].header_values("Host") == [f"{ORIGIN_HOST}:{origin.port}"]
    assert tls_origin.requests == []


# --- --map-local -----------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_bytes(b"SECRET outside the folder\n")
    www = tmp_path / "www"
    (www / "css").mkdir(parents=True)
    (www / "index.html").write_bytes(b"<h1>local home</h1>\n")
    (www / "css" / "site.css").write_bytes(b"body { color: red }\n")
    (www / "link-out").symlink_to("../secret.txt")
    return www


def test_map_local_serves_files_and_never_the_server(
    start_waylay: StartWaylay, origin: Origin, home: Path, site: Path
) -> None:
    proxy = start_waylay("--map-local", f"|~d {ORIGIN_HOST}|/static/|{site}")
    result = run_curl(proxy.url, "-i", origin.url("/static/css/site.css?v=2"), home=home)
    head, body = _head_and_body(result.stdout)
    assert head[0].startswith("HTTP/1.1 200")
    assert body == b"body { color: red }\n"
    assert _values(head, "Content-Type") == ["text/css"]
    index = run_curl(proxy.url, origin.url("/static/"), home=home)
    assert index.stdout == b"<h1>local home</h1>\n"
    missing = run_curl(proxy.url, "-i", origin.url("/static/none.js"), home=home)
    head, _ = _head_and_body(missing.stdout)
    assert head[0].startswith("HTTP/1.1 404")
    assert _values(head, "X-Waylay-Error") == ["not-in-map-local"]
    # An upload to a mapped URL is answered without the body being held for it.
    upload = run_curl(
        proxy.url, "--data-binary", "@-", origin.url("/static/css/site.css"),
        home=home, input=pattern_bytes(2 * 1024 * 1024),
    )  # fmt: skip
    assert upload.stdout == b"body { color: red }\n"
    assert origin.requests == []
    other = run_curl(proxy.url, origin.url("/echo/not-mapped"), home=home)
    assert json.loads(other.stdout)["target"] == "/echo/not-mapped"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/..%2fsecret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/..%5csecret.txt",
        "/static/..\\secret.txt",
        "/static/%00../secret.txt",
        "/static//etc/passwd",
        "/static/link-out",
    ],
)
def test_map_local_never_serves_outside_its_folder(
    start_waylay: StartWaylay, origin: Origin, home: Path, site: Path, path: str
) -> None:
    proxy = start_waylay("--map-local", f"|/static/|{site}")
    result = run_curl(proxy.url, "-i", "--path-as-is", origin.url(path), home=home)
    assert result.returncode == 0, result.stderr
    assert b"SECRET" not in result.stdout and b"root:" not in result.stdout
    head, _ = _head_and_body(result.stdout)
    assert head[0].startswith("HTTP/1.1 404"), head
    assert origin.requests == []


# --- --block ---------------------------------------------------------------------------------


def test_block_answers_403_and_sends_nothing(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    proxy = start_waylay("--block", "~u /ads/", "--block", "~d tunnel.example.test")
    result = run_curl(proxy.url, "-i", origin.url("/ads/banner.js"), home=home)
    head, body = _head_and_body(result.stdout)
    assert head[0] == "HTTP/1.1 403 Forbidden"
    assert body == b"waylay: blocked by --block '~u /ads/'\n"
    assert _values(head, "X-Waylay-Error") == ["blocked"]
    upload = run_curl(
        proxy.url, "-i", "--data-binary", "@-", origin.url("/ads/post"),
        home=home, input=pattern_bytes(1024 * 1024),
    )  # fmt: skip
    assert upload.stdout.startswith(b"HTTP/1.1 403")
    assert origin.requests == [] and origin.connections == []
    fine = run_curl(proxy.url, origin.url("/echo/content"), home=home)
    assert json.loads(fine.stdout)["target"] == "/echo/content"


def test_block_refuses_a_connect(start_waylay: StartWaylay, origin: Origin, home: Path) -> None:
    proxy = start_waylay("--block", "~d tunnel.example.test")
    url = f"http://tunnel.example.test:{origin.port}/echo/t"
    result = run_curl(proxy.url, "-p", "-i", url, home=home)
    assert result.returncode != 0
    assert b"403" in result.stdout + result.stderr
    assert origin.connections == []
    # A tunnel to another host is let through.
    through = run_curl(proxy.url, "-p", origin.url("/echo/t"), home=home)
    assert through.returncode == 0, through.stderr
    assert json.loads(through.stdout)["target"] == "/echo/t"


# --- --intercept -----------------------------------------------------------------------------

RESUMER = """\
import asyncio

class Resumer:
    # Resumes what --intercept paused, after a while, and marks it.
    def request(self, flow):
        if flow.intercepted:
            flow.request.headers["X-Resumed"] = "request"
            asyncio.get_running_loop().call_later(0.5, flow.resume)

    def response(self, flow):
        if flow.intercepted:
            flow.response.headers["X-Resumed"] = "response"
            asyncio.get_running_loop().call_later(0.5, flow.resume)

addons = [Resumer()]
"""


def test_intercept_pauses_until_resumed(
    start_waylay: StartWaylay, origin: Origin, home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "resumer.py"
    script.write_text(RESUMER)
    proxy = start_waylay("--intercept", "~u /held", "-s", str(script))
    started = time.monotonic()
    result = run_curl(proxy.url, "-i", origin.url("/echo/held"), home=home)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed >= 1.0  # paused twice: at the request and at the response
    assert origin.requests[-1].header_values("X-Resumed") == ["request"]
    head, _ = _head_and_body(result.stdout)
    assert _values(head, "X-Resumed") == ["response"]
    started = time.monotonic()
    free = run_curl(proxy.url, "-i", origin.url("/echo/free"), home=home)
    assert time.monotonic() - started < 0.5
    assert _values(_head_and_body(free.stdout)[0], "X-Resumed") == []


def test_an_intercepted_flow_waits_while_others_go_on(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    proxy = start_waylay("--intercept", "~q & ~u /held")
    held = subprocess.Popen(
        ["curl", "-q", "-sS", "--max-time", "3", "-x", proxy.url, origin.url("/echo/held")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(home),
    )  # fmt: skip
    free = run_curl(proxy.url, origin.url("/echo/free"), home=home)
    assert json.loads(free.stdout)["target"] == "/echo/free"
    held.wait(timeout=10)
    assert held.returncode == 28  # curl's timeout: nothing came back
    assert [r.target for r in origin.requests] == ["/echo/free"]


# --- a bad rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "rule", "message"),
    [
        ("--modify-headers", "/~zz/X-A/1", "filter: unknown operator '~zz' at column 2"),
        ("--modify-body", "/~q/(/x", "bad regex '(': missing ), unterminated subpattern at "),
        ("--map-remote", "|a|\\2", "bad replacement '\\\\2': invalid group reference 2 at "),
        ("--map-local", "|/static/|/no/such/folder", "PATH /no/such/folder does not exist"),
        ("--block", "~c abc", "'~c' needs a status code (up to 3 digits), not 'abc' at column 4"),
        ("--modify-headers", "/X-A", "the first character '/' is the separator: expected "),
    ],
)
def test_a_bad_rule_is_one_line_and_status_2(
    run_waylay: RunWaylay, confdir: Path, flag: str, rule: str, message: str
) -> None:
    result = run_waylay("dump", "--confdir", str(confdir), "--listen", "127.0.0.1:0", flag, rule)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"waylay: error: {flag} {rule!r}: {message}"), lines[0]
