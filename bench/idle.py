"""Idle keep-alive connections: each sends one request, reads the response, then waits."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from bench.errors import BenchError
from bench.ways import Route


def _one(route: Route, request: bytes) -> socket.socket:
    sock = socket.create_connection(route.connect_address, timeout=10)
    try:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                raise BenchError(f"{route.way} closed an idle connection before its response")
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 "):
            raise BenchError(f"{route.way}: {head.splitlines()[0]!r} on an idle connection")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")[1:]
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise BenchError(f"{route.way} closed an idle connection mid-response")
            body += chunk
    except BaseException:
        sock.close()
        raise
    return sock


class IdleConnections:
    """Connections opened one after another and kept open until ``close``."""

    def __init__(self, route: Route, path: str) -> None:
        self.route = route
        self.request = (
            f"GET {route.request_target(path)} HTTP/1.1\r\nHost: {route.authority}\r\n\r\n"
        ).encode()
        self.sockets: list[socket.socket] = []

    def open(self, count: int) -> None:
        for _ in range(count):
            self.sockets.append(_one(self.route, self.request))

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


@contextmanager
def idle_connections(route: Route, path: str) -> Iterator[IdleConnections]:
    connections = IdleConnections(route, path)
    try:
        yield connections
    finally:
        connections.close()
