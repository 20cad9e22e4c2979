"""Secrets at rest (issue 9, point 7): what is too open, the warning, and --strict-permissions.

The unit tests stat files in a temporary directory; the last ones run `waylay` itself, as a
user would, and read its stderr and exit status.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from waylay.errors import ConfigError
from waylay.permissions import check_secrets, exposures

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    path = tmp_path / "conf"
    path.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    key = path / "waylay-ca.pem"
    key.write_bytes(b"key")
    os.chmod(key, 0o600)
    return path


def _found(confdir: Path, *databases: Path) -> list[tuple[str, int]]:
    return [(e.what, e.mode) for e in exposures(confdir, confdir / "waylay-ca.pem", databases)]


def test_private_files_are_fine(confdir: Path, tmp_path: Path) -> None:
    database = tmp_path / "flows.db"
    database.write_bytes(b"")
    os.chmod(database, 0o600)
    assert _found(confdir, database) == []


def test_absent_files_are_fine(tmp_path: Path) -> None:
    # Not yet created: waylay creates them private.
    missing = tmp_path / "nothing"
    assert exposures(missing, missing / "waylay-ca.pem", [missing / "flows.db"]) == []


@pytest.mark.parametrize(
    ("mode", "open_to"),
    [(0o640, "its group"), (0o604, "others"), (0o644, "its group and others")],
)
def test_a_ca_key_open_to_others(confdir: Path, mode: int, open_to: str) -> None:
    key = confdir / "waylay-ca.pem"
    os.chmod(key, mode)
    [exposure] = exposures(confdir, key)
    assert (exposure.what, exposure.mode, exposure.wanted) == ("the CA key", mode, 0o600)
    assert exposure.describe() == (
        f"the CA key {key} is mode {mode:04o}, open to {open_to}: chmod 600 {key}"
    )


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o711, 0o701])
def test_a_confdir_open_to_others(confdir: Path, mode: int) -> None:
    os.chmod(confdir, mode)
    assert _found(confdir) == [("the confdir", mode)]


def test_a_flow_database_and_its_wal_open_to_others(confdir: Path, tmp_path: Path) -> None:
    database = tmp_path / "flows.db"
    for path, mode in ((database, 0o644), (tmp_path / "flows.db-wal", 0o644)):
        path.write_bytes(b"")
        os.chmod(path, mode)
    assert _found(confdir, database) == [("the flow database", 0o644)] * 2


def test_check_warns_once_per_secret(
    confdir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.chmod(confdir, 0o755)
    os.chmod(confdir / "waylay-ca.pem", 0o644)
    with caplog.at_level(logging.WARNING, logger="waylay.permissions"):
        check_secrets(confdir, confdir / "waylay-ca.pem", strict=False)
    assert [record.getMessage().split(" ", 2)[1] for record in caplog.records] == [
        "confdir",
        "CA",
    ]


def test_strict_refuses_with_one_line(confdir: Path) -> None:
    os.chmod(confdir / "waylay-ca.pem", 0o644)
    with pytest.raises(ConfigError) as raised:
        check_secrets(confdir, confdir / "waylay-ca.pem", strict=True)
    assert "\n" not in raised.value.reason
    assert "chmod 600" in raised.value.reason and "--strict-permissions" in raised.value.reason


def test_modes_are_never_changed(confdir: Path) -> None:
    os.chmod(confdir / "waylay-ca.pem", 0o644)
    check_secrets(confdir, confdir / "waylay-ca.pem", strict=False)
    assert (confdir / "waylay-ca.pem").stat().st_mode & 0o777 == 0o644


# --- the command, as a user runs it -------------------------------------------------------


def _waylay(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYLAY_")}
    env["PYTHONPATH"] = str(SRC)
    env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "waylay", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=20,
    )


def test_strict_permissions_stops_waylay_with_status_2(tmp_path: Path) -> None:
    confdir = tmp_path / "conf"
    assert _waylay(tmp_path, "ca", "path", "--confdir", str(confdir)).returncode == 0
    key = confdir / "waylay-ca.pem"
    os.chmod(key, 0o644)
    database = tmp_path / "flows.db"
    database.write_bytes(b"")
    os.chmod(database, 0o604)
    result = _waylay(
        tmp_path,
        "dump",
        "--listen",
        "127.0.0.1:0",
        "--confdir",
        str(confdir),
        "--save",
        str(database),
        "--strict-permissions",
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("waylay: error: the CA key ")
    assert f"chmod 600 {key}" in line and f"chmod 600 {database}" in line
    assert key.stat().st_mode & 0o777 == 0o644  # reported, not changed


def test_without_strict_permissions_a_warning_names_the_fix(tmp_path: Path) -> None:
    confdir = tmp_path / "conf"
    assert _waylay(tmp_path, "ca", "path", "--confdir", str(confdir)).returncode == 0
    os.chmod(confdir, 0o755)
    result = _waylay(tmp_path, "ca", "path", "--confdir", str(confdir))
    assert result.returncode == 0
    assert result.stderr == (
        f"waylay: the confdir {confdir} is mode 0755, open to its group and others: "
        f"chmod 700 {confdir}\n"
    )
