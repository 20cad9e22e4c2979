"""A real TLS handshake over loopback between a server context and a stdlib client.

The client is `ssl.create_default_context(cafile=...)`, hostname checking on: on Python 3.13
that context also sets `VERIFY_X509_STRICT` and `VERIFY_X509_PARTIAL_CHAIN`, the strictest
verification a common client applies — which is why the suite runs on 3.11 and 3.13.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

TIMEOUT = 5.0


@dataclass(frozen=True)
class Handshake:
    certificate: x509.Certificate  # what the server presented
    alpn: str | None
    version: str | None


def handshake(
    server_context: ssl.SSLContext,
    server_hostname: str,
    cafile: Path,
    *,
    alpn: list[str] | None = None,
    host: str = "127.0.0.1",
) -> Handshake:
    """Connect, verify, read one byte the server sends; raise what the client raises."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    client_context = ssl.create_default_context(cafile=str(cafile))
    if alpn:
        client_context.set_alpn_protocols(alpn)
    with socket.create_server((host, 0), family=family) as listener:
        listener.settimeout(TIMEOUT)
        server = threading.Thread(target=_serve_one, args=(listener, server_context))
        server.start()
        try:
            with (
                socket.create_connection(listener.getsockname()[:2], timeout=TIMEOUT) as raw,
                client_context.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                assert tls.recv(1) == b"!"
                der = tls.getpeercert(binary_form=True)
                assert der is not None
                return Handshake(
                    x509.load_der_x509_certificate(der), tls.selected_alpn_protocol(), tls.version()
                )
        finally:
            server.join(TIMEOUT)


def _serve_one(listener: socket.socket, context: ssl.SSLContext) -> None:
    try:
        connection, _ = listener.accept()
    except OSError:
        return
    with connection:
        connection.settimeout(TIMEOUT)
        try:
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"!")
                tls.recv(1)  # until the client closes
        except (ssl.SSLError, OSError):
            pass  # the client's verdict is what the tests check
