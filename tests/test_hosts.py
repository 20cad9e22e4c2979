"""The hosts file and the resolver's order: file first, DNS only when allowed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from waylay.errors import ConfigError, UpstreamError
from waylay.hosts import Resolver, load_hosts, parse_hosts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1 api.example.test\n", {"api.example.test": ("127.0.0.1",)}),
        (
            "# comment\n\n198.18.0.1  a.test  b.test # trailing\n",
            {"a.test": ("198.18.0.1",), "b.test": ("198.18.0.1",)},
        ),
        ("2001:2::1 v6.test\n198.18.0.2 v6.test\n", {"v6.test": ("2001:2::1", "198.18.0.2")}),
        ("127.0.0.1 MiXeD.Test.\n", {"mixed.test": ("127.0.0.1",)}),
        ("\t127.0.0.1\tdup.test\n127.0.0.1 dup.test\n", {"dup.test": ("127.0.0.1",)}),
        ("", {}),
    ],
)
def test_parse_hosts(text: str, expected: dict[str, tuple[str, ...]]) -> None:
    assert parse_hosts(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not-an-ip name.test\n", ":1: 'not-an-ip' is not an IP address"),
        ("127.0.0.1 ok.test\n127.0.0.1\n", ":2: 127.0.0.1 has no name"),
    ],
)
def test_parse_hosts_rejects_bad_lines(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_hosts(text)
    assert message in info.value.reason


def test_load_hosts_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read hosts file"):
        load_hosts(tmp_path / "missing")


def _resolve(resolver: Resolver, host: str) -> list[str]:
    return asyncio.run(resolver.resolve(host, 80))


def test_file_answers_before_dns() -> None:
    asked: list[str] = []

    async def lookup(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["198.18.9.9"]

    resolver = Resolver({"api.example.test": ("127.0.0.1",)}, lookup=lookup)
    assert _resolve(resolver, "API.example.test.") == ["127.0.0.1"]
    assert _resolve(resolver, "other.test") == ["198.18.9.9"]
    assert asked == ["other.test"]


def test_hosts_only_refuses_without_lookup() -> None:
    async def lookup(host: str, port: int) -> list[str]:
        raise AssertionError("no DNS query may be made with hosts_only")

    resolver = Resolver({"api.example.test": ("127.0.0.1",)}, hosts_only=True, lookup=lookup)
    with pytest.raises(UpstreamError, match="not in hosts file") as info:
        _resolve(resolver, "elsewhere.test")
    assert info.value.code == "not-in-hosts-file"
    assert info.value.status == 502


@pytest.mark.parametrize("literal", ["127.0.0.1", "::1", "2001:2::5"])
def test_ip_literals_are_never_looked_up(literal: str) -> None:
    assert _resolve(Resolver(hosts_only=True), literal) == [literal]
