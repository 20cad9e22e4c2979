"""Clients of intercepted HTTPS for the tests: curl and stdlib `ssl` through a CONNECT tunnel,
trusting waylay's CA from the test's confdir."""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import subprocess
import time
from pathlib import Path

from cryptography import x509

from .waylay_process import WaylayProcess, clean_env
from .wire import WireClient


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


class TlsWireClient(WireClient):
    """A `WireClient` that runs TLS itself (an `ssl.SSLObject` over memory BIOs) in a tunnel.

    What a stdlib `SSLSocket` cannot do, it can: put bytes in the same TCP segment as its
    Finished, half-close with close_notify and then a FIN (an `SSLSocket` drops TLS on
    shutdown), and tell a peer's close_notify from a bare FIN (``ended``).
    """

    def __init__(
        self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None
    ) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._eof = False
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        # How the peer ended its side: "close_notify", "ragged" (a FIN without one),
        # "alert REASON" (a fatal alert), or "" while it has not.
        self.ended = ""

    def handshake(self, first_bytes: bytes = b"", *, then_fin: bool = False) -> None:
        """Handshake; ``first_bytes`` leave in the same segment as the Finished, then a FIN."""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("the tunnel closed during the handshake") from None
                self._incoming.write(data)
        if first_bytes:
            self.tls.write(first_bytes)
        self._flush()
        if then_fin:
            self.sock.shutdown(socket.SHUT_WR)

    def send_client_hello(self) -> None:
        """Only the first flight; `handshake` goes on from there."""
        self.sock.sendall(self.client_hello())

    def client_hello(self) -> bytes:
        """The first flight, not sent: for a test that sends it along with other bytes."""
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.do_handshake()
        return self._outgoing.read()

    def already_received(self, data: bytes) -> None:
        """TLS bytes read from the socket before this client took it over."""
        self._incoming.write(data)

    def _flush(self) -> None:
        if self._outgoing.pending:
            self.sock.sendall(self._outgoing.read())

    def send(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def send_raw(self, data: bytes) -> None:
        """Bytes on the TCP connection itself, past TLS (a corrupt record, say)."""
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        """TLS half-close: close_notify, then a FIN; the peer's data is still read."""
        with contextlib.suppress(ssl.SSLWantReadError):
            self.tls.unwrap()
        self._flush()
        self.sock.shutdown(socket.SHUT_WR)

    def fin_without_close_notify(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self) -> bool:
        if self._eof:
            return False
        while True:
            try:
                data = self.tls.read(256 * 1024)
            except ssl.SSLWantReadError:
                self._flush()  # a read can owe the peer something (a KeyUpdate)
                raw = self.sock.recv(256 * 1024)
                if raw:
                    self._incoming.write(raw)
                else:
                    self._incoming.write_eof()
                continue
            except ssl.SSLZeroReturnError:
                self.ended = "close_notify"
            except ssl.SSLEOFError:
                self.ended = "ragged"
            except ssl.SSLError as exc:
                self.ended = f"alert {exc.reason}"  # the peer said why it gave up
            else:
                if data:
                    self._buffer += data
                    return True
                self.ended = "close_notify"
            self._eof = True
            return False


def tls_wire(
    proxy: WaylayProcess,
    authority: str,
    confdir: Path,
    server_hostname: str | None = "www.example.test",
    *,
    handshake: bool = True,
    context: ssl.SSLContext | None = None,
) -> TlsWireClient:
    """A `TlsWireClient` through a CONNECT to ``authority``, trusting waylay's CA."""
    client = TlsWireClient(
        connect_tunnel(proxy, authority), context or client_context(confdir), server_hostname
    )
    if handshake:
        client.handshake()
    return client


class SClient:
    """``openssl s_client`` through waylay, interactive: lines in, what it prints out.

    Its command letters at the start of a line (``K``: a TLS 1.3 KeyUpdate asking for one
    back, ``R``: a TLS 1.2 renegotiation) make it do to the session what no Python client can.
    """

    def __init__(self, proxy: WaylayProcess, authority: str, confdir: Path, *flags: str) -> None:
        host = authority.rsplit(":", 1)[0]
        command = [
            "openssl", "s_client", "-proxy", f"127.0.0.1:{proxy.port}", "-connect", authority,
            "-servername", host, "-CAfile", str(waylay_ca(confdir)), "-crlf", *flags,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.output = b""

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it may have quit: read_until tells
            self.proc.stdin.write(line)
            self.proc.stdin.flush()

    def read_until(self, marker: bytes, timeout: float = 5.0) -> bool:
        """Read until ``marker`` was printed (True), or it quits or time is up (False)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while marker not in self.output and time.monotonic() < deadline:
            readable, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if readable:
                data = self.proc.stdout.read1(65536)
                if not data:
                    break
                self.output += data
        return marker in self.output

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
