"""The client-side TLS contexts waylay uses towards servers, built once and cached.

Trust is certifi's bundle plus the system store plus ``--upstream-ca``; ``--insecure``
turns verification off (and only then). A context carries its ALPN offer, so there is one
context per offer (the client's offers, limited to what waylay speaks) and per client
certificate; ``SSLKEYLOGFILE`` is honoured on every context, as browsers and curl do.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import certifi

from waylay.errors import ConfigError

# What waylay can speak inside an intercepted connection, in order of preference.
SPOKEN_ALPN = ("http/1.1",)


def keylog_path() -> str | None:
    """Where to log TLS secrets (NSS key log format, for Wireshark), if the user asked."""
    return os.environ.get("SSLKEYLOGFILE") or None


def offer_upstream(client_alpn: tuple[str, ...]) -> tuple[str, ...] | None:
    """The ALPN to offer the server for a client's offer; None means waylay cannot speak it.

    A client that offers no ALPN gets none offered upstream either; a client whose offers are
    all protocols waylay does not speak (gRPC's lone `h2`) is passed through untouched.
    """
    if not client_alpn:
        return ()
    spoken = tuple(p for p in client_alpn if p in SPOKEN_ALPN)
    return spoken or None


@dataclass(slots=True)
class UpstreamContexts:
    """Client-side contexts by (ALPN offer, client certificate)."""

    insecure: bool = False
    upstream_ca: Path | None = None
    client_certs: tuple[tuple[str, Path], ...] = ()  # (host pattern or "*", PEM file)
    _cache: dict[tuple[tuple[str, ...], Path | None], ssl.SSLContext] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Fail at start-up, naming the file, rather than on the first connection. Without
        # such files nothing is built before the first HTTPS connection needs it: the trust
        # store costs a few MB of memory and some milliseconds of start-up.
        for _, path in self.client_certs:
            self._context((), path)
        if self.upstream_ca is not None:
            self._context((), None)

    def for_server(self, host: str, alpn: tuple[str, ...]) -> ssl.SSLContext:
        return self._context(alpn, self._client_cert(host))

    def _client_cert(self, host: str) -> Path | None:
        fallback = None
        for pattern, path in self.client_certs:
            if pattern == "*":
                fallback = fallback or path
            elif pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:])):
                return path
        return fallback

    def _context(self, alpn: tuple[str, ...], client_cert: Path | None) -> ssl.SSLContext:
        key = (alpn, client_cert)
        context = self._cache.get(key)
        if context is None:
            context = self._cache[key] = self._build(alpn, client_cert)
        return context

    def _build(self, alpn: tuple[str, ...], client_cert: Path | None) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context.load_verify_locations(cafile=certifi.where())
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
            if self.upstream_ca is not None:
                try:
                    context.load_verify_locations(cafile=str(self.upstream_ca))
                except (OSError, ssl.SSLError) as exc:
                    raise ConfigError(
                        f"--upstream-ca {self.upstream_ca}: not a readable PEM bundle ({exc})"
                    ) from None
        if alpn:
            context.set_alpn_protocols(list(alpn))
        if client_cert is not None:
            try:
                context.load_cert_chain(str(client_cert))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"--client-cert {client_cert}: needs a PEM file with the certificate "
                    f"and its key ({exc})"
                ) from None
        keylog = keylog_path()
        if keylog:
            context.keylog_filename = keylog
        return context
