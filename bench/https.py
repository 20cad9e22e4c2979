"""One HTTPS exchange the way a client makes it through an explicit proxy, with blocking sockets.

``CONNECT origin`` to the proxy (or straight to nginx's HTTPS port for "direct"), a TLS
handshake that trusts the route's CA and sends ``origin.test`` (or another name) as SNI, then
HTTP/1.1 over it. For the measurements that go one connection at a time (S5's idle
connections, S6); the load scenarios use ``bench/tlsload.py``.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

from bench.errors import BenchError

if TYPE_CHECKING:  # the load workers import this module: they need none of the rest
    from bench.ways import Route


def client_context(trust: str) -> ssl.SSLContext:
    """What the benchmark's clients trust: the one CA of the route, nothing else."""
    return ssl.create_default_context(cafile=trust)


def connect_request(authority: str) -> bytes:
    return f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode()


def get_request(path: str, host: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise BenchError(f"a response without Content-Length: {head[:200]!r}")


def read_response(sock: socket.socket, way: str, *, body: bool = True) -> bytes:
    """The head of one response (and read its body, which must have a Content-Length)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError(f"{way} closed a connection before its response")
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")):
        raise BenchError(f"{way} answered {head.splitlines()[0]!r}")
    if body:
        left = content_length(head) - len(rest)
        while left > 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise BenchError(f"{way} closed a connection mid-response")
            left -= len(chunk)
    elif rest:
        raise BenchError(f"{way} sent bytes after its answer to CONNECT: {rest[:50]!r}")
    return head


def connect_tls(
    route: Route,
    context: ssl.SSLContext,
    *,
    server_name: str | None = None,
    timeout: float = 10.0,
) -> ssl.SSLSocket:
    """A TLS connection to the origin over ``route``: through the proxy's CONNECT, if any."""
    sock = socket.create_connection(route.tls_connect_address, timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if route.proxy:
            sock.sendall(connect_request(route.https_authority))
            read_response(sock, route.way, body=False)
        return context.wrap_socket(sock, server_hostname=server_name or route.server_name)
    except BaseException:
        sock.close()
        raise
