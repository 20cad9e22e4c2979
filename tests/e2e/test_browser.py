"""Headless Chromium loads an https:// page through waylay with no certificate error.

Chromium on Linux trusts the NSS database in ``$HOME/.pki/nssdb``: the test makes one in a
temporary HOME with `certutil` and puts waylay's CA in it, nothing else. Every name resolves
through waylay's ``--hosts-only`` file, the proxy bypass list is emptied (`<-loopback>`), and
the flags that make Chromium phone home are off, so nothing leaves the machine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .pki import TestCA
from .tls_origin import TlsOrigin
from .waylay_process import StartWaylay, clean_env

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests run as root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def _trust_in_nss(home: Path, ca_pem: Path) -> None:
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    database = f"sql:{nssdb}"
    for command in (
        ["certutil", "-d", database, "-N", "--empty-password"],
        ["certutil", "-d", database, "-A", "-t", "C,,", "-n", "waylay", "-i", str(ca_pem)],
    ):
        subprocess.run(command, check=True, capture_output=True, timeout=30)


def test_chromium_loads_an_https_page_through_waylay_without_a_certificate_error(
    start_waylay: StartWaylay, tls_origin: TlsOrigin, pki: TestCA, confdir: Path, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (make test installs it as root)"
    proxy = start_waylay("--upstream-ca", str(pki.cert_path))
    browser_home = tmp_path / "browser-home"
    _trust_in_nss(browser_home, confdir / "waylay-ca-cert.pem")
    url = tls_origin.url("/echo/from-chromium", host="www.example.test")
    result = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--proxy-server={proxy.url}",
            "--proxy-bypass-list=<-loopback>",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        env=clean_env(browser_home),
        timeout=90,
    )
    dom = result.stdout.decode("utf-8", "replace")
    assert "/echo/from-chromium" in dom, (dom[-2000:], result.stderr[-3000:])
    assert "ERR_CERT" not in dom and "Your connection is not private" not in dom
    # The origin served Chromium itself, through waylay, which saw the request in clear.
    assert any("Chrome" in (r.header("user-agent") or "") for r in tls_origin.requests)
    assert proxy.wait_for_stdout(f"GET {url} 200")
