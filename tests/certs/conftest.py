"""One CA for the certificate tests: RSA key generation is the slow part.

Tests that change the confdir make their own CA (`CertificateAuthority.load_or_create` on a
`tmp_path`); the rest share these, which they must not modify.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from waylay.certs.ca import CertificateAuthority


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("ca") / "confdir")


@pytest.fixture
def ca_file(ca: CertificateAuthority) -> Path:
    """The CA certificate a client is told to trust."""
    return ca.cert_path
