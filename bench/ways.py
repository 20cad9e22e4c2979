"""The three ways a client reaches the origin: direct, through waylay, through mitmdump.

A ``Route`` is what a load client needs to know about one of them: where to connect, what
URL to ask for, which CA to trust over HTTPS (the proxy's own, or the bench's for nginx
itself) and — when there is a proxy — its pid, for CPU and memory readings. Both proxies
trust the bench's CA upstream and nothing else added: waylay ``--upstream-ca``, mitmdump
``ssl_verify_upstream_trusted_ca``.

Names never reach real DNS. waylay answers ``origin.test`` from its ``--hosts`` file with
``--hosts-only``; mitmdump has no hosts file of its own (it asks the system resolver), so its
clients name the origin by its address, ``127.0.0.1``. The clients never resolve a name
either: with a proxy, curl and wrk hand the whole URL to it. Over TLS the benchmark's own
clients still send ``origin.test`` as SNI on every way (curl sends none for an address).
"""

from __future__ import annotations

import re
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.origin import ORIGIN_NAME, Origin
from bench.process import Launched, clean_env, free_port, pinned
from bench.procstat import cpu_seconds

DIRECT, WAYLAY, MITMDUMP = "direct", "waylay", "mitmdump"
WAYS = (DIRECT, WAYLAY, MITMDUMP)
PROXIES = (WAYLAY, MITMDUMP)
_WAYLAY_READY = re.compile(r"^waylay listening on (?P<host>\S+):(?P<port>\d+)$")


@dataclass(frozen=True)
class Route:
    way: str
    authority: str  # host:port of the origin as the client names it
    proxy: str | None = None  # the proxy's URL; None when direct
    pid: int | None = None  # the proxy's pid
    ready_seconds: float = 0.0  # from launch to ready
    https_authority: str = ""  # host:port of the HTTPS origin as the client names it
    trust: Path | None = None  # the CA a client trusts over TLS: the proxy's, or the bench's

    def url(self, path: str) -> str:
        return f"http://{self.authority}{path}"

    def https_url(self, path: str) -> str:
        return f"https://{self.https_authority}{path}"

    @property
    def server_name(self) -> str:
        """The SNI and the name checked in the certificate, on every way."""
        return ORIGIN_NAME

    @property
    def trusted_ca(self) -> Path:
        if self.trust is None:
            raise ValueError(f"{self.way}: no CA to trust over TLS")
        return self.trust

    def request_target(self, path: str) -> str:
        """Absolute form for a proxy, origin form for the origin itself."""
        return self.url(path) if self.proxy else path

    @property
    def connect_url(self) -> str:
        """Where the client opens its connections."""
        return self.proxy or self.url("/")

    @property
    def connect_address(self) -> tuple[str, int]:
        host, _, port = self.connect_url.removeprefix("http://").rstrip("/").rpartition(":")
        return host, int(port)

    @property
    def tls_connect_address(self) -> tuple[str, int]:
        """Where a TLS client opens its connections: the proxy (then CONNECT), or nginx."""
        if self.proxy:
            return self.connect_address
        host, _, port = self.https_authority.rpartition(":")
        return host, int(port)

    @property
    def proxy_pid(self) -> int:
        if self.pid is None:
            raise ValueError(f"{self.way} has no proxy process")
        return self.pid


@dataclass(frozen=True)
class Programs:
    """How to run each proxy."""

    waylay_python: str  # the interpreter waylay runs on
    waylay_src: Path  # put on PYTHONPATH: the tree whose waylay is measured
    mitmdump: Path


class Launcher:
    """Starts a way, waits until it is ready, and stops it afterwards."""

    def __init__(self, programs: Programs, origin: Origin, workdir: Path, core: int) -> None:
        self.programs = programs
        self.origin = origin
        self.workdir = workdir
        self.core = core
        self.home = workdir / "home"
        self.home.mkdir(exist_ok=True)
        self.hosts = workdir / "hosts"
        self.hosts.write_text(f"127.0.0.1 {ORIGIN_NAME}\n")
        self._stopped_cpu = 0.0  # CPU seconds of the proxies stopped so far
        self._running: Launched | None = None

    def _waylay(self, options: Sequence[str]) -> tuple[Launched, Route]:
        confdir = self.workdir / "waylay-confdir"
        confdir.mkdir(exist_ok=True)
        command = [
            self.programs.waylay_python,
            "-m",
            "waylay",
            "dump",
            "--listen",
            "127.0.0.1:0",
            "--quiet",
            "--hosts",
            str(self.hosts),
            "--hosts-only",
            "--confdir",
            str(confdir),
            "--upstream-ca",
            str(self.origin.ca),
            *options,
        ]
        env = clean_env(self.home, {"PYTHONPATH": str(self.programs.waylay_src)})
        process = Launched(WAYLAY, pinned(self.core, command), env)
        ready = process.wait_line(_WAYLAY_READY)
        route = Route(
            way=WAYLAY,
            authority=f"{ORIGIN_NAME}:{self.origin.http_port}",
            proxy=f"http://{ready['host']}:{ready['port']}",
            pid=process.pid,
            ready_seconds=_since(process),
            https_authority=f"{ORIGIN_NAME}:{self.origin.https_port}",
            trust=confdir / "waylay-ca-cert.pem",
        )
        return process, route

    def _mitmdump(self, options: Sequence[str]) -> tuple[Launched, Route]:
        # With -q mitmdump prints no ready line: it is ready when its port accepts.
        port = free_port()
        confdir = self.workdir / "mitmproxy-confdir"
        command = [
            str(self.programs.mitmdump),
            "-q",
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            str(port),
            "--set",
            f"confdir={confdir}",
            "--set",
            f"ssl_verify_upstream_trusted_ca={self.origin.ca}",
            *options,
        ]
        process = Launched(MITMDUMP, pinned(self.core, command), clean_env(self.home))
        process.wait_port(port)
        route = Route(
            way=MITMDUMP,
            authority=f"127.0.0.1:{self.origin.http_port}",
            proxy=f"http://127.0.0.1:{port}",
            pid=process.pid,
            ready_seconds=_since(process),
            https_authority=f"127.0.0.1:{self.origin.https_port}",
            trust=confdir / "mitmproxy-ca-cert.pem",
        )
        return process, route

    @contextmanager
    def start(
        self,
        way: str,
        mitmdump_options: Sequence[str] = (),
        waylay_options: Sequence[str] = (),
    ) -> Iterator[Route]:
        """``way`` started and ready; each proxy's options are added to its command line."""
        if way == DIRECT:
            yield Route(
                way=DIRECT,
                authority=f"127.0.0.1:{self.origin.http_port}",
                https_authority=f"127.0.0.1:{self.origin.https_port}",
                trust=self.origin.ca,
            )
            return
        process, route = (
            self._waylay(waylay_options) if way == WAYLAY else self._mitmdump(mitmdump_options)
        )
        self._running = process
        try:
            yield route
        finally:
            # Its whole CPU time, shutdown included, as the kernel reports it once reaped.
            before = _reaped_cpu()
            process.stop()
            self._stopped_cpu += _reaped_cpu() - before
            self._running = None
            if process.proc.returncode not in (0, -15):
                print(
                    f"bench: {way} exited with status {process.proc.returncode}:\n"
                    f"{process.output()}",
                    file=sys.stderr,
                )

    def proxy_cpu(self) -> float:
        """CPU seconds of every proxy launched so far, the running one included."""
        return self._stopped_cpu + self.running_proxy_cpu()

    def stopped_proxy_cpu(self) -> float:
        """CPU seconds of the proxies launched and stopped so far (reaped children)."""
        return self._stopped_cpu

    def running_proxy_cpu(self) -> float:
        return _cpu_or_zero(self._running.pid) if self._running else 0.0

    def warm_up(self) -> None:
        """Launch each proxy once unmeasured: bytecode caches, mitmproxy's CA in its confdir."""
        for way in PROXIES:
            with self.start(way):
                pass


def _reaped_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (OSError, ValueError):
        return 0.0


def _since(process: Launched) -> float:
    return time.monotonic() - process.started
