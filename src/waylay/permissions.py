"""Secrets at rest: the confdir, the CA key and the flow databases are their owner's alone.

The CA key lets whoever reads it forge a certificate for any name every client of waylay
trusts; a flow database holds cookies, tokens and bodies. waylay creates them private (the
confdir 0700, the files 0600), but a copy, an unpacked backup or a `chmod -R` can open them
up. At start the CLI looks at their modes: one open to the group or to others is a warning
that says how to fix it — or, with `--strict-permissions`, a refusal to start.

This module only stats files; it never changes a mode (the user may have reasons, such as a
group that shares a test CA) and never opens one.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from waylay.errors import ConfigError

log = logging.getLogger("waylay.permissions")

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# Permission bits of the group and of others: any one of them set is too open for a secret.
_SHARED_BITS = 0o077
# SQLite's write-ahead log and shared-memory index hold the same data as the database.
_DATABASE_COMPANIONS = ("-wal", "-shm")


@dataclass(frozen=True, slots=True)
class Exposure:
    """A secret that the group or others may read (or, for the confdir, enter or list)."""

    what: str  # "the confdir", "the CA key", "the flow database"
    path: Path
    mode: int
    wanted: int

    def describe(self) -> str:
        return (
            f"{self.what} {self.path} is mode {self.mode:04o}, open to "
            f"{_who(self.mode)}: chmod {self.wanted:o} {self.path}"
        )


def _who(mode: int) -> str:
    group, others = bool(mode & 0o070), bool(mode & 0o007)
    return "its group and others" if group and others else "its group" if group else "others"


def exposures(confdir: Path, ca_key: Path, databases: Iterable[Path] = ()) -> list[Exposure]:
    """What of ``confdir``, ``ca_key`` and ``databases`` is open to others; absent ones are not.

    A database's WAL and shared-memory files count as the database.
    """
    found: list[Exposure] = []
    checks = [("the confdir", confdir, PRIVATE_DIR), ("the CA key", ca_key, PRIVATE_FILE)]
    for database in databases:
        checks.append(("the flow database", database, PRIVATE_FILE))
        checks += [
            ("the flow database", database.with_name(database.name + suffix), PRIVATE_FILE)
            for suffix in _DATABASE_COMPANIONS
        ]
    for what, path, wanted in checks:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:  # absent (created private later) or unreadable (reported when used)
            continue
        if mode & _SHARED_BITS:
            found.append(Exposure(what, path, mode, wanted))
    return found


def check_secrets(
    confdir: Path,
    ca_key: Path,
    databases: Iterable[Path] = (),
    *,
    strict: bool,
) -> None:
    """Warn about each secret open to others; with ``strict``, ConfigError naming them."""
    found = exposures(confdir, ca_key, databases)
    if not found:
        return
    if strict:
        raise ConfigError(
            "; ".join(exposure.describe() for exposure in found)
            + " (--strict-permissions refuses to start)"
        )
    for exposure in found:
        log.warning("%s", exposure.describe())
