"""Name resolution: the `--hosts` file first, DNS only when it is allowed.

The hosts file uses the familiar syntax (`ADDRESS NAME [ALIAS...]`, `#` comments). With
`--hosts-only`, a name that is not in the file is refused before any DNS query is made, so a
test or a sandboxed browser can never reach the machine's resolver through waylay. IP
literals are never looked up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from waylay.errors import ConfigError, UpstreamError

# A DNS lookup: (host, port) -> addresses in preference order.
Lookup = Callable[[str, int], Awaitable[list[str]]]


def parse_hosts(text: str, *, source: str = "hosts file") -> dict[str, tuple[str, ...]]:
    """Map each lowercased name to its addresses, in file order."""
    table: dict[str, list[str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        address, *names = line.split()
        try:
            ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise ConfigError(f"{source}:{number}: {address!r} is not an IP address") from None
        if not names:
            raise ConfigError(f"{source}:{number}: {address} has no name after it")
        for name in names:
            addresses = table.setdefault(name.lower().rstrip("."), [])
            if address not in addresses:
                addresses.append(address)
    return {name: tuple(addresses) for name, addresses in table.items()}


def load_hosts(path: Path) -> dict[str, tuple[str, ...]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read hosts file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"hosts file {path} is not UTF-8 text") from None
    return parse_hosts(text, source=str(path))


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(slots=True)
class Resolver:
    """Answers `host -> addresses` from the hosts table, then (unless hosts_only) from DNS."""

    table: dict[str, tuple[str, ...]] = field(default_factory=dict)
    hosts_only: bool = False
    lookup: Lookup | None = None

    async def resolve(self, host: str, port: int) -> list[str]:
        if is_ip_literal(host):
            return [host]
        name = host.lower().rstrip(".")
        found = self.table.get(name)
        if found:
            return list(found)
        if self.hosts_only:
            raise UpstreamError(
                f"{host} is not in hosts file (--hosts-only forbids DNS lookups)",
                code="not-in-hosts-file",
            )
        if self.lookup is None:
            raise UpstreamError(f"cannot resolve {host}: no resolver", code="dns-error")
        return await self.lookup(host, port)
