"""Interception's options end to end: SSLKEYLOGFILE, --client-cert, --cert, one forging for
many concurrent clients, and a damaged CA at start-up."""

from __future__ import annotations

import concurrent.futures
import ssl
from pathlib import Path

from cryptography import x509

from .pki import Issued, TestCA
from .tls_clients import client_context, get, tls_through
from .tls_origin import TlsOrigin
from .waylay_process import RunWaylay, StartWaylay


def test_sslkeylogfile_gets_the_secrets_of_both_sides(
    start_waylay: StartWaylay, tls_origin: TlsOrigin, pki: TestCA, confdir: Path, tmp_path: Path
) -> None:
    keylog = tmp_path / "keys.log"
    proxy = start_waylay("--upstream-ca", str(pki.cert_path), env={"SSLKEYLOGFILE": str(keylog)})
    authority = f"www.example.test:{tls_origin.port}"
    with tls_through(proxy, authority, client_context(confdir), "www.example.test") as tls:
        assert get(tls, "/echo/keys", "www.example.test").startswith(b"HTTP/1.1 200")
    lines = keylog.read_text().splitlines()
    # TLS 1.3 logs several secrets per session, each line naming its client random.
    randoms = {line.split()[1] for line in lines if line.startswith("CLIENT_TRAFFIC_SECRET_0")}
    assert len(randoms) == 2, lines  # the client's session and waylay's session upstream


def test_client_cert_is_presented_to_a_server_that_asks(
    start_waylay: StartWaylay, pki: TestCA, origin_cert: Issued, confdir: Path
) -> None:
    client_cert = pki.issue("client", cn="waylay-client", client=True)
    server = TlsOrigin(origin_cert, client_ca=str(pki.cert_path))
    server.start()
    try:
        authority = f"www.example.test:{server.port}"
        without = start_waylay("--upstream-ca", str(pki.cert_path))
        with tls_through(without, authority, client_context(confdir), "www.example.test") as tls:
            answer = get(tls, "/echo/no-cert", "www.example.test")
        assert not answer.startswith(b"HTTP/1.1 200"), answer
        proxy = start_waylay(
            "--upstream-ca",
            str(pki.cert_path),
            "--client-cert",
            f"*.example.test={client_cert.combined}",
        )
        with tls_through(proxy, authority, client_context(confdir), "www.example.test") as tls:
            assert get(tls, "/echo/cert", "www.example.test").startswith(b"HTTP/1.1 200")
        subject = dict(item[0] for item in server.client_certs[-1]["subject"])  # type: ignore[attr-defined]
        assert subject["commonName"] == "waylay-client"
    finally:
        server.stop()


def test_cert_serves_the_users_certificate_instead_of_a_forged_one(
    start_waylay: StartWaylay, tls_origin: TlsOrigin, pki: TestCA, tmp_path: Path
) -> None:
    own = pki.issue("own", cn="api.example.test", dns=["api.example.test"])
    proxy = start_waylay(
        "--upstream-ca", str(pki.cert_path), "--cert", f"api.example.test={own.combined}"
    )
    context = ssl.create_default_context(cafile=str(pki.cert_path))
    authority = f"api.example.test:{tls_origin.port}"
    with tls_through(proxy, authority, context, "api.example.test") as tls:
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
        assert get(tls, "/echo/own", "api.example.test").startswith(b"HTTP/1.1 200")
    assert served == own.cert


def test_fifty_concurrent_connects_to_a_new_host_forge_one_certificate(
    proxy: object, tls_origin: TlsOrigin, confdir: Path
) -> None:
    authority = f"api.example.test:{tls_origin.port}"

    def fetch(_: int) -> tuple[int, bytes]:
        with tls_through(proxy, authority, client_context(confdir), "api.example.test") as tls:  # type: ignore[arg-type]
            der = tls.getpeercert(binary_form=True)
            assert get(tls, "/echo/many", "api.example.test").startswith(b"HTTP/1.1 200")
        return x509.load_der_x509_certificate(der).serial_number, der

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(fetch, range(50)))
    # One forging: every client was shown the very same certificate.
    assert len({serial for serial, _ in results}) == 1
    assert len(tls_origin.requests) == 50


def test_a_damaged_ca_stops_start_up_with_status_2_naming_the_file(
    run_waylay: RunWaylay, confdir: Path
) -> None:
    first = run_waylay("ca", "path", "--confdir", str(confdir))
    assert first.returncode == 0, first.stderr
    ca_file = confdir / "waylay-ca.pem"
    ca_file.write_bytes(ca_file.read_bytes()[:200])
    result = run_waylay("dump", "--listen", "127.0.0.1:0", "--confdir", str(confdir))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(ca_file) in lines[0], result.stderr
    assert ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")  # not replaced
