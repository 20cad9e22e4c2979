"""A raw-socket HTTP/1.x client for what curl and httpx cannot say or cannot show.

It writes exactly the bytes a test gives it and reads responses with a small strict parser
(CRLF line ends, RFC 9112 framing), keeping header case, order and the raw head, and the
trailers of a chunked body. It does not import waylay: the test must not share the proxy's
idea of HTTP.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

_STATUS_LINE = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: (.*))?$")
_MAX_HEAD = 1024 * 1024


class IncompleteResponse(Exception):
    """The connection ended (FIN or RST) before the response was complete."""

    def __init__(self, message: str, received: bytes = b"") -> None:
        super().__init__(message)
        self.received = received


@dataclass
class Response:
    version: bytes
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    head: bytes
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    framing: str = "none"

    def header_values(self, name: str | bytes) -> list[bytes]:
        wanted = (name.encode() if isinstance(name, str) else name).lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def header(self, name: str | bytes) -> bytes | None:
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def header_names(self) -> list[bytes]:
        return [name for name, _ in self.headers]

    def json(self) -> Any:
        return json.loads(self.body)


class WireClient:
    """One client connection to the proxy, speaking exact bytes."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = bytearray()
        self._eof = False

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()

    def abort(self) -> None:
        """Close with a TCP RST, as a client that crashed would."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self.sock.recv(256 * 1024)
        if not data:
            self._eof = True
            return False
        self._buffer += data
        return True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                got = self._take(len(self._buffer))
                raise IncompleteResponse(f"connection closed after {len(got)} of {size} bytes", got)
        return self._take(size)

    def _read_line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                return self._take(end + 2)[:-2]
            if len(self._buffer) > _MAX_HEAD:
                raise AssertionError("line longer than 1 MiB")
            if not self._fill():
                raise IncompleteResponse(
                    "connection closed in the middle of a line", self._take(len(self._buffer))
                )

    def read_until_close(self) -> bytes:
        while self._fill():
            pass
        return self._take(len(self._buffer))

    def read_available(self, wait: float = 0.3) -> bytes:
        """Whatever arrives within ``wait`` seconds (empty if nothing)."""
        self.sock.settimeout(wait)
        try:
            self._fill()
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(10.0)
        return self._take(len(self._buffer))

    def wait_closed(self, timeout: float = 5.0) -> bytes:
        """Wait for the peer to close; return what arrived before. Raise if it stays open."""
        deadline = time.monotonic() + timeout
        received = bytearray(self._take(len(self._buffer)))
        while not self._eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"connection still open after {timeout} s; got {bytes(received)!r}"
                )
            self.sock.settimeout(remaining)
            try:
                if self._fill():
                    received += self._take(len(self._buffer))
            except TimeoutError:
                continue
            except ConnectionResetError:
                self._eof = True
        self.sock.settimeout(10.0)
        return bytes(received)

    def read_head(self) -> Response:
        head = bytearray()
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                head += self._take(end + 4)
                break
            if len(self._buffer) > _MAX_HEAD:
                raise AssertionError("response head over 1 MiB")
            if not self._fill():
                raise IncompleteResponse(
                    "connection closed before a complete response head", bytes(self._buffer)
                )
        lines = bytes(head[:-4]).split(b"\r\n")
        match = _STATUS_LINE.match(lines[0])
        if match is None:
            raise AssertionError(f"not a status line: {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise AssertionError(f"malformed response header line: {line!r}")
            headers.append((name, value.strip(b" \t")))
        return Response(
            version=b"HTTP/%s.%s" % (match.group(1), match.group(2)),
            status=int(match.group(3)),
            reason=match.group(4) or b"",
            headers=headers,
            head=bytes(head),
        )

    def read_response(self, method: bytes = b"GET") -> Response:
        """One response, informational ones included (a 100 comes back as itself)."""
        response = self.read_head()
        transfer_coding = b",".join(response.header_values("Transfer-Encoding")).lower()
        lengths = response.header_values("Content-Length")
        if (
            method == b"HEAD"
            or 100 <= response.status < 200
            or response.status in (204, 304)
            or (method == b"CONNECT" and 200 <= response.status < 300)
        ):
            response.framing = "none"
        elif transfer_coding:
            if transfer_coding.replace(b" ", b"").split(b",")[-1] == b"chunked":
                response.framing = "chunked"
                response.body, response.trailers = self._read_chunked()
            else:
                response.framing = "close"
                response.body = self.read_until_close()
        elif lengths:
            if len(set(lengths)) != 1:
                raise AssertionError(f"conflicting Content-Length: {lengths!r}")
            response.framing = "content-length"
            response.body = self.read_exactly(int(lengths[0]))
        else:
            response.framing = "close"
            response.body = self.read_until_close()
        return response

    def read_final_response(self, method: bytes = b"GET") -> tuple[list[Response], Response]:
        """The 1xx responses that came first, then the final one."""
        informational: list[Response] = []
        while True:
            response = self.read_response(method)
            if response.status >= 200 or response.status == 101:
                return informational, response
            informational.append(response)

    def _read_chunked(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        body = bytearray()
        while True:
            line = self._read_line()
            size_text = line.split(b";", 1)[0]
            if not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
                raise AssertionError(f"bad chunk size line from the proxy: {line!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            body += self.read_exactly(size)
            if self.read_exactly(2) != b"\r\n":
                raise AssertionError("chunk data not followed by CRLF")
        trailers = []
        while True:
            line = self._read_line()
            if not line:
                break
            name, _, value = line.partition(b":")
            trailers.append((name, value.strip(b" \t")))
        return bytes(body), trailers


def request_bytes(
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    """A request written out exactly as given: no header is added or reordered."""
    lines = [f"{method} {target} {version}"] + [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
