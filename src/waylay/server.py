"""The proxy server: listening sockets, the connections they accept, timeouts, and shutdown.

Listening sockets are made here rather than by `loop.create_server(host=...)`, so that `*`
is exactly one dual-stack `::` socket and `localhost` exactly one IPv4 socket — never two
sockets on two different free ports when port 0 was asked for.

Every clock of a connection (idle client, slow head, silent server, idle kept-alive server
connection) is checked by one sweeper task, often enough for the smallest timeout, rather
than by a timer per connection. How many clients are served at once is bounded
(`ConnectionLimit`): one more gets a 503 and is closed, and those already served go on.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import time

from waylay.connection import ClientConnection
from waylay.context import ProxyContext
from waylay.errors import ConfigError
from waylay.installpage import InstallPage
from waylay.options import Limits, ListenAddress

log = logging.getLogger("waylay.server")

# How often idle connections and overdue servers are looked for, at most.
SWEEP_INTERVAL = 1.0
# Descriptors a served connection holds (client and server), and those kept for the rest
# (listening socket, flow store, logs): what --max-connections is checked against.
FDS_PER_CONNECTION = 2
RESERVED_FDS = 64
# How long stopping waits for the connections' coroutines to record their flows.
STOP_GRACE = 2.0


def raise_open_file_limit() -> int:
    """Lift the soft limit on open files to the hard one; return the limit now in force.

    Each proxied connection holds two descriptors (client and server), so the usual soft
    limit of 1024 would cap waylay at about 500 connections for no reason.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def listening_socket(listen: ListenAddress, *, backlog: int = 1024) -> socket.socket:
    """A bound, listening socket for ``listen``; ConfigError if the address cannot be used."""
    host = "127.0.0.1" if listen.host == "localhost" else listen.bind_host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: accepted sockets inherit it, and asyncio sets TCP_NODELAY only on
    # sockets that say they are TCP. Without it, Nagle holds a response's second write back
    # until the client's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if listen.dual_stack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, listen.port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        where = listen.display()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"cannot listen on {where}: the address is already in use") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"cannot listen on {where}: no such local address") from None
        raise ConfigError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return sock


class ConnectionLimit:
    """At most ``limit`` client connections are served at once; the next ones are refused.

    A refusal is logged at once, and then at most every ``LOG_INTERVAL`` seconds with the
    count since: a flood of clients must not become a flood of log lines.
    """

    LOG_INTERVAL = 10.0

    __slots__ = ("_logged_at", "_open", "_unlogged", "limit")

    def __init__(self, open_connections: set[ClientConnection], limit: int) -> None:
        self._open = open_connections
        self.limit = limit
        self._logged_at = -self.LOG_INTERVAL
        self._unlogged = 0

    def admits(self) -> bool:
        """True if one more client may be served; False (and the refusal noted) if not."""
        if len(self._open) < self.limit:
            return True
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= self.LOG_INTERVAL:
            log.warning(
                "%d clients turned away with a 503: %d connections are open, the most "
                "--max-connections allows",
                self._unlogged,
                self.limit,
            )
            self._logged_at = now
            self._unlogged = 0
        return False


def connection_limit(limits: Limits, open_files: int) -> int:
    """--max-connections, lowered (with a warning) to what ``open_files`` descriptors serve."""
    affordable = max(1, (open_files - RESERVED_FDS) // FDS_PER_CONNECTION)
    if limits.max_connections <= affordable:
        return limits.max_connections
    log.warning(
        "--max-connections %d needs more open files than the %d allowed (ulimit -n): "
        "serving at most %d clients at once",
        limits.max_connections,
        open_files,
        affordable,
    )
    return affordable


class ProxyServer:
    """Accepts client connections and serves them until ``stop``."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.Task[None] | None = None
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if open_files == resource.RLIM_INFINITY:
            open_files = 1 << 20
        self.limit = ConnectionLimit(
            ctx.connections, connection_limit(ctx.options.limits, open_files)
        )

    async def start(self) -> int:
        """Listen; return the port actually bound (the real one when 0 was asked for)."""
        loop = asyncio.get_running_loop()
        sock = listening_socket(self.ctx.options.listen)
        port: int = sock.getsockname()[1]
        self._know_itself(port)
        server = await loop.create_server(
            lambda: ClientConnection(self.ctx, limit=self.limit), sock=sock
        )
        self._servers.append(server)
        limits = self.ctx.options.limits
        clocks = (
            limits.upstream_timeout,
            limits.upstream_idle_timeout,
            limits.client_idle_timeout,
            limits.head_timeout,
        )
        interval = min(SWEEP_INTERVAL, *(clock / 4 for clock in clocks))
        self._sweeper = loop.create_task(self._sweep(interval))
        return port

    def _know_itself(self, port: int) -> None:
        """The addresses that are this proxy, and the install page that names it."""
        listen = self.ctx.options.listen
        hosts = {listen.host, listen.bind_host}
        if listen.host in ("*", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"):
            hosts |= {"127.0.0.1", "::1", "localhost"}
        self.ctx.own_addresses = frozenset((host, port) for host in hosts)
        self.ctx.install_page = InstallPage(self.ctx.ca, proxy_address=listen.display(port))

    async def _sweep(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for connection in list(self.ctx.connections):
                connection.check_timeouts(now)
            self.ctx.trimmer.tick(now)

    async def stop(self) -> None:
        """Stop accepting, shut every connection down, and wait until they are gone."""
        for server in self._servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        connections = list(self.ctx.connections)
        for connection in connections:
            connection.abort()
        for transport in list(self.ctx.lingering):
            transport.abort()
        for server in self._servers:
            await server.wait_closed()
        # Let the connections' coroutines see their transports close, run their hooks and
        # record their flows (a flow held by an intercept too: it ends as killed).
        await asyncio.sleep(0)
        serving = [c.serving for c in connections if c.serving is not None]
        if serving:
            await asyncio.wait(serving, timeout=STOP_GRACE)
