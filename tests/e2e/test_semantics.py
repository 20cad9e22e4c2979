"""HTTP semantics as real clients and servers exercise them, and what `waylay dump` prints.

The h11 origin cannot say some of what real servers say (a HEAD answered with chunked, a
103 before a 100, an HTTP/1.0 status line, a 101 nobody asked for), so most tests here talk
to ``ScriptedServer``: a raw socket that records each request head and answers it with the
next scripted bytes, exactly. Every target is an IP literal on loopback, which
``--hosts-only`` always allows, so no name is ever looked up.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .contract import assert_waylay_error
from .origin import RefusedPort
from .waylay_process import StartWaylay, WaylayProcess, clean_env
from .wire import WireClient, request_bytes

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass(frozen=True)
class Reply:
    """Bytes to answer one request with; ``close`` ends the connection after them."""

    data: bytes
    close: bool = False


class ScriptedServer:
    """Answers the Nth request head it receives (on any connection) with the Nth reply.

    Request bodies are read by Content-Length only; a request with no reply left is met by
    a close. ``heads`` holds every request head received, ``connections`` the count accepted.
    """

    def __init__(self, replies: list[Reply | bytes], host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(16)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._replies = [r if isinstance(r, Reply) else Reply(r) for r in replies]
        self._lock = threading.Lock()
        self.heads: list[bytes] = []
        self.connections = 0
        self._socks: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.authority}{path}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", head, re.IGNORECASE)
                size = int(length.group(1)) if length else 0
                while len(buf) < size:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[size:]
                with self._lock:
                    self.heads.append(head + b"\r\n\r\n")
                    reply = self._replies.pop(0) if self._replies else None
                if reply is None:
                    return
                sock.sendall(reply.data)
                if reply.close:
                    return
        except OSError:
            return
        finally:
            sock.close()

    def head_fields(self, index: int) -> list[tuple[bytes, bytes]]:
        lines = self.heads[index].split(b"\r\n")[1:-2]
        return [(n.strip().lower(), v.strip()) for n, _, v in (x.partition(b":") for x in lines)]

    def request_line(self, index: int) -> bytes:
        return self.heads[index].split(b"\r\n", 1)[0]

    def stop(self) -> None:
        _close_listener(self._listener)
        with self._lock:
            for sock in self._socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)


class EchoPeer:
    """The far end of a CONNECT tunnel: echoes every byte until the peer closes."""

    def __init__(self, host: str) -> None:
        self._listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self._listener.bind((host, 0))
        self._listener.listen(4)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except OSError:
            return
        with sock:
            while data := sock.recv(65536):
                sock.sendall(data)

    def stop(self) -> None:
        _close_listener(self._listener)


def _close_listener(listener: socket.socket) -> None:
    # shutdown() wakes the thread blocked in accept(); close() alone does not.
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()


@pytest.fixture
def scripted() -> Iterator[type[ScriptedServer]]:
    started: list[ScriptedServer] = []

    class Tracked(ScriptedServer):
        def __init__(self, replies: list[Reply | bytes], host: str = "127.0.0.1") -> None:
            super().__init__(replies, host)
            started.append(self)

    yield Tracked
    for server in started:
        server.stop()


def _get(
    server: ScriptedServer,
    method: str = "GET",
    path: str = "/",
    *,
    headers: list[tuple[str, str]] | None = None,
    version: str = "HTTP/1.1",
) -> bytes:
    """An absolute-form request for ``server``, Host first, then ``headers``."""
    fields = [("Host", server.authority), *(headers or [])]
    return request_bytes(method, server.url(path), fields, version=version)


def _fields(response_headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    return {name.lower() for name, _ in response_headers}


# --- response framing corner cases ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "status_line"),
    [
        ("HEAD", b"HTTP/1.1 200 OK"),
        ("GET", b"HTTP/1.1 204 No Content"),
        ("GET", b"HTTP/1.1 304 Not Modified"),
    ],
)
def test_bodiless_response_claiming_chunked_keeps_both_connections(
    scripted: type[ScriptedServer], waylay: WaylayProcess, method: str, status_line: bytes
) -> None:
    # RFC 9112 §6.3 item 1: no body after HEAD, 204, 304, whatever Transfer-Encoding says.
    # Reading a chunked body here would hang, or eat the next response as body.
    server = scripted([status_line + b"\r\nTransfer-Encoding: chunked\r\n\r\n", OK])
    with WireClient(waylay.port) as client:
        client.send(_get(server, method))
        first = client.read_response(method.encode())
        assert first.head.startswith(status_line), first.head
        client.send(_get(server, "GET", "/next"))
        second = client.read_response()
        assert (second.status, second.body) == (200, b"ok")
    assert server.connections == 1, "the upstream connection was not reused"


@pytest.mark.parametrize(
    ("method", "status_line"),
    [("HEAD", b"HTTP/1.1 200 OK"), ("GET", b"HTTP/1.1 304 Not Modified")],
)
def test_http10_client_never_sees_transfer_encoding(
    scripted: type[ScriptedServer], waylay: WaylayProcess, method: str, status_line: bytes
) -> None:
    # RFC 9112 §6.1: a server MUST NOT send Transfer-Encoding in a response to an HTTP/1.0
    # request. waylay strips it when it de-chunks a body, but not from a bodiless response.
    server = scripted([status_line + b"\r\nTransfer-Encoding: chunked\r\n\r\n"])
    with WireClient(waylay.port) as client:
        client.send(_get(server, method, version="HTTP/1.0"))
        response = client.read_response(method.encode())
    assert b"transfer-encoding" not in _fields(response.headers), response.head


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_interim_responses_before_the_final_one(
    scripted: type[ScriptedServer], waylay: WaylayProcess, version: str
) -> None:
    # RFC 9110 §15.2: 1xx go to an HTTP/1.1 client in order, headers included; an HTTP/1.0
    # client cannot receive them and gets only the final response.
    server = scripted(
        [
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 100 Continue\r\n\r\n" + OK
        ]
    )
    with WireClient(waylay.port) as client:
        client.send(_get(server, version=version))
        interim, final = client.read_final_response()
        assert (final.status, final.body) == (200, b"ok")
        if version == "HTTP/1.1":
            assert [r.status for r in interim] == [103, 100, 100]
            assert interim[0].header("Link") == b"</style.css>; rel=preload"
        else:
            assert interim == []
            assert client.wait_closed() == b""


def test_unsolicited_101_is_a_502(scripted: type[ScriptedServer], waylay: WaylayProcess) -> None:
    # RFC 9110 §15.2.2: a server MUST NOT switch to a protocol the client did not ask for.
    server = scripted([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\nraw"])
    with WireClient(waylay.port) as client:
        client.send(_get(server))
        response = client.read_response()
        assert_waylay_error(response, 502)
        assert b"raw" not in client.wait_closed()


def test_upgrade_ignored_by_the_server_keeps_http(
    scripted: type[ScriptedServer], waylay: WaylayProcess
) -> None:
    # RFC 9110 §7.8: a server may ignore Upgrade and answer as usual; the connection then
    # goes on as HTTP/1.1 on both sides.
    server = scripted([OK, OK])
    upgrade = [("Connection", "Upgrade"), ("Upgrade", "echo")]
    with WireClient(waylay.port) as client:
        client.send(_get(server, headers=upgrade))
        assert client.read_response().status == 200
        client.send(_get(server, path="/after"))
        assert client.read_response().status == 200
    assert server.connections == 1
    assert (b"upgrade", b"echo") in server.head_fields(0)
    assert b"upgrade" not in dict(server.head_fields(1))


@pytest.mark.parametrize(
    "headers",
    [
        [("Connection", "Upgrade"), ("Upgrade", "echo")],
        [("Expect", "100-continue"), ("Content-Length", "0")],
    ],
    ids=["upgrade", "expect-100-continue"],
)
def test_http10_request_does_not_carry_http11_only_fields_upstream(
    scripted: type[ScriptedServer], waylay: WaylayProcess, headers: list[tuple[str, str]]
) -> None:
    # waylay forwards an HTTP/1.0 request as HTTP/1.1. RFC 9110 §7.8: a server MUST ignore
    # Upgrade in an HTTP/1.0 request; RFC 9110 §10.1.1: it MUST ignore a 100-continue
    # expectation in one. Forwarded as they are, the server honours them: it may switch
    # protocols under a client that cannot speak 101.
    server = scripted([OK])
    with WireClient(waylay.port) as client:
        client.send(_get(server, headers=headers, version="HTTP/1.0"))
        assert client.read_response().status == 200
    forwarded = dict(server.head_fields(0))
    assert server.request_line(0).endswith(b"HTTP/1.1")
    assert b"upgrade" not in forwarded and b"expect" not in forwarded, server.heads[0]


def test_http10_client_is_not_switched_to_another_protocol(
    scripted: type[ScriptedServer], waylay: WaylayProcess
) -> None:
    # What the forwarded Upgrade leads to: a server that honours it answers 101, and waylay
    # hands an HTTP/1.0 client a 101 and a raw tunnel it never could have asked for.
    server = scripted([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n"])
    upgrade = [("Connection", "Upgrade"), ("Upgrade", "echo")]
    with WireClient(waylay.port) as client:
        client.send(_get(server, headers=upgrade, version="HTTP/1.0"))
        response = client.read_response()
    assert response.status != 101, response.head


# --- request targets -------------------------------------------------------------------------


@pytest.fixture
def v6_server(scripted: type[ScriptedServer]) -> ScriptedServer:
    try:
        return scripted([OK], host="::1")
    except OSError as exc:  # pragma: no cover - a machine without IPv6 loopback
        pytest.skip(f"no IPv6 loopback: {exc}")


def test_ipv6_literal_target(v6_server: ScriptedServer, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(_get(v6_server, path="/v6?q"))
        response = client.read_response()
    assert (response.status, response.body) == (200, b"ok")
    assert v6_server.request_line(0) == b"GET /v6?q HTTP/1.1"
    assert dict(v6_server.head_fields(0))[b"host"] == f"[::1]:{v6_server.port}".encode()


def test_uppercase_scheme_and_query_without_path(
    scripted: type[ScriptedServer], waylay: WaylayProcess
) -> None:
    # RFC 3986 §3.1: schemes are case-insensitive; RFC 9112 §3.2.1: "http://h:1?x" is sent as
    # "/?x" to the server.
    server = scripted([OK])
    target = f"HTTP://{server.authority}?x=1"
    with WireClient(waylay.port) as client:
        client.send(request_bytes("GET", target, [("Host", server.authority)]))
        assert client.read_response().status == 200
    assert server.request_line(0) == b"GET /?x=1 HTTP/1.1"
    assert dict(server.head_fields(0))[b"host"] == server.authority.encode()


# --- keep-alive decisions ---------------------------------------------------------------------


def test_http10_server_without_keep_alive_is_not_reused(
    scripted: type[ScriptedServer], waylay: WaylayProcess
) -> None:
    # RFC 9112 §9.3: an HTTP/1.0 response without keep-alive ends the server's connection;
    # the HTTP/1.1 client's connection goes on.
    one = Reply(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", close=True)
    server = scripted([one, one])
    with WireClient(waylay.port) as client:
        for path in ("/1", "/2"):
            client.send(_get(server, path=path))
            response = client.read_response()
            assert (response.status, response.body) == (200, b"ok")
            assert response.version == b"HTTP/1.1"
            assert response.header("Connection") is None, response.head
    assert server.connections == 2


def test_http10_server_with_keep_alive_is_reused(
    scripted: type[ScriptedServer], waylay: WaylayProcess
) -> None:
    kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
    kept += b"Content-Length: 2\r\n\r\nok"
    server = scripted([kept, kept])
    with WireClient(waylay.port) as client:
        for path in ("/1", "/2"):
            client.send(_get(server, path=path))
            response = client.read_response()
            assert (response.status, response.body) == (200, b"ok")
            assert not {b"keep-alive", b"connection"} & _fields(response.headers), response.head
    assert server.connections == 1


def test_connection_close_on_the_second_of_three_pipelined_requests(
    scripted: type[ScriptedServer], waylay: WaylayProcess
) -> None:
    # RFC 9112 §9.6: after a request with "close", the server sends no more responses and
    # the rest of the pipeline is dropped, not forwarded.
    server = scripted([OK, OK, OK])
    with WireClient(waylay.port) as client:
        client.send(
            _get(server, path="/1")
            + _get(server, path="/2", headers=[("Connection", "close")])
            + _get(server, path="/3")
        )
        first = client.read_response()
        second = client.read_response()
        assert first.header("Connection") is None
        assert second.header("Connection") == b"close"
        assert client.wait_closed() == b""
    assert [server.request_line(i) for i in range(len(server.heads))] == [
        b"GET /1 HTTP/1.1",
        b"GET /2 HTTP/1.1",
    ]


# --- the command line ---------------------------------------------------------------------------


def test_config_toml_relative_hosts_is_relative_to_the_confdir(
    confdir: Path, home: Path, scripted: type[ScriptedServer]
) -> None:
    # A config file that names "hosts.test" means the file beside it, whatever directory
    # waylay happens to be started from (as git, ssh and curl read their config paths).
    # Resolved against the working directory, the same config works from one shell and not
    # from another, or silently reads a different file.
    server = scripted([OK])
    (confdir / "hosts.test").write_text("127.0.0.1 relative.example.test\n")
    (confdir / "config.toml").write_text('hosts = "hosts.test"\nhosts-only = true\n')
    # Started by hand: the fixture's teardown would also report the exit status 2.
    args = ["dump", "--listen", "127.0.0.1:0", "--confdir", str(confdir)]
    waylay = WaylayProcess(args, clean_env(home))
    try:
        waylay.wait_ready()
        authority = f"relative.example.test:{server.port}"
        with WireClient(waylay.port) as client:
            client.send(request_bytes("GET", f"http://{authority}/", [("Host", authority)]))
            assert client.read_response().status == 200
    finally:
        waylay.stop()


def test_hosts_file_duplicate_name_and_trailing_dots(
    start_waylay: StartWaylay, tmp_path: Path, scripted: type[ScriptedServer]
) -> None:
    # A name listed twice has both addresses, in file order: the first refuses, the second
    # answers. "name." and "name" are the same name, in the file and in the URL.
    server = scripted([OK, OK])
    hosts = tmp_path / "dup-hosts"
    hosts.write_text("127.0.0.2 dup.example.test\n127.0.0.1 DUP.example.test.\n")
    waylay = start_waylay("--hosts", str(hosts), hosts=False)
    for name in ("dup.example.test", "dup.example.test."):
        authority = f"{name}:{server.port}"
        with WireClient(waylay.port) as client:
            client.send(request_bytes("GET", f"http://{authority}/", [("Host", authority)]))
            assert client.read_response().status == 200


def test_dump_lines_for_an_ipv6_client_connect_and_errors(
    start_waylay: StartWaylay, scripted: type[ScriptedServer]
) -> None:
    try:
        peer = EchoPeer("::1")
    except OSError as exc:  # pragma: no cover - a machine without IPv6 loopback
        pytest.skip(f"no IPv6 loopback: {exc}")
    refused = RefusedPort()
    server = scripted([OK])
    try:
        waylay = start_waylay(listen="[::1]:0")
        with WireClient(waylay.port, host="::1") as client:
            client.send(_get(server))
            assert client.read_response().status == 200
        with WireClient(waylay.port, host="::1") as client:
            target = f"127.0.0.1:{refused.port}"
            client.send(request_bytes("GET", f"http://{target}/", [("Host", target)]))
            assert client.read_response().status == 502
        with WireClient(waylay.port, host="::1") as client:
            authority = f"[::1]:{peer.port}"
            client.send(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
            assert client.read_response(b"CONNECT").status == 200
            client.send(b"hello")
            assert client.read_exactly(5) == b"hello"
        lines = waylay.wait_stdout_lines(3)
    finally:
        peer.stop()
        refused.close()
    assert len(lines) == 3, lines
    clock, client_addr = r"\d\d:\d\d:\d\d", r"\[::1\]:\d+"
    assert re.fullmatch(rf"{clock} {client_addr} GET {server.url()} 200 2b \d+ms", lines[0])
    assert re.fullmatch(
        rf"{clock} {client_addr} GET http://127\.0\.0\.1:{refused.port}/ << .*refused.* \d+ms",
        lines[1],
    ), lines[1]
    assert re.fullmatch(
        rf"{clock} {client_addr} CONNECT \[::1\]:{peer.port} 200 5b \d+(ms|\.\ds)", lines[2]
    ), lines[2]


def test_dump_line_for_options_with_an_empty_path(
    scripted: type[ScriptedServer], waylay: WaylayProcess
) -> None:
    # RFC 9112 §3.2.4: "OPTIONS http://h:1 HTTP/1.1" goes on as "OPTIONS * HTTP/1.1". The
    # dump line shows the URL the user asked for; "*" glued to the port is no URL at all.
    server = scripted([OK])
    target = f"http://{server.authority}"
    with WireClient(waylay.port) as client:
        client.send(request_bytes("OPTIONS", target, [("Host", server.authority)]))
        assert client.read_response().status == 200
    assert server.request_line(0) == b"OPTIONS * HTTP/1.1"
    lines = waylay.wait_stdout_lines(1)
    assert len(lines) == 1, lines
    url = lines[0].split()[3]
    assert url in (target, target + "/"), lines[0]
