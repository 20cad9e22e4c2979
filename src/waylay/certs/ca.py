"""waylay's certificate authority: created once in the confdir, then reused (MISSION.md point 8).

`waylay-ca.pem` (certificate and private key, 0600) is the CA; the other three files are
exports of its certificate for the platforms that want each format (PEM, DER as `.cer`,
PKCS#12 without the key), 0644, in a 0700 confdir (INTERFACE.md). The key file is the one
source of truth: when it exists it is loaded and any missing or stale export is written again
from it; when it does not, a new CA is generated. A key file that cannot be used — unreadable,
not PEM, no key, a key that is not the certificate's, a certificate that is not a CA, an
expired CA — is a `ConfigError` naming the file and what is wrong. It is never replaced:
every certificate a user installed would silently stop working.

Every file is written atomically: a temporary file in the same directory, created with mode
0600, then chmod, fsync and rename, so a crash leaves the old file or the new one, never half
of one. The key file is put in place with `link`, which fails when the name exists, so two
waylays starting at once on a fresh confdir end up with the same CA rather than each
overwriting the other's. Whether an existing key file is still private is checked at start
by `permissions.py`, with the confdir and the flow database.

The CA is RSA-2048, the key type every client accepts, with what Python 3.13's strict default
verification (`VERIFY_X509_STRICT`) requires of a trust anchor: a critical basicConstraints
with CA:TRUE, keyUsage keyCertSign and cRLSign, and a SubjectKeyIdentifier.
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from waylay.errors import ConfigError

log = logging.getLogger(__name__)

CA_FILE = "waylay-ca.pem"
CERT_PEM_FILE = "waylay-ca-cert.pem"
CERT_DER_FILE = "waylay-ca-cert.cer"
CERT_P12_FILE = "waylay-ca-cert.p12"

CA_VALIDITY = datetime.timedelta(days=3650)
BACKDATE = datetime.timedelta(days=2)
CA_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COMMON_NAME, "waylay CA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "waylay"),
    ]
)

CAKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CertificateAuthority:
    """The CA's certificate and key, and where they live; build it with `load_or_create`."""

    def __init__(self, cert: x509.Certificate, key: CAKey, *, confdir: Path) -> None:
        self.cert = cert
        self.key = key
        self.confdir = confdir
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_p12 = pkcs12.serialize_key_and_certificates(
            b"waylay CA", None, cert, None, serialization.NoEncryption()
        )

    @property
    def path(self) -> Path:
        """`waylay-ca.pem`: the certificate and the private key."""
        return self.confdir / CA_FILE

    @property
    def cert_path(self) -> Path:
        """`waylay-ca-cert.pem`: the certificate a client is told to trust."""
        return self.confdir / CERT_PEM_FILE

    @property
    def fingerprint_sha256(self) -> bytes:
        return self.cert.fingerprint(hashes.SHA256())

    @classmethod
    def load_or_create(cls, confdir: Path) -> CertificateAuthority:
        """The CA of `confdir`, generated (with the directory, 0700) on first use."""
        _ensure_confdir(confdir)
        path = confdir / CA_FILE
        data = _read(path)
        if data is None:
            cert, key = generate_ca()
            try:
                _write_atomically(path, _ca_file_bytes(cert, key), 0o600, replace=False)
            except FileExistsError:
                # Another waylay created it between our read and our link: use that one.
                data = _read(path, missing_ok=False)
            else:
                log.info("created a new CA in %s", path)
        if data is not None:
            cert, key = parse_ca_file(path, data)
        ca = cls(cert, key, confdir=confdir)
        ca._write_exports()
        return ca

    def _write_exports(self) -> None:
        """Write each export file that is missing or holds another certificate."""
        exports = (
            (CERT_PEM_FILE, self.cert_pem),
            (CERT_DER_FILE, self.cert_der),
            (CERT_P12_FILE, self.cert_p12),
        )
        for name, content in exports:
            path = self.confdir / name
            current = _read(path, missing_ok=True, unreadable_ok=True)
            if current is None or not self._holds_our_cert(name, current, content):
                _write_atomically(path, content, 0o644)

    def _holds_our_cert(self, name: str, current: bytes, content: bytes) -> bool:
        if name != CERT_P12_FILE:
            return current == content
        # PKCS#12 carries a random MAC salt: compare what it holds, not its bytes.
        try:
            bundle = pkcs12.load_pkcs12(current, None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return False
        # Without a key to pair with, the certificate is one of the "additional" ones.
        held = [bag.certificate for bag in bundle.additional_certs]
        if bundle.cert is not None:
            held.append(bundle.cert.certificate)
        return bundle.key is None and held == [self.cert]


def generate_ca(now: datetime.datetime | None = None) -> tuple[x509.Certificate, CAKey]:
    """A new CA certificate and its RSA-2048 key: 10 years, backdated 2 days."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(CA_NAME)
        .issuer_name(CA_NAME)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now - BACKDATE + CA_VALIDITY)
        # pathlen 0: the CA signs leaves only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def parse_ca_file(path: Path, data: bytes) -> tuple[x509.Certificate, CAKey]:
    """The certificate and key of a CA file, or a ConfigError saying what is wrong with it."""

    def damaged(problem: str) -> ConfigError:
        return ConfigError(
            f"CA file {path} {problem}; fix or move it away (waylay then creates a new CA, "
            f"which clients must trust again)"
        )

    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise damaged("holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise damaged("holds an encrypted private key; waylay needs it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        raise damaged("holds no readable PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise damaged(f"holds a {type(key).__name__}; waylay signs with RSA or EC keys only")
    cert = certs[0]
    if _public_der(key) != _public_der(cert):
        raise damaged("holds a private key that does not belong to its certificate")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise damaged("holds a certificate without basicConstraints: not a CA") from None
    except ValueError as exc:
        raise damaged(f"holds a certificate with malformed extensions ({exc})") from None
    if not constraints.ca:
        raise damaged("holds a certificate that is not a CA (basicConstraints CA:FALSE)")
    expired = cert.not_valid_after_utc
    if expired <= datetime.datetime.now(datetime.UTC):
        raise damaged(f"holds a CA certificate that expired on {expired:%Y-%m-%d}")
    return cert, key


def _public_der(holder: CAKey | x509.Certificate) -> bytes:
    return holder.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ca_file_bytes(cert: x509.Certificate, key: CAKey) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ensure_confdir(confdir: Path) -> None:
    """Create the confdir 0700 (whatever the umask); an existing one is left as it is."""
    try:
        confdir.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not confdir.is_dir():
            raise ConfigError(f"confdir {confdir} exists and is not a directory") from None
        return
    except OSError as exc:
        raise ConfigError(f"cannot create confdir {confdir}: {exc.strerror}") from None
    os.chmod(confdir, 0o700)


def _read(path: Path, *, missing_ok: bool = True, unreadable_ok: bool = False) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ConfigError(f"CA file {path} vanished while waylay was reading it") from None
    except OSError as exc:
        if unreadable_ok:
            return None
        raise ConfigError(f"cannot read CA file {path}: {exc.strerror or exc}") from None


def _write_atomically(path: Path, data: bytes, mode: int, *, replace: bool = True) -> None:
    """Put `data` at `path` with `mode`, all or nothing; `replace=False` raises
    FileExistsError rather than overwrite an existing file."""
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
            os.fsync(fd)
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
        _fsync_directory(path.parent)
    except FileExistsError:
        if replace:
            raise ConfigError(f"cannot write {path}: a temporary file name is taken") from None
        raise
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        temporary.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
