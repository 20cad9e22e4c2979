"""Fixtures of the end-to-end suite: origins on loopback and a real ``waylay dump`` (or
``waylay web``) process.

Every name a test uses (``origin.example.test``, ``api.example.test``) is in the hosts file
handed to waylay, and waylay runs with ``--hosts-only`` unless a test says otherwise, so no
test ever makes a DNS query or sends a byte beyond 127.0.0.1.

``waylay`` is the usual proxy; a test that needs other flags or environment either
parametrizes it indirectly (``@pytest.mark.parametrize("waylay", [["--quiet"]], indirect=True)``
or ``[{"args": [...], "env": {...}}]``) or calls ``start_waylay`` itself. Every process started
here is stopped with SIGTERM at teardown, which must end it with status 0 and no traceback.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from .clients import Curl
from .clients import curl as run_curl
from .origin import Origin, RefusedPort, ResetOnAccept, TunnelPeer
from .pki import Issued, TestCA
from .tls_origin import TlsOrigin
from .waylay_process import RunWaylay, StartWaylay, WaylayProcess, clean_env, waylay_command

HOSTS_FILE_TEXT = """\
# names of the end-to-end tests; waylay must never ask DNS about them
127.0.0.1\torigin.example.test   api.example.test
127.0.0.1 www.example.test other.example.test pinned.example.test
127.0.0.1 tunnel.example.test # comment after the names
#127.0.0.1 commented.example.test
::1 v6.example.test
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def hosts_file(tmp_path: Path) -> Path:
    path = tmp_path / "hosts"
    path.write_text(HOSTS_FILE_TEXT)
    return path


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    path = tmp_path / "confdir"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin()
    server.start()
    yield server
    server.stop()


# The HTTPS origin's names: the issue's certificate (CN www.example.test and these SANs).
ORIGIN_SANS = ("www.example.test", "api.example.test", "*.cdn.example.test")


@pytest.fixture
def pki(tmp_path: Path) -> TestCA:
    directory = tmp_path / "pki"
    directory.mkdir()
    return TestCA(directory)


@pytest.fixture
def origin_cert(pki: TestCA) -> Issued:
    return pki.issue("origin", cn="www.example.test", dns=ORIGIN_SANS, ips=["127.0.0.1"])


@pytest.fixture
def tls_origin(origin_cert: Issued) -> Iterator[TlsOrigin]:
    server = TlsOrigin(origin_cert)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def proxy(start_waylay: StartWaylay, pki: TestCA) -> WaylayProcess:
    return start_waylay("--upstream-ca", str(pki.cert_path))


@pytest.fixture
def tunnel_peer() -> Iterator[TunnelPeer]:
    server = TunnelPeer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def reset_on_accept() -> Iterator[ResetOnAccept]:
    server = ResetOnAccept()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def refused_port() -> Iterator[int]:
    port = RefusedPort()
    yield port.port
    port.close()


@pytest.fixture
def start_waylay(hosts_file: Path, confdir: Path, home: Path) -> Iterator[StartWaylay]:
    """Start ``waylay dump`` with the test hosts file; keyword options change the defaults."""
    started: list[WaylayProcess] = []

    def start(
        *extra: str,
        listen: str | None = "127.0.0.1:0",
        hosts: bool = True,
        hosts_only: bool = True,
        confdir_flag: bool = True,
        env: Mapping[str, str] | None = None,
        command: str = "dump",
    ) -> WaylayProcess:
        args = [command]
        if listen is not None:
            args += ["--listen", listen]
        if hosts:
            args += ["--hosts", str(hosts_file)]
        if hosts_only:
            args.append("--hosts-only")
        if confdir_flag:
            args += ["--confdir", str(confdir)]
        process = WaylayProcess([*args, *extra], clean_env(home, env))
        started.append(process)
        process.wait_ready(web=command == "web")
        return process

    yield start

    problems = []
    for process in started:
        status = process.stop()
        if status != 0:
            problems.append(f"waylay {process.args} exited with {status}, not 0")
        if "Traceback" in process.stderr_text():
            problems.append(f"waylay {process.args} printed a traceback:\n{process.stderr_text()}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def start_web(start_waylay: StartWaylay) -> StartWaylay:
    """Start ``waylay web`` (the UI on a free port) as ``start_waylay`` starts dump; the
    process's ``web_url`` and ``web_token`` say where its UI is."""
    return partial(start_waylay, "--web", "127.0.0.1:0", command="web")


@pytest.fixture
def waylay(request: pytest.FixtureRequest, start_waylay: StartWaylay) -> WaylayProcess:
    """The proxy, running; an indirect parameter adds arguments or environment."""
    param: Any = getattr(request, "param", ())
    if isinstance(param, dict):
        return start_waylay(*param.get("args", ()), env=param.get("env"))
    return start_waylay(*param)


@pytest.fixture
def curl(waylay: WaylayProcess, home: Path) -> Curl:
    """``curl -x <waylay> ARGS``."""
    return partial(run_curl, waylay.url, home=home)


@pytest.fixture
def run_waylay(home: Path) -> RunWaylay:
    """Run ``python -m waylay ARGS`` to completion (10 s at most) for the CLI's exit paths."""

    def run(
        *args: str, env: Mapping[str, str] | None = None, timeout: float = 10.0
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                waylay_command(args),
                capture_output=True,
                text=True,
                env=clean_env(home, env),
                stdin=subprocess.DEVNULL,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"waylay {list(args)} still running after {timeout} s: {exc.stderr!r}"
            ) from None

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The end-to-end tests spawn processes; give each a bound unless it set its own.
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(30))
