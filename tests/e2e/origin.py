"""The servers the end-to-end tests reach through waylay, all on 127.0.0.1.

``Origin`` is a real HTTP/1.1 server built on h11, one thread per connection. It records every
connection it accepts (the peer's port, when it closed) and which connection served each
request, so a test can prove that waylay reused an upstream connection, forwarded nothing after
a bad request, or closed the upstream side when its client vanished.

A few behaviours are easier to script on the raw socket than to coax out of h11 — a
read-until-close body, a body cut short, a reset — so those routes write bytes themselves.
``TunnelPeer`` is the raw TCP end of a CONNECT tunnel, ``ResetOnAccept`` resets every
connection it accepts, and ``RefusedPort`` is a bound port nobody listens on.

Bodies are a fixed pseudo-random pattern with a prime period: a test computes the bytes and
checksum it expects, and a dropped, repeated or shuffled block shows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import h11

MiB = 1024 * 1024
ORIGIN_HOST = "origin.example.test"

_PERIOD = 65521
_PATTERN = random.Random(9112).randbytes(_PERIOD)
_CHUNK = 256 * 1024
_TILE = _PATTERN * (_CHUNK // _PERIOD + 2)

# The parts of the /chunked body; the test compares the de-chunked bytes and the trailer.
CHUNKED_PARTS = (b"hello ", b"chunked ", b"world\n", bytes(range(256)) * 40, b"\r\n0\r\n\r\n")
CHUNKED_BODY = b"".join(CHUNKED_PARTS)
CHUNKED_TRAILERS = (
    ("X-Checksum", hashlib.sha256(CHUNKED_BODY).hexdigest()),
    ("X-Trailer-Case", "Kept"),
)

# The default slow reader's pace: the "an origin that reads as slowly" as a client.
SLOW_READ_RATE = 20 * MiB


def pattern_chunks(total: int, chunk: int = _CHUNK) -> Iterator[bytes]:
    """The first ``total`` bytes of the pattern, in pieces of at most ``chunk`` bytes."""
    chunk = min(chunk, _CHUNK)
    offset = 0
    while offset < total:
        size = min(chunk, total - offset)
        start = offset % _PERIOD
        yield _TILE[start : start + size]
        offset += size


def pattern_bytes(total: int) -> bytes:
    return b"".join(pattern_chunks(total))


def pattern_sha256(total: int) -> str:
    digest = hashlib.sha256()
    for piece in pattern_chunks(total):
        digest.update(piece)
    return digest.hexdigest()


@dataclass
class RequestRecord:
    """What the origin received for one request, and how it answered."""

    connection_id: int
    method: str
    target: str
    http_version: str
    headers: list[tuple[str, str]]
    body_length: int = 0
    body_sha256: str = ""
    body_complete: bool = False
    sent_continue: bool = False
    trailers: list[tuple[str, str]] = field(default_factory=list)
    response_framing: str = ""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None


@dataclass
class ConnectionRecord:
    """One TCP connection the origin accepted."""

    id: int
    peer_port: int
    opened_at: float
    requests: list[RequestRecord] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    closed_at: float | None = None


class _PeerGone(Exception):
    """The peer closed or reset the connection while the origin was reading."""


class Exchange:
    """One request being answered: the route handler's view of the connection."""

    def __init__(self, sock: socket.socket, conn: h11.Connection, record: RequestRecord) -> None:
        self.sock = sock
        self.conn = conn
        self.record = record
        self.request: h11.Request | None = None
        # Set by a handler that answered without reading the body or took over the socket.
        self.close_after = False
        self.close_delay = 0.0
        # True when an earlier request came on the same connection.
        self.reused = False
        self._rate = 0.0
        self._rate_start = 0.0
        self._rate_bytes = 0

    @property
    def is_head(self) -> bool:
        return self.request is not None and self.request.method == b"HEAD"

    def query_value(self, name: str, default: str = "") -> str:
        return parse_qs(urlsplit(self.record.target).query).get(name, [default])[0]

    def next_event(self) -> object:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            if self.conn.they_are_waiting_for_100_continue:
                self.send(
                    h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
                )
                self.record.sent_continue = True
            self.conn.receive_data(self.recv())

    def recv(self) -> bytes:
        if self._rate:
            allowed = (time.monotonic() - self._rate_start) * self._rate
            if self._rate_bytes > allowed:
                time.sleep((self._rate_bytes - allowed) / self._rate)
        try:
            data = self.sock.recv(64 * 1024)
        except OSError as exc:
            raise _PeerGone from exc
        self._rate_bytes += len(data)
        return data

    def body_pieces(self, rate: float = 0.0) -> Iterator[bytes]:
        """The request body as it arrives, read no faster than ``rate`` bytes/s if set."""
        if rate:
            self._rate, self._rate_start, self._rate_bytes = rate, time.monotonic(), 0
        digest = hashlib.sha256()
        while True:
            event = self.next_event()
            if isinstance(event, h11.Data):
                digest.update(event.data)
                self.record.body_length += len(event.data)
                self.record.body_sha256 = digest.hexdigest()
                yield event.data
            elif isinstance(event, h11.EndOfMessage):
                self.record.body_sha256 = digest.hexdigest()
                self.record.body_complete = True
                self.record.trailers = [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in event.headers.raw_items()
                ]
                self._rate = 0.0
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise _PeerGone
            else:
                raise AssertionError(f"unexpected event while reading a body: {event!r}")

    def consume_body(self, rate: float = 0.0) -> None:
        for _ in self.body_pieces(rate):
            pass

    def send(self, event: h11.Event) -> None:
        data = self.conn.send(event)
        if data:
            self.sock.sendall(data)

    def start(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.send(
            h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase)
        )

    def send_data(self, data: bytes) -> None:
        if not self.is_head and data:
            self.send(h11.Data(data=data))

    def end(self, trailers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send(h11.EndOfMessage(headers=list(trailers)))

    def respond(self, status: int, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        framed = any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers)
        if not framed and status not in (204, 304):
            headers = [*headers, ("Content-Length", str(len(body)))]
        self.record.response_framing = "content-length"
        self.start(status, headers)
        self.send_data(body)
        self.end()

    def respond_json(self, payload: object, extra: tuple[tuple[str, str], ...] = ()) -> None:
        body = json.dumps(payload).encode()
        self.respond(200, [("Content-Type", "application/json"), *extra], body)

    def half_close(self) -> None:
        """End the origin's side with a FIN, the peer may still send.

        Over TLS, ``?tls-end=close_notify`` sends a close_notify before the FIN; without it the
        FIN comes alone, a ragged EOF, as many HTTPS servers end a connection.
        """
        if isinstance(self.sock, ssl.SSLSocket) and self.query_value("tls-end") == "close_notify":
            self.sock.settimeout(1.0)  # unwrap() waits for the peer's close_notify in return
            with contextlib.suppress(OSError, ssl.SSLError):
                self.sock.unwrap()
        self.sock.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        """Abort the connection with a TCP RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        self.close_after = True


def _echo(ex: Exchange) -> None:
    ex.consume_body()
    record = ex.record
    payload = {
        "method": record.method,
        "target": record.target,
        "http_version": record.http_version,
        "headers": record.headers,
        "body_length": record.body_length,
        "body_sha256": record.body_sha256,
        "connection_id": record.connection_id,
        "trailers": record.trailers,
    }
    extra = (("Connection", "close"),) if ex.query_value("close") else ()
    if ex.query_value("idle-close"):
        ex.close_delay = float(ex.query_value("idle-close"))
    ex.respond_json(payload, extra)


def _bytes(ex: Exchange) -> None:
    total = int(ex.record.path.rsplit("/", 1)[1])
    ex.record.response_framing = "content-length"
    ex.start(200, [("Content-Type", "application/octet-stream"), ("Content-Length", str(total))])
    if not ex.is_head:
        for piece in pattern_chunks(total):
            ex.send_data(piece)
    ex.end()


def _chunked(ex: Exchange) -> None:
    http11 = ex.conn.their_http_version == b"1.1"
    ex.record.response_framing = "chunked" if http11 else "close"
    ex.start(
        200,
        [
            ("Content-Type", "text/plain"),
            ("Transfer-Encoding", "chunked"),
            ("Trailer", "X-Checksum"),
        ],
    )
    for part in CHUNKED_PARTS:
        ex.send_data(part)
    ex.end(CHUNKED_TRAILERS if http11 else ())


def _status(ex: Exchange) -> None:
    status = int(ex.record.path.rsplit("/", 1)[1])
    if status == 304:
        # A 304 may carry the Content-Length the 200 would have had (RFC 9110 §8.6): no body.
        ex.respond(304, [("ETag", '"v1"'), ("Content-Length", "1234")])
    elif status == 204:
        ex.respond(204, [("X-Status", "204")])
    else:
        ex.respond(status, [("Content-Type", "text/plain")], b"status %d\n" % status)


def _close_delimited(ex: Exchange) -> None:
    total = int(ex.query_value("n", "100000"))
    ex.record.response_framing = "close"
    ex.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    for piece in pattern_chunks(total):
        ex.sock.sendall(piece)
    ex.half_close()
    ex.close_after = True


def _hang(ex: Exchange) -> None:
    """Read the request, never answer; hold the connection until the peer goes away."""
    ex.close_after = True
    while True:
        try:
            readable, _, _ = select.select([ex.sock], [], [], 0.2)
            if readable and not ex.sock.recv(65536):
                return
        except (OSError, ValueError):
            return


def _slow_read(ex: Exchange) -> None:
    rate = float(ex.query_value("rate", str(SLOW_READ_RATE)))
    started = time.monotonic()
    ex.consume_body(rate=rate)
    record = ex.record
    ex.respond_json(
        {
            "body_length": record.body_length,
            "body_sha256": record.body_sha256,
            "seconds": time.monotonic() - started,
        }
    )


def _upgrade(ex: Exchange) -> None:
    """``Upgrade: echo`` → 101, then every byte is echoed until the peer closes.

    With ``?say-eof=1`` the peer's half-close is answered with ``EOF after N bytes``, so a
    test sees that the other direction stayed open.
    """
    if "echo" not in (ex.record.header("Upgrade") or "").lower():
        ex.respond(426, [("Upgrade", "echo"), ("Connection", "Upgrade")], b"upgrade to echo\n")
        return
    event = ex.next_event()
    while isinstance(event, h11.Data | h11.EndOfMessage):
        event = ex.next_event()
    # h11 pauses reading once the client has proposed a protocol switch.
    if event is not h11.PAUSED:
        ex.respond(400, [], b"h11 did not see an upgrade proposal\n")
        return
    ex.send(
        h11.InformationalResponse(
            status_code=101,
            headers=[("Upgrade", "echo"), ("Connection", "Upgrade")],
            reason=b"Switching Protocols",
        )
    )
    ex.record.response_framing = "upgrade"
    ex.close_after = True
    pending, _ = ex.conn.trailing_data
    if pending:
        ex.sock.sendall(pending)
    total = len(pending)
    while True:
        try:
            data = ex.sock.recv(65536)
        except OSError:
            return
        if not data:
            if ex.query_value("say-eof"):
                ex.sock.sendall(b"EOF after %d bytes\n" % total)
            ex.half_close()
            return
        total += len(data)
        ex.sock.sendall(data)


def _hop_response(ex: Exchange) -> None:
    ex.respond(
        200,
        [
            ("X-Resp-First", "1"),
            ("Connection", "X-Resp-Drop"),
            ("X-Resp-Drop", "secret"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("x-resp-lower", "kept"),
            ("X-Resp-MiXeD", "Kept"),
            ("Content-Type", "text/plain"),
        ],
        b"ok\n",
    )


# What /truncate sends of each body before it ends the connection.
TRUNCATED_CHUNKED_PAYLOAD = b"a" * 0x1000 + b"b" * 100
TRUNCATED_CL_PAYLOAD = b"c" * 5000
TRUNCATED_CLOSE_PAYLOAD = b"d" * 5000


def _truncate(ex: Exchange) -> None:
    """Promise a body, send part of it, then FIN or RST: the client must not see it complete.

    ``framing=close`` sends a read-until-close body, which only a reset can show truncated.
    """
    framing = ex.query_value("framing", "cl")
    if framing == "chunked":
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        partial = b"1000\r\n" + b"a" * 0x1000 + b"\r\n1000\r\n" + b"b" * 100
    elif framing == "close":
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
        partial = TRUNCATED_CLOSE_PAYLOAD
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
        partial = TRUNCATED_CL_PAYLOAD
    ex.sock.sendall(head + partial)
    time.sleep(0.2)
    if ex.query_value("end", "rst") == "rst":
        ex.reset()
    else:
        ex.half_close()
        ex.close_after = True


def _reset(ex: Exchange) -> None:
    ex.reset()


def _expect_reject(ex: Exchange) -> None:
    """Answer 413 from the head alone, never asking for the body (RFC 9110 §10.1.1)."""
    ex.respond(413, [("Content-Type", "text/plain"), ("Connection", "close")], b"too large\n")
    ex.close_after = True


def _vanish_if_reused(ex: Exchange) -> None:
    """Answers on a new connection; on a kept-alive one, closes without a word.

    That is the race of a server's keep-alive timeout: it closes its idle connection just as
    the proxy sends the next request on it.
    """
    if ex.reused:
        ex.close_after = True
        if ex.query_value("tls-end"):
            ex.half_close()
        return
    _echo(ex)


def _big_head(ex: Exchange) -> None:
    """A 204 whose head carries ``size`` bytes of padding: the whole response is one head."""
    ex.consume_body()
    size = int(ex.query_value("size", "60000"))
    ex.respond(204, [("X-Pad", "p" * size)])


def _delay(ex: Exchange) -> None:
    """Read the whole request, wait ``s`` seconds, then answer with its target and size."""
    ex.consume_body()
    time.sleep(float(ex.query_value("s", "0.5")))
    record = ex.record
    ex.respond_json({"target": record.target, "body_length": record.body_length})


def _reject_early(ex: Exchange) -> None:
    """Answer 413 from the head alone, then read and drop the body and stay open (keep-alive).

    Unlike /expect-reject it does not close: whatever the client sees is waylay's doing.
    ``?pad=N`` adds an N-byte header, so the whole answer is one large write.
    """
    pad = int(ex.query_value("pad", "0"))
    headers = [("Content-Type", "text/plain")] + ([("X-Pad", "p" * pad)] if pad else [])
    ex.respond(413, headers, b"too large\n")


def _image(ex: Exchange) -> None:
    """``/image/NAME.EXT``: ``n`` bytes of the pattern (2000 unless set) as ``image/EXT``."""
    extension = ex.record.path.rsplit(".", 1)[-1]
    body = pattern_bytes(int(ex.query_value("n", "2000")))
    ex.respond(200, [("Content-Type", f"image/{extension}")], body)


ROUTES: dict[str, Callable[[Exchange], None]] = {
    "echo": _echo,
    "bytes": _bytes,
    "download": _bytes,
    "chunked": _chunked,
    "status": _status,
    "close": _close_delimited,
    "hang": _hang,
    "slow-read": _slow_read,
    "upgrade": _upgrade,
    "hop-response": _hop_response,
    "truncate": _truncate,
    "reset": _reset,
    "expect-reject": _expect_reject,
    "vanish-if-reused": _vanish_if_reused,
    "big-head": _big_head,
    "delay": _delay,
    "reject-early": _reject_early,
    "image": _image,
}


class _Listener:
    """A loopback TCP listener with an accept thread, one thread per connection."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, backlog: int = 128) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # A soak test's thousand connections at once need a longer queue than 128.
        self._listener = socket.create_server((host, port), family=family, backlog=backlog)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.connections: list[ConnectionRecord] = []

    def start(self) -> None:
        thread = threading.Thread(
            target=self._accept_loop, name=f"{type(self).__name__}-accept", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    @property
    def authority(self) -> str:
        return f"{ORIGIN_HOST}:{self.port}"

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            # Responses are written head, then body: without NODELAY, Nagle and the peer's
            # delayed ACK hold the body back 40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                record = ConnectionRecord(
                    id=len(self.connections), peer_port=peer[1], opened_at=time.monotonic()
                )
                self.connections.append(record)
                self._sockets.add(sock)
            thread = threading.Thread(target=self._run, args=(sock, record), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, sock: socket.socket, record: ConnectionRecord) -> None:
        try:
            self.serve(sock, record)
        except (OSError, _PeerGone, h11.RemoteProtocolError, h11.LocalProtocolError):
            pass
        finally:
            with self._lock:
                self._sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()
            record.closed_at = time.monotonic()
            record.closed.set()

    def serve(self, sock: socket.socket, record: ConnectionRecord) -> None:
        raise NotImplementedError


class Origin(_Listener):
    """The h11 origin server; see the module docstring for what it records."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, backlog: int = 128) -> None:
        super().__init__(host, port, backlog=backlog)
        self.requests: list[RequestRecord] = []

    def url(self, path: str = "/", host: str = ORIGIN_HOST) -> str:
        return f"http://{host}:{self.port}{path}"

    def serve(self, sock: socket.socket, record: ConnectionRecord) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 * MiB)
        while not self._stopping.is_set():
            request_record = RequestRecord(record.id, "", "", "", [])
            exchange = Exchange(sock, conn, request_record)
            event = exchange.next_event()
            if isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                raise AssertionError(f"origin expected a request, got {event!r}")
            request_record.method = event.method.decode("latin-1")
            request_record.target = event.target.decode("latin-1")
            request_record.http_version = event.http_version.decode("latin-1")
            request_record.headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in event.headers.raw_items()
            ]
            with self._lock:
                record.requests.append(request_record)
                self.requests.append(request_record)
            exchange.request = event
            exchange.reused = len(record.requests) > 1
            segment = request_record.path.strip("/").split("/", 1)[0]
            handler = ROUTES.get(segment)
            if handler is None:
                exchange.respond(404, [("Content-Type", "text/plain")], b"no route\n")
            else:
                handler(exchange)
            if exchange.close_after:
                return
            if conn.their_state is h11.SEND_BODY:
                exchange.consume_body()
            if exchange.close_delay:
                time.sleep(exchange.close_delay)
                if exchange.query_value("tls-end"):
                    exchange.half_close()
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()


class BannerPeer(_Listener):
    """A server that speaks first, as SSH and SMTP do: a banner the moment it accepts.

    Then it echoes what it receives until the client closes.
    """

    BANNER = b"SSH-2.0-waylay-test\r\n"

    def serve(self, sock: socket.socket, record: ConnectionRecord) -> None:
        sock.sendall(self.BANNER)
        while data := sock.recv(65536):
            sock.sendall(data)


class TunnelPeer(_Listener):
    """The raw far end of a CONNECT tunnel.

    Echoes every byte as it arrives. When the client half-closes, it answers
    ``EOF after N bytes`` and closes — so a client that shut down its write side can still
    read, through the tunnel, what the server sent after seeing that FIN.
    """

    def serve(self, sock: socket.socket, record: ConnectionRecord) -> None:
        total = 0
        while True:
            data = sock.recv(65536)
            if not data:
                break
            total += len(data)
            sock.sendall(data)
        sock.sendall(b"EOF after %d bytes\n" % total)
        sock.shutdown(socket.SHUT_WR)


class ResetOnAccept(_Listener):
    """Resets every connection right after accepting it, before reading anything."""

    def serve(self, sock: socket.socket, record: ConnectionRecord) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class RefusedPort:
    """A loopback port that is bound but not listening, so every connect is refused.

    Holding the bound socket keeps another process from taking the port during the test.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()
