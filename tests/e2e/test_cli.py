"""The ``waylay dump`` command as a user meets it (INTERFACE.md; issue 2, point 2).

Exit status 0 for a clean stop or ``--help``; 2 with exactly one line on stderr for a bad flag
or unusable input; ``config.toml`` in the confdir (``--confdir`` or ``WAYLAY_CONFDIR``) takes
any long option; one line per flow on stdout, none with ``--quiet``.
"""

from __future__ import annotations

import re
import resource
import signal
import socket
from pathlib import Path

import pytest

from .contract import assert_waylay_error, proxy_request
from .origin import Origin
from .waylay_process import READY, RunWaylay, StartWaylay, WaylayProcess
from .wire import WireClient


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    return lines[0]


def _get(waylay: WaylayProcess, origin: Origin, path: str, host: str = "127.0.0.1") -> int:
    with WireClient(waylay.port, host) as client:
        client.send(proxy_request(origin, "GET", path))
        return client.read_response().status


# --- help and refusals -------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["dump", "--help"]], ids=["waylay", "dump"])
def test_help_exits_0(run_waylay: RunWaylay, args: list[str]) -> None:
    result = run_waylay(*args)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
    if args[0] == "dump":
        for flag in ("--listen", "--confdir", "--quiet", "--hosts", "--hosts-only", "--insecure"):
            assert flag in result.stdout, flag


@pytest.mark.parametrize("flag", [["--anticache"], ["--frobnicate"], ["--mode", "socks5"]])
def test_unknown_flag_exits_2_with_one_line(
    run_waylay: RunWaylay, confdir: Path, flag: list[str]
) -> None:
    result = run_waylay("dump", "--listen", "127.0.0.1:0", "--confdir", str(confdir), *flag)
    assert result.returncode == 2, result.stderr
    assert flag[0] in _one_line(result.stderr)


def test_unknown_command_exits_2(run_waylay: RunWaylay) -> None:
    result = run_waylay("frobnicate")
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr)


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1"])
def test_bad_listen_exits_2(run_waylay: RunWaylay, confdir: Path, listen: str) -> None:
    result = run_waylay("dump", "--listen", listen, "--confdir", str(confdir))
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr)


def test_port_in_use_exits_2(run_waylay: RunWaylay, confdir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_waylay("dump", "--listen", f"127.0.0.1:{port}", "--confdir", str(confdir))
    assert result.returncode == 2, result.stderr
    assert str(port) in _one_line(result.stderr)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_hosts_file_exits_2(
    run_waylay: RunWaylay, confdir: Path, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "no-such-hosts"
    if kind == "directory":
        path.mkdir()
    result = run_waylay(
        "dump", "--listen", "127.0.0.1:0", "--confdir", str(confdir), "--hosts", str(path)
    )
    assert result.returncode == 2, result.stderr
    assert "no-such-hosts" in _one_line(result.stderr)


def test_broken_config_toml_exits_2(run_waylay: RunWaylay, confdir: Path) -> None:
    (confdir / "config.toml").write_text("quiet = \n")
    result = run_waylay("dump", "--listen", "127.0.0.1:0", "--confdir", str(confdir))
    assert result.returncode == 2, result.stderr
    assert "config.toml" in _one_line(result.stderr)


# --- start, settings, stop ---------------------------------------------------------------


def test_ready_line_names_the_real_port(start_waylay: StartWaylay) -> None:
    waylay = start_waylay()
    ready = [line for line in waylay.stderr_text().splitlines() if READY.match(line)]
    assert ready == [f"waylay listening on 127.0.0.1:{waylay.port}"]
    assert waylay.port != 0
    socket.create_connection(("127.0.0.1", waylay.port), timeout=5).close()


def test_config_toml_quiet(origin: Origin, start_waylay: StartWaylay, confdir: Path) -> None:
    (confdir / "config.toml").write_text("quiet = true\n")
    waylay = start_waylay()
    assert _get(waylay, origin, "/echo") == 200
    assert waylay.stop() == 0
    assert waylay.stdout_lines() == []


def _full_config(confdir: Path, hosts_file: Path) -> None:
    (confdir / "config.toml").write_text(
        f'listen = "127.0.0.1:0"\nhosts = "{hosts_file}"\nhosts-only = true\nquiet = true\n'
    )


def _config_honoured(waylay: WaylayProcess, origin: Origin) -> None:
    assert _get(waylay, origin, "/echo") == 200
    with WireClient(waylay.port) as client:
        client.send(b"GET http://not-listed.invalid/ HTTP/1.1\r\nHost: not-listed.invalid\r\n\r\n")
        assert_waylay_error(client.read_response(), 502, b"not in hosts file")
    assert waylay.stop() == 0
    assert waylay.stdout_lines() == []


def test_config_toml_holds_every_long_option(
    origin: Origin, start_waylay: StartWaylay, confdir: Path, hosts_file: Path
) -> None:
    _full_config(confdir, hosts_file)
    waylay = start_waylay(listen=None, hosts=False, hosts_only=False)
    _config_honoured(waylay, origin)


def test_waylay_confdir_environment(
    origin: Origin, start_waylay: StartWaylay, confdir: Path, hosts_file: Path
) -> None:
    _full_config(confdir, hosts_file)
    waylay = start_waylay(
        listen=None,
        hosts=False,
        hosts_only=False,
        confdir_flag=False,
        env={"WAYLAY_CONFDIR": str(confdir)},
    )
    _config_honoured(waylay, origin)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_with_status_0(start_waylay: StartWaylay, sig: signal.Signals) -> None:
    waylay = start_waylay()
    assert waylay.stop(sig, timeout=5) == 0
    assert "Traceback" not in waylay.stderr_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_with_connections_open(
    origin: Origin, start_waylay: StartWaylay, sig: signal.Signals
) -> None:
    waylay = start_waylay()
    idle = WireClient(waylay.port)
    idle.send(proxy_request(origin, "GET", "/echo"))
    assert idle.read_response().status == 200
    in_flight = WireClient(waylay.port)
    in_flight.send(proxy_request(origin, "GET", "/hang"))
    assert origin.wait_until(lambda: len(origin.requests) == 2)
    try:
        assert waylay.stop(sig, timeout=5) == 0
    finally:
        idle.close()
        in_flight.close()
    assert "Traceback" not in waylay.stderr_text()


# --- the dump output ---------------------------------------------------------------------


def test_dump_prints_one_line_per_flow(origin: Origin, waylay: WaylayProcess) -> None:
    with WireClient(waylay.port) as client:
        client.send(proxy_request(origin, "GET", "/echo?one"))
        assert client.read_response().status == 200
        client.send(proxy_request(origin, "POST", "/echo?two", body=b"abc"))
        assert client.read_response().status == 200
        client.send(proxy_request(origin, "GET", "/status/204"))
        assert client.read_response().status == 204
    assert waylay.stop() == 0
    lines = waylay.stdout_lines()
    assert len(lines) == 3, lines
    expected = [
        ("GET", "/echo?one", "200"),
        ("POST", "/echo?two", "200"),
        ("GET", "/status/204", "204"),
    ]
    for line, (method, path, status) in zip(lines, expected, strict=True):
        words = line.split()
        assert method in words, line
        assert origin.url(path) in line, line
        assert status in words, line
        assert "\x1b[" not in line, f"colour codes on a pipe: {line!r}"


def test_dump_line_appears_while_running(origin: Origin, waylay: WaylayProcess) -> None:
    # A user watching `waylay dump | grep ...` sees each flow as it ends, not at exit.
    assert _get(waylay, origin, "/echo?live") == 200
    lines = waylay.wait_stdout_lines(1, timeout=5)
    assert len(lines) == 1 and origin.url("/echo?live") in lines[0], lines


@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_prints_no_flow_lines(origin: Origin, start_waylay: StartWaylay, flag: str) -> None:
    waylay = start_waylay(flag)
    for _ in range(3):
        assert _get(waylay, origin, "/echo") == 200
    assert waylay.stop() == 0
    assert waylay.stdout_lines() == []


# --- where it listens --------------------------------------------------------------------


def test_wildcard_listen_is_reachable_over_ipv4_and_ipv6(
    origin: Origin, start_waylay: StartWaylay
) -> None:
    waylay = start_waylay(listen="*:0")
    assert _get(waylay, origin, "/echo?v4", "127.0.0.1") == 200
    assert _get(waylay, origin, "/echo?v6", "::1") == 200
    peers = [r.target for r in origin.requests]
    assert peers == ["/echo?v4", "/echo?v6"]


def test_ipv6_literal_listen(origin: Origin, start_waylay: StartWaylay) -> None:
    waylay = start_waylay(listen="[::1]:0")
    assert re.fullmatch(r"\[::1\]", waylay.host), waylay.host
    assert _get(waylay, origin, "/echo", "::1") == 200


def test_open_file_limit_raised_to_the_hard_limit(start_waylay: StartWaylay) -> None:
    # Two descriptors per proxied connection: a soft limit of 256 would cap waylay at ~128.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        waylay = start_waylay()  # inherits the lowered soft limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = Path(f"/proc/{waylay.pid}/limits").read_text()
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)], line
