"""The command line's flags become options; config.toml settings can be undone by flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from waylay.cli import _flags, build_parser
from waylay.options import Options, build_options


def options_for(*argv: str) -> Options:
    return build_options(_flags(build_parser().parse_args(["dump", *argv])))


def test_flags_win_over_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('quiet = true\nhosts-only = true\nhosts = "hosts.test"\n')
    from_file = options_for("--confdir", str(tmp_path))
    assert from_file.quiet and from_file.hosts_only
    # A relative path in the file is next to the file.
    assert from_file.hosts == tmp_path / "hosts.test"
    undone = options_for("--confdir", str(tmp_path), "--no-quiet", "--no-hosts-only")
    assert not undone.quiet and not undone.hosts_only


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_flag(tmp_path: Path, flag: str) -> None:
    assert options_for("--confdir", str(tmp_path), flag).quiet


def test_hosts_flag_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert options_for("--confdir", str(tmp_path / "conf"), "--hosts", "h").hosts == Path("h")
