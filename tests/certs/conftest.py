"""One CA and one forger for the certificate tests: RSA key generation is the slow part.

Tests that change the confdir make their own CA (`CertificateAuthority.load_or_create` on a
`tmp_path`); the rest share these, which they must not modify.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from waylay.certs.ca import CertificateAuthority
from waylay.certs.forge import LeafForger
from waylay.certs.store import CertStore


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path_factory.mktemp("ca") / "confdir")


@pytest.fixture(scope="session")
def forger(ca: CertificateAuthority) -> LeafForger:
    return LeafForger(ca)


@pytest.fixture
def store(ca: CertificateAuthority, forger: LeafForger) -> Iterator[CertStore]:
    with CertStore(ca, forger) as certs:
        yield certs


@pytest.fixture
def ca_file(ca: CertificateAuthority) -> Path:
    """The CA certificate a client is told to trust."""
    return ca.cert_path
