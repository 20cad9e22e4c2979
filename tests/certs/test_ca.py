"""The CA in the confdir (INTERFACE.md, "Files in the confdir"; MISSION.md point 8).

Created once with the files and modes of the interface, reused after, exports rewritten from
the key file when missing or stale, and a damaged key file an error naming it — never
replaced. The exports are checked by `openssl`, run as a separate process.
"""

from __future__ import annotations

import datetime
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from waylay.certs import ca as ca_module
from waylay.certs.ca import CertificateAuthority, generate_ca
from waylay.errors import ConfigError

FILES = {
    "waylay-ca.pem": 0o600,
    "waylay-ca-cert.pem": 0o644,
    "waylay-ca-cert.cer": 0o644,
    "waylay-ca-cert.p12": 0o644,
}
EXPORTS = [name for name in FILES if name != "waylay-ca.pem"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def contents(confdir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(confdir.iterdir())}


def p12_certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PKCS#12 file that must hold no key (no password either)."""
    bundle = pkcs12.load_pkcs12(data, None)
    assert bundle.key is None and bundle.cert is None  # a certificate with no key to pair
    return [bag.certificate for bag in bundle.additional_certs]


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    """Set the process's umask for one test; the modes must not depend on it."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".waylay"


@pytest.fixture
def created(confdir: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(confdir)


# --- creation ----------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o000], ids=oct)
def test_files_and_modes(confdir: Path, umask: Callable[[int], None], mask: int) -> None:
    umask(mask)
    ca = CertificateAuthority.load_or_create(confdir)
    assert mode(confdir) == 0o700
    assert {path.name: mode(path) for path in confdir.iterdir()} == FILES  # no temporary left
    assert ca.path == confdir / "waylay-ca.pem"
    assert ca.cert_path == confdir / "waylay-ca-cert.pem"


def test_an_existing_confdir_keeps_its_mode(tmp_path: Path) -> None:
    confdir = tmp_path / "shared"
    confdir.mkdir(mode=0o755)
    os.chmod(confdir, 0o755)
    CertificateAuthority.load_or_create(confdir)
    assert mode(confdir) == 0o755
    assert {path.name: mode(path) for path in confdir.iterdir()} == FILES


def test_a_confdir_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    confdir = tmp_path / "file"
    confdir.write_text("")
    with pytest.raises(ConfigError, match=str(confdir)):
        CertificateAuthority.load_or_create(confdir)


def test_file_contents(created: CertificateAuthority, confdir: Path) -> None:
    files = contents(confdir)
    key_file = files["waylay-ca.pem"]
    assert b"-----BEGIN CERTIFICATE-----" in key_file
    assert b"-----BEGIN PRIVATE KEY-----" in key_file
    assert files["waylay-ca-cert.pem"] == created.cert_pem
    assert b"PRIVATE KEY" not in files["waylay-ca-cert.pem"]
    assert x509.load_der_x509_certificate(files["waylay-ca-cert.cer"]) == created.cert
    assert p12_certificates(files["waylay-ca-cert.p12"]) == [created.cert]


def test_the_ca_certificate(created: CertificateAuthority) -> None:
    cert = created.cert
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "waylay CA"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "waylay"
    assert isinstance(created.key, rsa.RSAPrivateKey) and created.key.key_size == 2048
    cert.verify_directly_issued_by(cert)
    now = datetime.datetime.now(datetime.UTC)
    backdated = now - cert.not_valid_before_utc
    assert datetime.timedelta(days=2) <= backdated < datetime.timedelta(days=2, minutes=1)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=3650)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(created.key.public_key())
    assert cert.serial_number > 2**64
    assert created.fingerprint_sha256 == cert.fingerprint(hashes.SHA256())


# --- reuse -------------------------------------------------------------------------------


def test_a_second_load_reuses_everything(created: CertificateAuthority, confdir: Path) -> None:
    before = contents(confdir)
    times = {path.name: path.stat().st_mtime_ns for path in confdir.iterdir()}
    again = CertificateAuthority.load_or_create(confdir)
    assert contents(confdir) == before
    assert {path.name: path.stat().st_mtime_ns for path in confdir.iterdir()} == times
    assert again.cert == created.cert
    pkcs8 = (
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert again.key.private_bytes(*pkcs8) == created.key.private_bytes(*pkcs8)


@pytest.mark.parametrize("missing", EXPORTS)
def test_a_missing_export_is_written_again(
    created: CertificateAuthority, confdir: Path, missing: str
) -> None:
    before = contents(confdir)
    (confdir / missing).unlink()
    CertificateAuthority.load_or_create(confdir)
    assert {path.name: mode(path) for path in confdir.iterdir()} == FILES
    after = contents(confdir)
    if missing.endswith(".p12"):  # a fresh random MAC salt: compare what it holds
        assert p12_certificates(after.pop(missing)) == [created.cert]
        before.pop(missing)
    assert after == before


@pytest.mark.parametrize("stale", EXPORTS)
def test_an_export_of_another_certificate_is_replaced(
    created: CertificateAuthority, confdir: Path, tmp_path: Path, stale: str
) -> None:
    other = CertificateAuthority.load_or_create(tmp_path / "other")
    (confdir / stale).write_bytes((other.confdir / stale).read_bytes())
    CertificateAuthority.load_or_create(confdir)
    exported = (confdir / stale).read_bytes()
    assert exported != (other.confdir / stale).read_bytes()
    assert mode(confdir / stale) == 0o644


def test_when_another_waylay_creates_the_ca_first_its_ca_is_used(
    confdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = CertificateAuthority.load_or_create(tmp_path / "winner")

    def generate_while_the_other_links() -> object:
        generated = generate_ca()
        confdir.mkdir(exist_ok=True)
        (confdir / "waylay-ca.pem").write_bytes(winner.path.read_bytes())
        return generated

    monkeypatch.setattr(ca_module, "generate_ca", generate_while_the_other_links)
    loser = CertificateAuthority.load_or_create(confdir)
    assert loser.cert == winner.cert
    assert (confdir / "waylay-ca.pem").read_bytes() == winner.path.read_bytes()


# --- damage ------------------------------------------------------------------------------


def _pem(*parts: x509.Certificate | rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    out = b""
    for part in parts:
        if isinstance(part, x509.Certificate):
            out += part.public_bytes(serialization.Encoding.PEM)
        else:
            out += part.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    return out


def _leaf_with_key() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not a ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _damaged(kind: str, ca: CertificateAuthority) -> bytes:
    good = ca.path.read_bytes()
    cert_pem, _, key_part = good.partition(b"-----BEGIN PRIVATE KEY-----")
    key_pem = b"-----BEGIN PRIVATE KEY-----" + key_part
    if kind == "garbage":
        return b"this is not PEM\n"
    if kind == "empty":
        return b""
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "no-key":
        return cert_pem
    if kind == "no-cert":
        return key_pem
    if kind == "other-key":
        return cert_pem + _pem(ec.generate_private_key(ec.SECP256R1()))
    if kind == "not-a-ca":
        return _pem(*_leaf_with_key())
    if kind == "encrypted-key":
        encrypted = ca.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        return cert_pem + encrypted
    if kind == "expired":
        past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=4000)
        cert, key = generate_ca(now=past)
        return _pem(cert, key)
    raise AssertionError(kind)


DAMAGE = {
    "garbage": "no PEM certificate",
    "empty": "no PEM certificate",
    "truncated": "no readable PEM private key",
    "no-key": "no readable PEM private key",
    "no-cert": "no PEM certificate",
    "other-key": "does not belong",
    "not-a-ca": "not a CA",
    "encrypted-key": "encrypted",
    "expired": "expired",
}


@pytest.mark.parametrize(("kind", "problem"), DAMAGE.items(), ids=list(DAMAGE))
def test_a_damaged_ca_file_is_an_error_naming_it_and_never_replaced(
    created: CertificateAuthority, confdir: Path, kind: str, problem: str
) -> None:
    damaged = _damaged(kind, created)
    created.path.write_bytes(damaged)
    with pytest.raises(ConfigError) as raised:
        CertificateAuthority.load_or_create(confdir)
    reason = raised.value.reason
    assert str(created.path) in reason
    assert problem in reason
    assert "\n" not in reason
    assert created.path.read_bytes() == damaged


def test_an_unreadable_ca_file_is_an_error_naming_it(
    created: CertificateAuthority, confdir: Path
) -> None:
    created.path.unlink()
    created.path.mkdir()  # unreadable as a file even for root
    with pytest.raises(ConfigError, match=f"cannot read CA file {created.path}"):
        CertificateAuthority.load_or_create(confdir)
    assert created.path.is_dir()


# --- the exports, read by openssl -----------------------------------------------------------


def _openssl(*args: str) -> str:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_openssl_reads_the_der_export(created: CertificateAuthority) -> None:
    out = _openssl("x509", "-inform", "der", "-in", str(created.confdir / "waylay-ca-cert.cer"))
    assert x509.load_pem_x509_certificate(out.encode()) == created.cert


def test_openssl_reads_the_p12_export_without_a_password(created: CertificateAuthority) -> None:
    p12 = str(created.confdir / "waylay-ca-cert.p12")
    out = _openssl("pkcs12", "-in", p12, "-nokeys", "-passin", "pass:")
    assert "PRIVATE KEY" not in out
    assert x509.load_pem_x509_certificate(out.encode()) == created.cert


def test_openssl_accepts_the_ca_as_a_strict_trust_anchor(created: CertificateAuthority) -> None:
    pem = str(created.cert_path)
    assert _openssl("verify", "-x509_strict", "-CAfile", pem, pem).strip() == f"{pem}: OK"
