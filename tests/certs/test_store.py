"""The context cache: one forging per set of names, bounded, renewed before expiry, private files.

Time is the store's `clock`, so expiry is tested by moving a number, not by sleeping.
"""

from __future__ import annotations

import asyncio
import datetime
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from waylay.certs.ca import CertificateAuthority
from waylay.certs.forge import LeafForger
from waylay.certs.names import CertNames
from waylay.certs.store import CertStore
from waylay.errors import ConfigError

from .loopback import handshake

DAY = 86400.0


def names(host: str) -> CertNames:
    return CertNames(host, (host,))


class RecordingForger(LeafForger):
    """A forger that keeps what it forged, for tests that look at the leaf itself."""

    def __init__(self, ca: CertificateAuthority) -> None:
        super().__init__(ca)
        self.leaves: list[x509.Certificate] = []

    def forge_leaf(
        self, names: CertNames, *, now: datetime.datetime | None = None
    ) -> x509.Certificate:
        leaf = super().forge_leaf(names, now=now)
        self.leaves.append(leaf)
        return leaf


class Clock:
    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC).timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recording(ca: CertificateAuthority) -> RecordingForger:
    return RecordingForger(ca)


@pytest.fixture
def timed_store(
    ca: CertificateAuthority, recording: RecordingForger, clock: Clock
) -> Iterator[CertStore]:
    with CertStore(ca, recording, clock=clock) as certs:
        yield certs


# --- caching -----------------------------------------------------------------------------


def test_same_names_same_context_one_forging(store: CertStore) -> None:
    first = store.context_for(names("a.test"), "http/1.1")
    assert store.forged == 1
    assert store.context_for(CertNames("a.test", ("A.TEST.",)), "http/1.1") is first
    assert store.forged == 1
    assert len(store) == 1


def test_alpn_is_part_of_the_key_but_the_leaf_is_shared(store: CertStore) -> None:
    plain = store.context_for(names("a.test"), None)
    h1 = store.context_for(names("a.test"), "http/1.1")
    assert plain is not h1
    assert store.context_for(names("a.test"), None) is plain
    assert store.forged == 1  # one leaf, two contexts
    assert len(store) == 1


@pytest.mark.parametrize(("alpn", "negotiated"), [("http/1.1", "http/1.1"), (None, None)])
def test_the_context_offers_only_the_alpn_it_was_asked_for(
    store: CertStore, ca_file: Path, alpn: str | None, negotiated: str | None
) -> None:
    context = store.context_for(names("a.test"), alpn)
    result = handshake(context, "a.test", ca_file, alpn=["h2", "http/1.1"])
    assert result.alpn == negotiated


def test_the_cache_is_bounded_and_least_recently_used(
    ca: CertificateAuthority, forger: LeafForger
) -> None:
    with CertStore(ca, forger, max_entries=3) as store:
        for host in ("a.test", "b.test", "c.test"):
            store.context_for(names(host), None)
        store.context_for(names("a.test"), None)  # a is now the most recent
        store.context_for(names("d.test"), None)  # evicts b
        assert len(store) == 3
        assert store.forged == 4
        store.context_for(names("a.test"), None)
        assert store.forged == 4
        store.context_for(names("b.test"), None)
        assert store.forged == 5
        for host in (f"{n}.many.test" for n in range(20)):
            store.context_for(names(host), None)
        assert len(store) == 3


def test_max_entries_must_be_positive(ca: CertificateAuthority, forger: LeafForger) -> None:
    with pytest.raises(ValueError):
        CertStore(ca, forger, max_entries=0)


def test_concurrent_first_requests_forge_once(store: CertStore) -> None:
    # What 50 simultaneous CONNECTs do: each handshake asks from the loop's thread.
    async def handshake_for(host: str) -> None:
        await asyncio.sleep(0)
        store.context_for(names(host), "http/1.1")

    async def fifty() -> None:
        await asyncio.gather(*(handshake_for("new.test") for _ in range(50)))

    asyncio.run(fifty())
    assert store.forged == 1


# --- expiry ------------------------------------------------------------------------------


def test_a_leaf_is_forged_again_a_day_before_it_expires(
    timed_store: CertStore, clock: Clock, recording: RecordingForger
) -> None:
    first = timed_store.context_for(names("a.test"), None)
    clock.now += 43 * DAY
    assert timed_store.context_for(names("a.test"), None) is first
    assert timed_store.forged == 1
    clock.now += 1 * DAY + 1  # within a day of notAfter (45 days after the first forging)
    renewed = timed_store.context_for(names("a.test"), None)
    assert renewed is not first
    assert timed_store.forged == 2
    old, new = recording.leaves
    assert old.not_valid_after_utc.timestamp() - clock.now < DAY
    # Forged at the store's clock: backdated two days from then, valid 45 days from then.
    assert new.not_valid_before_utc.timestamp() == pytest.approx(clock.now - 2 * DAY, abs=1)
    assert new.not_valid_after_utc.timestamp() == pytest.approx(clock.now + 45 * DAY, abs=1)


def test_each_alpn_context_is_renewed_with_the_leaf(timed_store: CertStore, clock: Clock) -> None:
    old = [timed_store.context_for(names("a.test"), alpn) for alpn in (None, "http/1.1")]
    clock.now += 44 * DAY + 1
    new = [timed_store.context_for(names("a.test"), alpn) for alpn in (None, "http/1.1")]
    assert all(a is not b for a, b in zip(old, new, strict=True))
    assert timed_store.forged == 2


# --- the private directory ---------------------------------------------------------------


def test_private_directory_holds_only_the_key_and_is_removed_on_close(
    ca: CertificateAuthority, forger: LeafForger
) -> None:
    store = CertStore(ca, forger)
    directory = store.directory
    assert directory.name.startswith("waylay-certs-")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for host in ("a.test", "b.test"):
        store.context_for(names(host), None)
    # Each chain is unlinked once loaded; the key stays for the process's life.
    [key_file] = directory.iterdir()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    loaded = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert loaded.public_key() == forger.key.public_key()
    cached = store.context_for(names("a.test"), None)
    store.close()
    assert not directory.exists()
    store.close()  # twice is fine
    assert store.context_for(names("a.test"), None) is cached  # handed-out contexts live on
    with pytest.raises(RuntimeError, match="closed"):
        store.context_for(names("new.test"), None)


def test_directory_removed_when_the_store_is_collected(
    ca: CertificateAuthority, forger: LeafForger
) -> None:
    store = CertStore(ca, forger)
    directory = store.directory
    del store
    assert not directory.exists()


def test_context_manager_closes(ca: CertificateAuthority, forger: LeafForger) -> None:
    with CertStore(ca, forger) as store:
        directory = store.directory
        assert directory.is_dir()
    assert not directory.exists()


# --- user certificates (--cert DOMAIN=FILE) ----------------------------------------------


def _user_pem(common_name: str, san: list[str]) -> bytes:
    """A self-signed certificate and its key in one PEM, as a user would bring them."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in san]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def user_pem(tmp_path: Path) -> Path:
    path = tmp_path / "user.pem"
    path.write_bytes(_user_pem("user cert", ["user.example.test", "*.user.example.test"]))
    return path


@pytest.mark.parametrize(
    ("pattern", "name", "served"),
    [
        ("user.example.test", "user.example.test", True),
        ("USER.example.test.", "user.example.test", True),
        ("user.example.test", "other.example.test", False),
        ("*.user.example.test", "a.user.example.test", True),
        ("*.user.example.test", "user.example.test", False),
        ("*.user.example.test", "a.b.user.example.test", False),
    ],
)
def test_user_certificate_served_instead_of_a_forged_one(
    ca: CertificateAuthority,
    forger: LeafForger,
    user_pem: Path,
    pattern: str,
    name: str,
    served: bool,
) -> None:
    with CertStore(ca, forger, user_certs=[(pattern, user_pem)]) as store:
        context = store.context_for(CertNames(None, (name, "later.test")), "http/1.1")
        assert store.forged == (0 if served else 1)
        if served:
            assert store.context_for(CertNames(None, (name,)), "http/1.1") is context
            # The user's certificate is what a client gets (trusting it, it verifies).
            result = handshake(context, "user.example.test", user_pem, alpn=["http/1.1"])
            assert result.certificate.subject.rfc4514_string() == "CN=user cert"
            assert result.alpn == "http/1.1"


def test_exact_pattern_chosen_before_an_earlier_wildcard(
    ca: CertificateAuthority, forger: LeafForger, user_pem: Path, tmp_path: Path, ca_file: Path
) -> None:
    exact = tmp_path / "exact.pem"
    exact.write_bytes(_user_pem("exact cert", ["a.user.example.test"]))
    user_certs = [("*.user.example.test", user_pem), ("a.user.example.test", exact)]
    with CertStore(ca, forger, user_certs=user_certs) as store:
        context = store.context_for(names("a.user.example.test"), None)
        result = handshake(context, "a.user.example.test", exact)
        assert result.certificate.subject.rfc4514_string() == "CN=exact cert"


def _broken(kind: str, tmp_path: Path, user_pem: Path) -> Path:
    path = tmp_path / f"{kind}.pem"
    data = user_pem.read_bytes()
    cert_pem, _, key_rest = data.partition(b"-----BEGIN PRIVATE KEY-----")
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
    elif kind == "no-key":
        path.write_bytes(cert_pem)
    elif kind == "no-cert":
        path.write_bytes(b"-----BEGIN PRIVATE KEY-----" + key_rest)
    elif kind == "other-key":
        other = _user_pem("other", ["other.test"]).partition(b"-----BEGIN PRIVATE KEY-----")
        path.write_bytes(cert_pem + other[1] + other[2])
    elif kind == "encrypted-key":
        key = serialization.load_pem_private_key(data, None)
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        path.write_bytes(cert_pem + encrypted)
    return path


@pytest.mark.parametrize(
    "kind", ["missing", "directory", "no-key", "no-cert", "other-key", "encrypted-key"]
)
def test_unusable_user_certificate_is_a_config_error_naming_the_file(
    ca: CertificateAuthority, forger: LeafForger, tmp_path: Path, user_pem: Path, kind: str
) -> None:
    path = _broken(kind, tmp_path, user_pem)
    with pytest.raises(ConfigError) as raised:
        CertStore(ca, forger, user_certs=[("user.example.test", path)])
    assert str(path) in raised.value.reason
    assert "\n" not in raised.value.reason


@pytest.mark.parametrize("pattern", ["", "*", "a b", "a.*.test", "**.test", "*.*.test"])
def test_bad_user_pattern_is_a_config_error(
    ca: CertificateAuthority, forger: LeafForger, user_pem: Path, pattern: str
) -> None:
    with pytest.raises(ConfigError, match="--cert"):
        CertStore(ca, forger, user_certs=[(pattern, user_pem)])


# --- key log -----------------------------------------------------------------------------


def test_keylog_file_gets_the_client_sides_secrets(
    ca: CertificateAuthority, forger: LeafForger, tmp_path: Path, ca_file: Path
) -> None:
    keylog = tmp_path / "keys.log"
    with CertStore(ca, forger, keylog_filename=str(keylog)) as store:
        handshake(store.context_for(names("a.test"), None), "a.test", ca_file)
    assert b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" in keylog.read_bytes()
