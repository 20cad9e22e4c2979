"""The server-side TLS contexts waylay presents to clients, one per set of names, cached.

`context_for(names, alpn)` returns an `ssl.SSLContext` whose certificate chain is a leaf forged
for `names` plus the CA certificate, offering `alpn`. The cache is an LRU over sets of names,
at most `max_entries` of them, each holding its leaf and one context per ALPN value asked for
(one forging serves `http/1.1` and no-ALPN clients alike). An entry is forged again once its
leaf is within a day of its notAfter, so a proxy that runs for weeks never presents an expired
certificate.

The store is synchronous on purpose. Forging costs about a millisecond of CPU (one signature
with the CA key; the leaf key is made once per process, by `LeafForger`), loading the context
a fraction of that. Done inline on the event loop, without an `await` between the cache lookup
and the insert, it makes "concurrent first requests for one host forge once" true without a
lock or a single-flight table: the second handshake for a host finds the context the first
one stored. It also means the store is not thread-safe; use it from the loop's thread.

The stdlib `ssl` module loads certificates and keys from files only. The store makes one
private directory (`tempfile.mkdtemp`, mode 0700), writes the leaf key into it once (0600)
for the life of the process, and writes each chain to a file there only long enough for
`load_cert_chain` to parse it, unlinking it right after. `close()` removes the directory; so
does garbage collection of the store or the interpreter's exit, whichever comes first.

A user certificate (`--cert DOMAIN=FILE`, a PEM file with the chain and its key) replaces
forging for the names it is given for: `DOMAIN` is an exact name or `*.example.test`, which,
as a wildcard certificate does, covers one more label (`a.example.test`, not
`a.b.example.test` nor `example.test`). It is matched against `CertNames.first_name` — the
SNI, else the CONNECT host — exact patterns before wildcards, then in the order given.
"""

from __future__ import annotations

import datetime
import itertools
import os
import shutil
import ssl
import tempfile
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from waylay.certs.ca import CertificateAuthority
from waylay.certs.forge import LeafForger
from waylay.certs.names import CertNames, dns_name
from waylay.errors import ConfigError

# Seconds since the epoch, like time.time; tests pass their own.
Clock = Callable[[], float]

RENEW_BEFORE = datetime.timedelta(days=1).total_seconds()


@dataclass(slots=True)
class _Entry:
    """One forged leaf, and the contexts built from it, one per ALPN asked for."""

    chain_pem: bytes
    renew_at: float
    contexts: dict[str | None, ssl.SSLContext]


@dataclass(frozen=True, slots=True)
class UserCert:
    """A `--cert DOMAIN=FILE`: the pattern, the file, and the file's PEM as read at start."""

    pattern: str
    path: Path
    pem: bytes

    def matches(self, name: str) -> bool:
        if not self.pattern.startswith("*."):
            return name == self.pattern
        label, dot, parent = name.partition(".")
        return bool(label and dot) and label != "*" and parent == self.pattern[2:]


def load_user_cert(pattern: str, path: Path) -> UserCert:
    """Read and check `--cert PATTERN=PATH`; a ConfigError names what is wrong."""
    flag = f"--cert {pattern}={path}"
    wildcard = pattern.startswith("*.")
    name = dns_name(pattern[2:] if wildcard else pattern)
    if name is None or "*" in name:
        raise ConfigError(f"{flag}: {pattern!r} is not a domain name or *.DOMAIN")
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise ConfigError(f"{flag}: {path} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise ConfigError(f"{flag}: the private key in {path} is encrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{flag}: {path} holds no readable PEM private key") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != certs[0].public_key().public_bytes(der, spki):
        raise ConfigError(f"{flag}: the key in {path} does not belong to its first certificate")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(path)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{flag}: TLS cannot use {path}: {exc}") from None
    return UserCert(f"*.{name}" if wildcard else name, path, pem)


class CertStore:
    """Server-side TLS contexts by (names, ALPN): forged, cached, renewed before expiry."""

    def __init__(
        self,
        ca: CertificateAuthority,
        forger: LeafForger,
        *,
        max_entries: int = 1024,
        user_certs: Sequence[tuple[str, Path]] = (),
        clock: Clock = time.time,
        keylog_filename: str | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.ca = ca
        self.forger = forger
        self.max_entries = max_entries
        self.keylog_filename = keylog_filename
        self.forged = 0
        self._clock = clock
        users = [load_user_cert(pattern, path) for pattern, path in user_certs]
        # Exact names first: `--cert *.example.test=A --cert www.example.test=B` serves B.
        self._user_certs = sorted(users, key=lambda user: user.pattern.startswith("*."))
        self._user_contexts: dict[tuple[UserCert, str | None], ssl.SSLContext] = {}
        self._entries: OrderedDict[CertNames, _Entry] = OrderedDict()
        self._file_numbers = itertools.count()
        self.directory = Path(tempfile.mkdtemp(prefix="waylay-certs-"))
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.directory, True)
        key_pem = forger.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._key_path = self._write_private("leaf-key.pem", key_pem)

    def __len__(self) -> int:
        """How many sets of names have a leaf cached (each with a context per ALPN)."""
        return len(self._entries)

    def __enter__(self) -> CertStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the private directory. Contexts already handed out keep working."""
        self._finalizer()

    def context_for(self, names: CertNames, alpn: str | None) -> ssl.SSLContext:
        """The server context for `names`, offering ALPN `alpn` (or none when None)."""
        user = self._user_cert_for(names)
        if user is not None:
            return self._user_context(user, alpn)
        entry = self._entries.get(names)
        now = self._clock()
        if entry is None or now >= entry.renew_at:
            entry = self._forge(names, now)
        else:
            self._entries.move_to_end(names)
        context = entry.contexts.get(alpn)
        if context is None:
            context = entry.contexts[alpn] = self._load_context(entry.chain_pem, alpn)
        return context

    def _forge(self, names: CertNames, now: float) -> _Entry:
        cert = self.forger.forge_leaf(names, now=datetime.datetime.fromtimestamp(now, datetime.UTC))
        self.forged += 1
        chain_pem = cert.public_bytes(serialization.Encoding.PEM) + self.ca.cert_pem
        renew_at = cert.not_valid_after_utc.timestamp() - RENEW_BEFORE
        entry = self._entries[names] = _Entry(chain_pem, renew_at, {})
        self._entries.move_to_end(names)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def _user_cert_for(self, names: CertNames) -> UserCert | None:
        name = names.first_name
        if not self._user_certs or name is None:
            return None
        return next((user for user in self._user_certs if user.matches(name)), None)

    def _user_context(self, user: UserCert, alpn: str | None) -> ssl.SSLContext:
        context = self._user_contexts.get((user, alpn))
        if context is None:
            # The key is in the same file (load_cert_chain reads it from the certfile).
            context = self._load_context(user.pem, alpn, leaf_key=False)
            self._user_contexts[(user, alpn)] = context
        return context

    def _load_context(
        self, chain_pem: bytes, alpn: str | None, *, leaf_key: bool = True
    ) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # Client-initiated renegotiation only costs the proxy CPU.
        context.options |= ssl.OP_NO_RENEGOTIATION
        if alpn is not None:
            context.set_alpn_protocols([alpn])
        if self.keylog_filename:
            context.keylog_filename = self.keylog_filename
        path = self._write_private(f"chain-{next(self._file_numbers)}.pem", chain_pem)
        try:
            context.load_cert_chain(path, self._key_path if leaf_key else None)
        finally:
            path.unlink()
        return context

    def _write_private(self, name: str, data: bytes) -> Path:
        if not self._finalizer.alive:
            raise RuntimeError("the certificate store is closed")
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as file:
            file.write(data)
        return path
