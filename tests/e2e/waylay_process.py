"""``python -m waylay`` run as a user runs it: a subprocess, watched from outside.

The process gets a clean environment (no proxy variables, a private ``HOME``) so nothing on
the machine leaks in, and its stdout and stderr are read line by line in threads so a chatty
proxy can never block on a full pipe. Its peak memory comes from ``/proc/PID/status`` — the
number the issue's streaming limits are about.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

SRC = Path(__file__).resolve().parents[2] / "src"
READY = re.compile(r"^waylay listening on (?P<host>\S+):(?P<port>\d+)$")
# `waylay web`'s second line: where the UI is, and its token.
WEB_READY = re.compile(r"^waylay web UI at (?P<url>http://\S+/)\?token=(?P<token>[\w-]+)$")
READY_TIMEOUT = 10.0
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for waylay and for the clients: no proxies, no WAYLAY_* from outside."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in _PROXY_VARIABLES and not key.startswith("WAYLAY_")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def waylay_command(args: Iterable[str]) -> list[str]:
    return [sys.executable, "-m", "waylay", *args]


class WaylayProcess:
    """A running ``waylay`` and what it has said so far."""

    def __init__(self, args: list[str], env: Mapping[str, str], prefix: Sequence[str] = ()) -> None:
        """Start waylay; ``prefix`` runs it through another command (``ip netns exec NAME``)."""
        self.args = args
        self.proc = subprocess.Popen(
            [*prefix, *waylay_command(args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
        )
        self._changed = threading.Condition()
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.host = ""
        self.port = 0
        # `waylay web`: the UI's base URL ("http://127.0.0.1:PORT/") and token, once ready.
        self.web_url = ""
        self.web_token = ""

    def _read(self, stream: IO[bytes] | None, lines: list[str]) -> None:
        assert stream is not None
        for raw in stream:
            with self._changed:
                lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        """The proxy URL a client is given (``127.0.0.1`` for a wildcard listener)."""
        host = self.host
        if host in ("*", "0.0.0.0", "::", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def wait_ready(self, timeout: float = READY_TIMEOUT, *, web: bool = False) -> None:
        """Wait for the ready line (and with ``web``, the web UI's line after it)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._stderr:
                    match = READY.match(line)
                    if match:
                        self.host, self.port = match.group("host"), int(match.group("port"))
                    match = WEB_READY.match(line)
                    if match:
                        self.web_url, self.web_token = match.group("url"), match.group("token")
                if self.port and (self.web_url or not web):
                    return
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise AssertionError(
                        f"waylay exited with {self.proc.returncode} before it was ready; "
                        f"stderr:\n{self.stderr_text()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no ready line from waylay within {timeout} s; "
                        f"stderr:\n{self.stderr_text()}"
                    )
                self._changed.wait(min(remaining, 0.1))

    def stdout_lines(self) -> list[str]:
        with self._changed:
            return list(self._stdout)

    def stderr_text(self) -> str:
        with self._changed:
            return "\n".join(self._stderr)

    def wait_stdout_lines(self, count: int, timeout: float = 5.0) -> list[str]:
        """Wait until at least ``count`` lines are on stdout; return them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._stdout) < count and time.monotonic() < deadline:
                self._changed.wait(0.1)
            return list(self._stdout)

    def _wait_for(self, lines: list[str], text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in line for line in lines):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.1))
            return True

    def wait_for_stdout(self, text: str, timeout: float = 5.0) -> bool:
        """Wait until a line of stdout contains ``text``; False if none did in time."""
        return self._wait_for(self._stdout, text, timeout)

    def wait_for_stderr(self, text: str, timeout: float = 5.0) -> bool:
        """Wait until a line of stderr contains ``text``; False if none did in time."""
        return self._wait_for(self._stderr, text, timeout)

    def _status_field(self, name: str) -> str:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == name:
                return value.strip()
        raise AssertionError(f"{name} not in /proc/{self.pid}/status")

    def vmhwm(self) -> int:
        """Peak resident set size so far, in bytes."""
        value, unit = self._status_field("VmHWM").split()
        assert unit == "kB", unit
        return int(value) * 1024

    def vmrss(self) -> int:
        """Resident set size now, in bytes."""
        value, unit = self._status_field("VmRSS").split()
        assert unit == "kB", unit
        return int(value) * 1024

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the process and wait for it; kill it and fail if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"waylay did not stop within {timeout} s of signal {sig}; "
                    f"stderr:\n{self.stderr_text()}"
                ) from None
        for reader in self._readers:
            reader.join(timeout=5)
        return self.proc.returncode


# What the conftest fixtures ``start_waylay`` and ``run_waylay`` hand to a test.
StartWaylay = Callable[..., WaylayProcess]
RunWaylay = Callable[..., subprocess.CompletedProcess[str]]
