"""``waylay ca path`` and ``waylay ca export`` as a user runs them (INTERFACE.md; issue 3).

The CA is created on first use in the confdir (``--confdir`` or ``WAYLAY_CONFDIR``), with the
files and modes of the interface; the exports are what ``openssl`` reads; a damaged CA file
is exit status 2 and one line naming it, and is left as it was.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from .test_cli import _one_line
from .waylay_process import RunWaylay, clean_env, waylay_command

CA_FILES = {"waylay-ca.pem", "waylay-ca-cert.pem", "waylay-ca-cert.cer", "waylay-ca-cert.p12"}


def run_binary(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m waylay ARGS`` with stdout as bytes: DER and PKCS#12 are not text."""
    return subprocess.run(
        waylay_command(args),
        capture_output=True,
        env=clean_env(home),
        stdin=subprocess.DEVNULL,
        timeout=10,
        check=False,
    )


def openssl(*args: str, stdin: bytes = b"") -> str:
    result = subprocess.run(
        ["openssl", *args], input=stdin, capture_output=True, timeout=10, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


@pytest.fixture
def new_confdir(tmp_path: Path) -> Path:
    """A confdir that does not exist yet: waylay creates it."""
    return tmp_path / "fresh" / "confdir"


def test_ca_path_creates_the_ca_and_prints_its_certificate_path(
    run_waylay: RunWaylay, new_confdir: Path
) -> None:
    result = run_waylay("ca", "path", "--confdir", str(new_confdir))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{new_confdir / 'waylay-ca-cert.pem'}\n"
    assert result.stderr == ""
    assert stat.S_IMODE(new_confdir.stat().st_mode) == 0o700
    assert {path.name for path in new_confdir.iterdir()} == CA_FILES
    assert stat.S_IMODE((new_confdir / "waylay-ca.pem").stat().st_mode) == 0o600
    subject = openssl("x509", "-noout", "-subject", "-in", result.stdout.strip())
    assert "waylay CA" in subject


def test_a_second_run_reuses_the_ca(run_waylay: RunWaylay, new_confdir: Path) -> None:
    assert run_waylay("ca", "path", "--confdir", str(new_confdir)).returncode == 0
    before = {path.name: path.read_bytes() for path in new_confdir.iterdir()}
    assert run_waylay("ca", "path", "--confdir", str(new_confdir)).returncode == 0
    assert {path.name: path.read_bytes() for path in new_confdir.iterdir()} == before


def test_waylay_confdir_environment(run_waylay: RunWaylay, new_confdir: Path) -> None:
    result = run_waylay("ca", "path", env={"WAYLAY_CONFDIR": str(new_confdir)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(new_confdir / "waylay-ca-cert.pem")


def test_export_der_to_a_file(run_waylay: RunWaylay, new_confdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ca.cer"
    result = run_waylay(
        "ca", "export", "--format", "der", "-o", str(out), "--confdir", str(new_confdir)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert out.read_bytes() == (new_confdir / "waylay-ca-cert.cer").read_bytes()
    assert "waylay CA" in openssl("x509", "-inform", "der", "-in", str(out), "-noout", "-subject")


def test_export_p12_to_stdout(home: Path, new_confdir: Path) -> None:
    result = run_binary(home, "ca", "export", "--format", "p12", "--confdir", str(new_confdir))
    assert result.returncode == 0, result.stderr
    certs = openssl("pkcs12", "-nokeys", "-passin", "pass:", stdin=result.stdout)
    assert "BEGIN CERTIFICATE" in certs and "PRIVATE KEY" not in certs
    assert "waylay CA" in openssl("x509", "-noout", "-subject", stdin=certs.encode())


@pytest.mark.parametrize("args", [[], ["--format", "pem"]], ids=["default", "pem"])
def test_export_pem_to_stdout(home: Path, new_confdir: Path, args: list[str]) -> None:
    result = run_binary(home, "ca", "export", *args, "--confdir", str(new_confdir))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (new_confdir / "waylay-ca-cert.pem").read_bytes()
    assert b"PRIVATE KEY" not in result.stdout


def test_a_corrupted_ca_file_exits_2_naming_it(run_waylay: RunWaylay, confdir: Path) -> None:
    ca_file = confdir / "waylay-ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\nbroken\n")
    for args in (["ca", "path"], ["ca", "export", "--format", "der"]):
        result = run_waylay(*args, "--confdir", str(confdir))
        assert result.returncode == 2, result.stderr
        assert str(ca_file) in _one_line(result.stderr)
        assert result.stdout == ""
    assert ca_file.read_text() == "-----BEGIN CERTIFICATE-----\nbroken\n"
    assert {path.name for path in confdir.iterdir()} == {"waylay-ca.pem"}


def test_an_unwritable_output_exits_2_naming_it(
    run_waylay: RunWaylay, confdir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "no-such-directory" / "ca.pem"
    result = run_waylay("ca", "export", "-o", str(out), "--confdir", str(confdir))
    assert result.returncode == 2, result.stderr
    assert str(out) in _one_line(result.stderr)


@pytest.mark.parametrize(
    "args",
    [["ca"], ["ca", "frobnicate"], ["ca", "export", "--format", "crt"], ["ca", "path", "--x"]],
    ids=["no-action", "unknown-action", "unknown-format", "unknown-flag"],
)
def test_usage_errors_exit_2_with_one_line(
    run_waylay: RunWaylay, home: Path, args: list[str]
) -> None:
    result = run_waylay(*args)
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr)
    assert not (home / ".waylay").exists()  # refused before any CA was made


@pytest.mark.parametrize(
    ("args", "flags"),
    [
        (["ca", "--help"], ["path", "export"]),
        (["ca", "path", "--help"], ["--confdir"]),
        (["ca", "export", "--help"], ["--format", "-o", "--confdir", "pem", "der", "p12"]),
    ],
    ids=["ca", "path", "export"],
)
def test_help_exits_0(run_waylay: RunWaylay, args: list[str], flags: list[str]) -> None:
    result = run_waylay(*args)
    assert result.returncode == 0, result.stderr
    for flag in flags:
        assert flag in result.stdout, flag
