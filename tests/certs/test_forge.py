"""Forged leaves: every extension a strict verifier wants, and real clients accepting them.

The handshakes run on the interpreter of the suite; `make test` runs it on 3.11 and on 3.13,
whose default context verifies with `VERIFY_X509_STRICT` (AKI on the leaf, SKI on the CA,
critical basicConstraints...). `openssl verify -x509_strict` checks the same chain as a
separate process.
"""

from __future__ import annotations

import datetime
import ssl
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from waylay.certs.ca import CertificateAuthority
from waylay.certs.forge import LeafForger, UpstreamNames, names_from_certificate, random_serial
from waylay.certs.names import CertNames, merge_names
from waylay.certs.store import CertStore

from .loopback import handshake
from .test_names import hosts, ips, upstream_names

# Certificates keep whole seconds; the session's CA was made moments ago.
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(days=3)
NAMES = CertNames(
    "www.example.test",
    ("www.example.test", "api.example.test", "*.cdn.example.test"),
    (IPv4Address("127.0.0.1"), IPv6Address("::1")),
)


@pytest.fixture(scope="module")
def leaf(forger: LeafForger) -> x509.Certificate:
    return forger.forge_leaf(NAMES, now=NOW)


T = TypeVar("T", bound=x509.ExtensionType)


def extension(cert: x509.Certificate, kind: type[T]) -> x509.Extension[T]:
    return cert.extensions.get_extension_for_class(kind)


# --- the certificate ---------------------------------------------------------------------


def test_subject_and_issuer(leaf: x509.Certificate, ca: CertificateAuthority) -> None:
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.test"
    assert leaf.issuer == ca.cert.subject
    leaf.verify_directly_issued_by(ca.cert)
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha256"


def test_every_name_in_the_san(leaf: x509.Certificate) -> None:
    san = extension(leaf, x509.SubjectAlternativeName)
    assert not san.critical  # there is a CN
    assert san.value.get_values_for_type(x509.DNSName) == list(NAMES.dns)
    assert san.value.get_values_for_type(x509.IPAddress) == list(NAMES.ips)


def test_validity_45_days_backdated_2(leaf: x509.Certificate) -> None:
    assert leaf.not_valid_before_utc == NOW - datetime.timedelta(days=2)
    assert leaf.not_valid_after_utc == NOW + datetime.timedelta(days=45)


def test_validity_never_outlasts_the_ca(forger: LeafForger, ca: CertificateAuthority) -> None:
    late = ca.cert.not_valid_after_utc - datetime.timedelta(days=10)
    cert = forger.forge_leaf(NAMES, now=late)
    assert cert.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_extensions(leaf: x509.Certificate, ca: CertificateAuthority, forger: LeafForger) -> None:
    constraints = extension(leaf, x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = extension(leaf, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and not usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    eku = extension(leaf, x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    ski = extension(leaf, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(forger.key.public_key())
    aki = extension(leaf, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == extension(ca.cert, x509.SubjectKeyIdentifier).value.digest


def test_serials_are_random_positive_and_at_most_128_bits(forger: LeafForger) -> None:
    serials = {forger.forge_leaf(NAMES).serial_number for _ in range(20)}
    assert len(serials) == 20
    assert all(0 < serial < 2**128 for serial in serials)
    assert all(0 < random_serial() < 2**128 for _ in range(1000))


def test_no_cn_when_none_fits_and_then_the_san_is_critical(forger: LeafForger) -> None:
    long_name = "a" * 60 + ".example.test"
    cert = forger.forge_leaf(CertNames(None, (long_name,)))
    assert cert.subject == x509.Name([])
    san = extension(cert, x509.SubjectAlternativeName)
    assert san.critical  # RFC 5280 §4.2.1.6
    assert san.value.get_values_for_type(x509.DNSName) == [long_name]


def test_one_name_still_gets_a_san(forger: LeafForger) -> None:
    cert = forger.forge_leaf(CertNames("only.test", ("only.test",)))
    san = extension(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["only.test"]


def test_no_names_is_refused(forger: LeafForger) -> None:
    with pytest.raises(ValueError, match="at least one"):
        forger.forge_leaf(CertNames("cn only"))


def test_one_leaf_key_per_forger_never_the_cas(
    forger: LeafForger, ca: CertificateAuthority
) -> None:
    first = forger.forge_leaf(CertNames(None, ("a.test",)))
    second = forger.forge_leaf(CertNames(None, ("b.test",)))
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert first.public_key().public_bytes(*spki) == second.public_key().public_bytes(*spki)
    assert first.public_key().public_bytes(*spki) != ca.cert.public_key().public_bytes(*spki)
    assert isinstance(forger.key, ec.EllipticCurvePrivateKey)
    assert forger.key.curve.name == "secp256r1"


def test_rsa_leaves_allow_key_encipherment(ca: CertificateAuthority) -> None:
    forger = LeafForger(ca, key_type="rsa")
    assert isinstance(forger.key, rsa.RSAPrivateKey) and forger.key.key_size == 2048
    cert = forger.forge_leaf(NAMES)
    usage = extension(cert, x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment


def test_unknown_key_type_is_refused(ca: CertificateAuthority) -> None:
    with pytest.raises(ValueError, match="key_type"):
        LeafForger(ca, key_type="dsa")  # type: ignore[arg-type]


def test_openssl_verifies_the_chain_strictly(
    leaf: x509.Certificate, ca_file: Path, tmp_path: Path
) -> None:
    leaf_file = tmp_path / "leaf.pem"
    leaf_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    strict = ["-x509_strict", "-purpose", "sslserver", "-attime", str(int(NOW.timestamp()))]
    result = subprocess.run(
        ["openssl", "verify", *strict, "-CAfile", str(ca_file), str(leaf_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_ca_without_ski_still_gets_an_aki(tmp_path: Path) -> None:
    # A CA brought by the user (another tool's) may lack the SKI waylay's own CA has.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "their CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - datetime.timedelta(days=10))
        .not_valid_after(NOW + datetime.timedelta(days=100))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    confdir = tmp_path / "confdir"
    confdir.mkdir()
    (confdir / "waylay-ca.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    their_ca = CertificateAuthority.load_or_create(confdir)
    leaf = LeafForger(their_ca).forge_leaf(NAMES, now=NOW)
    aki = extension(leaf, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    leaf.verify_directly_issued_by(cert)


# --- reading the server's names ------------------------------------------------------------


def test_names_from_certificate(leaf: x509.Certificate) -> None:
    assert names_from_certificate(leaf) == UpstreamNames(
        "www.example.test", list(NAMES.dns), list(NAMES.ips)
    )


def test_names_from_certificate_without_san_or_cn(ca: CertificateAuthority) -> None:
    assert names_from_certificate(ca.cert) == UpstreamNames("waylay CA", [], [])
    key = ec.generate_private_key(ec.SECP256R1())
    bare = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert names_from_certificate(bare) == UpstreamNames(None, [], [])


@given(
    upstream_dns=upstream_names,
    upstream_ips=st.lists(ips, max_size=3),
    sni=st.none() | hosts,
    connect_host=hosts,
)
def test_any_merge_forges_and_reads_back(
    forger: LeafForger,
    upstream_dns: list[str],
    upstream_ips: list[IPv4Address | IPv6Address],
    sni: str | None,
    connect_host: str,
) -> None:
    names = merge_names(
        upstream_cn=None,
        upstream_dns=upstream_dns,
        upstream_ips=upstream_ips,
        sni=sni,
        connect_host=connect_host,
    )
    cn, dns, addresses = names_from_certificate(forger.forge_leaf(names))
    assert (cn, tuple(dns), tuple(addresses)) == (names.common_name, names.dns, names.ips)


# --- real clients ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server_hostname", "host"),
    [
        ("www.example.test", "127.0.0.1"),
        ("api.example.test", "127.0.0.1"),
        ("img.cdn.example.test", "127.0.0.1"),  # the wildcard
        ("127.0.0.1", "127.0.0.1"),  # an IP SAN
        ("::1", "::1"),
    ],
)
def test_stdlib_client_verifies_the_forged_chain(
    store: CertStore, ca_file: Path, server_hostname: str, host: str
) -> None:
    result = handshake(store.context_for(NAMES, None), server_hostname, ca_file, host=host)
    assert result.certificate.subject == x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "www.example.test")]
    )
    assert result.version in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize(
    "server_hostname",
    ["other.example.test", "a.b.cdn.example.test", "cdn.example.test", "127.0.0.2"],
)
def test_names_not_in_the_san_are_rejected(
    store: CertStore, ca_file: Path, server_hostname: str
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(store.context_for(NAMES, None), server_hostname, ca_file)


def test_a_client_without_the_ca_rejects_the_chain(store: CertStore, tmp_path: Path) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(store.context_for(NAMES, None), "www.example.test", other.cert_path)
