"""The HTTPS test origin: the h11 ``Origin`` behind a real stdlib TLS server.

It records what each client said in its handshake — the SNI (None when there was none) and
the ALPN protocol chosen — so a test can prove what waylay sent upstream.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .origin import ConnectionRecord, Origin, _Listener
from .pki import Issued


@dataclass
class Handshake:
    sni: str | None
    alpn: str | None
    version: str | None


class TlsOrigin(Origin):
    def __init__(
        self,
        issued: Issued,
        *,
        alpn: Sequence[str] | None = ("http/1.1",),
        client_ca: str | None = None,
        handshake_delay: float = 0.0,
        first_request_timeout: float = 0.0,
        close_notify: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.handshake_delay = handshake_delay  # seconds before answering a ClientHello
        # Close a connection on which no request began this soon after the handshake (as
        # nginx's client_header_timeout does), with a close_notify first if asked.
        self.first_request_timeout = first_request_timeout
        self.close_notify = close_notify
        self.handshakes: list[Handshake] = []
        self.client_certs: list[dict[str, object]] = []
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(issued.chain, issued.key)
        if alpn is not None:
            self.context.set_alpn_protocols(list(alpn))
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self._sni: dict[int, str | None] = {}
        self.context.sni_callback = self._remember_sni

    def _remember_sni(self, conn: object, name: str | None, _ctx: object) -> None:
        # ``conn`` is the SSLSocket that wrap_socket is making (it returns that object).
        self._sni[id(conn)] = name

    def url(self, path: str = "/", host: str = "www.example.test") -> str:
        return f"https://{host}:{self.port}{path}"

    def serve(self, sock: socket.socket, record: ConnectionRecord) -> None:
        # h11 writes a head and its body separately: without NODELAY, Nagle and the peer's
        # delayed ACK hold the body back 40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(self.handshake_delay)
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            self.handshakes.append(Handshake(None, None, None))
            # Close as servers that linger do: what the client sent meanwhile (its request,
            # after a TLS 1.3 handshake it thinks is done) is read and dropped, so the alert
            # just sent is not wiped out by the reset an unread request would cause.
            with contextlib.suppress(OSError), socket.socket(fileno=tls.detach()) as raw:
                raw.shutdown(socket.SHUT_WR)
                raw.settimeout(1.0)
                while raw.recv(65536):
                    pass
            return
        # wrap_socket took the descriptor over (``sock`` is detached now): stop() must shut
        # the TLS socket down, and it is closed here rather than whenever it is collected.
        with self._lock:
            self._sockets.discard(sock)
            self._sockets.add(tls)
        try:
            sni = self._sni.pop(id(tls), None)
            self.handshakes.append(Handshake(sni, tls.selected_alpn_protocol(), tls.version()))
            peer = tls.getpeercert()
            if peer:
                self.client_certs.append(peer)
            if self.first_request_timeout and not _readable(tls, self.first_request_timeout):
                if self.close_notify:
                    tls.settimeout(1.0)
                    with contextlib.suppress(OSError, ssl.SSLError):
                        tls.unwrap()
                return
            super().serve(tls, record)
        finally:
            with self._lock:
                self._sockets.discard(tls)
            tls.close()


def _readable(sock: ssl.SSLSocket, timeout: float) -> bool:
    readable, _, _ = select.select([sock], [], [], timeout)
    return bool(readable)


class SilentServer(_Listener):
    """Accepts TCP connections and never says a word: a TLS handshake with it can only time
    out. Whatever a client sends is read and dropped until it closes."""

    def serve(self, sock: socket.socket, record: ConnectionRecord) -> None:
        while sock.recv(65536):
            pass
