"""Connections to servers: resolving, connecting with a timeout, and the upstream protocol.

An `UpstreamConnection` belongs to one client connection (upstream connections are never
shared between clients, so one client's connection-bound state, such as NTLM, never leaks to
another). It is a thin protocol: the bytes and events it receives go to the exchange it is
currently serving; between exchanges it sits idle, and any byte or close from the server
then makes it unusable.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import TYPE_CHECKING, Protocol, cast

from waylay.backpressure import ReadGate
from waylay.errors import UpstreamError
from waylay.hosts import Resolver
from waylay.tls.endpoint import TlsHandshakeError, TlsTransport

if TYPE_CHECKING:
    from collections.abc import Callable


class UpstreamEvents(Protocol):
    """What an exchange receives from its upstream connection."""

    def upstream_data(self, data: bytes) -> None: ...
    def upstream_eof(self) -> None: ...
    def upstream_lost(self, exc: Exception | None) -> None: ...
    def upstream_pause_writing(self) -> None: ...
    def upstream_resume_writing(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "address",
        "closed",
        "exchange",
        "gate",
        "idle_since",
        "key",
        "source",
        "transport",
        "used",
        "writing_paused",
    )

    def __init__(self, key: tuple[str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.address: tuple[str, int] = ("", 0)
        self.exchange: UpstreamEvents | None = None
        self.closed = False
        self.used = 0  # exchanges served; > 0 means a reused connection
        # When it was last put aside for the next request (time.monotonic()).
        self.idle_since = 0.0
        # Over the write buffer's high-water mark: outlives an exchange, like the client's.
        self.writing_paused = False
        # Transparent mode: this connection's source port, and the set of waylay's own source
        # ports it is in until it closes (connection.py refuses a client that is one of them).
        self.source: tuple[set[int], int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Typed as BaseTransport; stream sockets get a full Transport (uvloop's included,
        # which does not subclass asyncio.Transport, so no isinstance check).
        self.transport = transport = cast(asyncio.Transport, transport)
        self.gate = ReadGate(transport)
        # Nothing reads the server until an exchange or a tunnel claims the connection: a
        # server that speaks first (SSH, SMTP behind CONNECT) must not find nobody listening.
        self.gate.pause("unclaimed")
        # The loop sets TCP_NODELAY itself. The peer's address is the one the transport read
        # when it was made: asking the socket again fails once the server has reset it.
        peer = transport.get_extra_info("peername") or ("", 0)
        self.address = (str(peer[0]), int(peer[1]))

    def data_received(self, data: bytes) -> None:
        if self.exchange is not None:
            self.exchange.upstream_data(data)
        else:
            # A server may not speak between responses (RFC 9112 §9.3): don't reuse it.
            self.close()

    def eof_received(self) -> bool:
        if self.exchange is not None:
            self.exchange.upstream_eof()
        self.closed = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.source is not None:
            ports, port = self.source
            ports.discard(port)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.upstream_lost(exc)

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.exchange is not None:
            self.exchange.upstream_pause_writing()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.exchange is not None:
            self.exchange.upstream_resume_writing()

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    @property
    def tls(self) -> ssl.SSLObject | None:
        """The TLS session with the server, once `start_tls` succeeded."""
        if self.transport is None:
            return None
        return cast("ssl.SSLObject | None", self.transport.get_extra_info("ssl_object"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


async def dns_lookup(host: str, port: int) -> list[str]:
    """Addresses for ``host`` from the system resolver, in its order of preference."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UpstreamError(f"cannot resolve {host}: {exc.strerror}", code="dns-error") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


async def connect(
    host: str,
    port: int,
    resolver: Resolver,
    *,
    timeout: float,
    factory: Callable[[], UpstreamConnection] | None = None,
    mark: int | None = None,
    own_ports: set[int] | None = None,
) -> UpstreamConnection:
    """Resolve ``host`` and connect to the first address that answers, within ``timeout``.

    ``mark`` is set as the socket's firewall mark (SO_MARK) before it connects, so the very
    first packet carries it: local-capture rules exclude waylay's own connections by it.
    With ``own_ports``, the socket's source port is known before it connects and is in that
    set until the connection closes: a redirect that loops back to waylay is recognised.
    """
    loop = asyncio.get_running_loop()
    addresses = await resolver.resolve(host, port)
    if not addresses:
        raise UpstreamError(f"{host} has no address", code="dns-error")
    make = factory or (lambda: UpstreamConnection((host, port)))
    failure = UpstreamError(f"cannot connect to {host}:{port}", code="connect-failed")
    for address in addresses:
        try:
            async with asyncio.timeout(timeout):
                if mark is None and own_ports is None:
                    _, protocol = await loop.create_connection(make, address, port)
                else:
                    sock, source = await _own_socket_connect(loop, address, port, mark, own_ports)
                    try:
                        _, protocol = await loop.create_connection(make, sock=sock)
                    except BaseException:
                        if own_ports is not None:
                            own_ports.discard(source)
                        raise
                    if own_ports is not None:
                        protocol.source = (own_ports, source)
        except TimeoutError:
            failure = UpstreamError(
                f"connecting to {host}:{port} ({address}) timed out after {timeout:g}s",
                status=504,
                code="connect-timeout",
            )
        except OSError as exc:
            failure = _connect_error(host, port, address, exc)
        else:
            return protocol
    raise failure


async def _own_socket_connect(
    loop: asyncio.AbstractEventLoop,
    address: str,
    port: int,
    mark: int | None,
    own_ports: set[int] | None,
) -> tuple[socket.socket, int]:
    """A socket marked and bound (its source port noted in ``own_ports``) before it connects."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    source = 0
    try:
        sock.setblocking(False)
        if mark is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        if own_ports is not None:
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            source = sock.getsockname()[1]
            own_ports.add(source)
        await loop.sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        if own_ports is not None:
            own_ports.discard(source)
        raise
    return sock, source


def _connect_error(host: str, port: int, address: str, exc: OSError) -> UpstreamError:
    where = f"{host}:{port}" if host == address else f"{host}:{port} ({address})"
    if exc.errno == errno.ECONNREFUSED:
        return UpstreamError(f"{where} refused the connection", code="connection-refused")
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return UpstreamError(f"{where} is unreachable", code="unreachable")
    return UpstreamError(f"cannot connect to {where}: {exc.strerror or exc}", code="connect-failed")


async def start_tls(
    upstream: UpstreamConnection,
    context: ssl.SSLContext,
    *,
    server_hostname: str | None,
    timeout: float,
    pending: bytes = b"",
) -> ssl.SSLObject:
    """TLS with the server over ``upstream``, verified as ``context`` says; UpstreamError if not.

    ``server_hostname`` is both the SNI sent (none for an IP literal) and the name the
    certificate must be valid for. ``pending``: bytes the server already sent.
    """
    assert upstream.transport is not None
    where = _show(upstream.key)
    try:
        tls = TlsTransport(
            upstream.transport,
            context,
            server_side=False,
            server_hostname=server_hostname,
            pending=pending,
        )
    except ValueError:  # ssl's IDNA check: a label empty or over 63 characters
        upstream.abort()
        raise UpstreamError(
            f"{server_hostname!r} is not a name TLS can send or verify a server by",
            code="upstream-tls-failed",
        ) from None
    try:
        await tls.handshake(timeout)
    except TimeoutError:
        upstream.abort()
        raise UpstreamError(
            f"the TLS handshake with {where} timed out after {timeout:g}s",
            status=504,
            code="upstream-tls-timeout",
        ) from None
    except TlsHandshakeError as exc:
        upstream.abort()
        raise upstream_tls_error(where, server_hostname, exc) from None
    tls.start(upstream)
    assert tls.ssl_object is not None
    return tls.ssl_object


# OpenSSL's X509_V_ERR_* codes that say what is wrong with a server's certificate.
_EXPIRED, _NOT_YET_VALID = 10, 9
_NAME_MISMATCH, _IP_MISMATCH = 62, 64
_FIX = "pass its CA with --upstream-ca FILE, or use --insecure to skip verification"


def upstream_tls_error(
    where: str, server_hostname: str | None, exc: TlsHandshakeError
) -> UpstreamError:
    """The 502 a client sees for a failed handshake with the server, with the fix."""
    verify = exc.__cause__ if isinstance(exc.__cause__, ssl.SSLCertVerificationError) else None
    code = verify.verify_code if verify is not None else None
    if code in (_EXPIRED, _NOT_YET_VALID):
        return UpstreamError(
            f"the certificate of {where} is {'expired' if code == _EXPIRED else 'not yet valid'}"
            f" ({exc}); if you trust it anyway, use --insecure",
            code="upstream-cert-expired",
        )
    if code in (_NAME_MISMATCH, _IP_MISMATCH):
        return UpstreamError(
            f"the certificate of {where} is not valid for {server_hostname} ({exc}); "
            "if you trust it anyway, use --insecure",
            code="upstream-cert-name-mismatch",
        )
    if verify is not None:
        return UpstreamError(
            f"the certificate of {where} is not trusted ({exc}): {_FIX}",
            code="upstream-cert-untrusted",
        )
    if exc.eof:
        return UpstreamError(
            f"{where} closed the connection during the TLS handshake",
            code="upstream-tls-failed",
        )
    return UpstreamError(
        f"the TLS handshake with {where} failed: {exc}", code="upstream-tls-failed"
    )


def _show(key: tuple[str, int]) -> str:
    host, port = key
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
