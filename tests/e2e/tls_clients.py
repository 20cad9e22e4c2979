"""Clients of intercepted HTTPS for the tests: curl and stdlib `ssl` through a CONNECT tunnel,
trusting waylay's CA from the test's confdir."""

from __future__ import annotations

import socket
import ssl
import subprocess
from pathlib import Path

from cryptography import x509

from .waylay_process import WaylayProcess, clean_env


def waylay_ca(confdir: Path) -> Path:
    return confdir / "waylay-ca-cert.pem"


def curl_https(
    proxy: WaylayProcess, url: str, confdir: Path, home: Path, *more: str
) -> subprocess.CompletedProcess[bytes]:
    """curl through waylay, trusting waylay's CA; ``more`` are further URLs on one connection."""
    options = ["-x", proxy.url, "--cacert", str(waylay_ca(confdir))]
    command = ["curl", "-q", "-sS", "--max-time", "20", *options, url]
    for other in more:
        command += ["--next", *options, other]
    return subprocess.run(command, capture_output=True, env=clean_env(home), timeout=35)


def connect_tunnel(proxy: WaylayProcess, authority: str) -> socket.socket:
    """A socket to waylay on which CONNECT ``authority`` was answered 200."""
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    sock.sendall(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        assert chunk, f"waylay closed the tunnel: {answer!r}"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return sock


def tls_through(
    proxy: WaylayProcess,
    authority: str,
    context: ssl.SSLContext,
    server_hostname: str | None,
) -> ssl.SSLSocket:
    return context.wrap_socket(connect_tunnel(proxy, authority), server_hostname=server_hostname)


def client_context(confdir: Path, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(waylay_ca(confdir)))
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def get(tls: ssl.SSLSocket, path: str, host: str) -> bytes:
    tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := tls.recv(65536):
        data += chunk
    return data


def san_of(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        san.get_values_for_type(x509.DNSName),
        [str(ip) for ip in san.get_values_for_type(x509.IPAddress)],
    )
