"""Idle keep-alive connections: each sends one request, reads the response, then waits.

Over HTTP, or over intercepted HTTPS: ``CONNECT``, a TLS handshake trusting the proxy's CA,
then the same one request inside the tunnel.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from bench.https import client_context, connect_tls, get_request, read_response
from bench.ways import Route


def _one(route: Route, request: bytes) -> socket.socket:
    sock = socket.create_connection(route.connect_address, timeout=10)
    try:
        sock.sendall(request)
        read_response(sock, route.way)
    except BaseException:
        sock.close()
        raise
    return sock


def _one_tls(route: Route, context: ssl.SSLContext, request: bytes) -> socket.socket:
    sock = connect_tls(route, context)
    try:
        sock.sendall(request)
        read_response(sock, route.way)
    except BaseException:
        sock.close()
        raise
    return sock


class IdleConnections:
    """Connections opened one after another and kept open until ``close``."""

    def __init__(self, route: Route, path: str, *, https: bool = False) -> None:
        self.route = route
        self.https = https
        if https:
            self.context = client_context(str(route.trusted_ca))
            self.request = get_request(path, route.https_authority)
        else:
            self.request = get_request(route.request_target(path), route.authority)
        self.sockets: list[socket.socket] = []

    def open(self, count: int) -> None:
        for _ in range(count):
            if self.https:
                self.sockets.append(_one_tls(self.route, self.context, self.request))
            else:
                self.sockets.append(_one(self.route, self.request))

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


@contextmanager
def idle_connections(route: Route, path: str, *, https: bool = False) -> Iterator[IdleConnections]:
    connections = IdleConnections(route, path, https=https)
    try:
        yield connections
    finally:
        connections.close()
