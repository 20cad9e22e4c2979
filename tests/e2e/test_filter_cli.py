"""--filter on `dump` (shown flows), `flows` (listed) and `replay` (replayed), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .clients import curl as run_curl
from .origin import Origin
from .test_save import _wait_for_flows
from .waylay_process import RunWaylay, StartWaylay


def _traffic(proxy_url: str, origin: Origin, home: Path) -> None:
    for path in ("/echo/alpha", "/status/404", "/echo/beta"):
        run_curl(proxy_url, origin.url(path), home=home)
    run_curl(proxy_url, "-d", "needle=1", origin.url("/echo/posted"), home=home)


def test_dump_shows_only_the_flows_that_match(
    start_waylay: StartWaylay, origin: Origin, home: Path
) -> None:
    proxy = start_waylay("--filter", "~c 404 | ~u beta")
    _traffic(proxy.url, origin, home)
    assert proxy.wait_for_stdout("/echo/beta")
    lines = proxy.stdout_lines()
    assert [line.split()[3] for line in lines] == [
        origin.url("/status/404"),
        origin.url("/echo/beta"),
    ]


@pytest.mark.parametrize(
    ("expression", "shown"),
    [
        ("~bq needle", ["/echo/posted"]),  # the request body
        ('~bs "echo/beta"', ["/echo/beta"]),  # the response body (the echo names its target)
        ("~b needle & ~m POST", ["/echo/posted"]),
    ],
)
def test_dump_filters_on_bodies_live(
    start_waylay: StartWaylay, origin: Origin, home: Path, expression: str, shown: list[str]
) -> None:
    proxy = start_waylay("--filter", expression)
    _traffic(proxy.url, origin, home)
    # A marker flow that matches every body filter above comes last: once it is shown, every
    # earlier flow has been decided.
    run_curl(proxy.url, "-d", "needle=2", origin.url("/echo/beta/posted"), home=home)
    assert proxy.wait_for_stdout("/echo/beta/posted"), proxy.stderr_text()
    urls = [line.split()[3] for line in proxy.stdout_lines()]
    assert urls == [origin.url(path) for path in [*shown, "/echo/beta/posted"]]


def test_flows_and_replay_select_with_the_filter(
    start_waylay: StartWaylay,
    origin: Origin,
    run_waylay: RunWaylay,
    hosts_file: Path,
    confdir: Path,
    home: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "flows.db"
    proxy = start_waylay("--save", str(path))
    _traffic(proxy.url, origin, home)
    _wait_for_flows(path, 4)
    assert proxy.stop() == 0
    # A body operator works on stored flows: the bodies are in the database.
    listed = run_waylay("flows", str(path), "--json", "--filter", "~bq needle")
    assert [json.loads(line)["url"] for line in listed.stdout.splitlines()] == [
        origin.url("/echo/posted")
    ]
    lines = run_waylay("flows", str(path), "--filter", "!~c 200")
    assert lines.stdout.count("\n") == 1 and "/status/404 404" in lines.stdout
    replayed = run_waylay("replay", str(path), "--filter", "~m POST", "--confdir", str(confdir),
                          "--hosts", str(hosts_file), "--hosts-only")  # fmt: skip
    assert "replayed 1 flows" in replayed.stderr, replayed.stderr
    assert [r.target for r in origin.requests].count("/echo/posted") == 2


@pytest.mark.parametrize("command", ["dump", "flows"])
def test_a_bad_filter_is_one_line_with_its_column_and_status_2(
    command: str, run_waylay: RunWaylay, confdir: Path, tmp_path: Path
) -> None:
    args = ["--listen", "127.0.0.1:0", "--confdir", str(confdir)] if command == "dump" else [
        str(tmp_path / "none.db")
    ]  # fmt: skip
    result = run_waylay(command, *args, "--filter", "~c 200 & ~zz x")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "unknown operator '~zz' at column 10" in result.stderr
