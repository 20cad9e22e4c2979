"""A process the benchmark launched: its output drained in threads, readiness, a clean stop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from bench.errors import BenchError

_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of everything launched: no proxy variables, a private ``HOME``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in _PROXY_VARIABLES and not key.startswith(("WAYLAY_", "PYTHON"))
    }
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def pinned(core: int, command: Sequence[str]) -> list[str]:
    """``command`` run on one core only (``taskset`` execs it: the pid stays the command's)."""
    return ["taskset", "-c", str(core), *command]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Launched:
    """A running process and the lines it has written so far (stdout and stderr together)."""

    def __init__(self, name: str, command: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = name
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
        )
        self._changed = threading.Condition()
        self._lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.proc.stdout, self.proc.stderr)
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, stream: IO[bytes] | None) -> None:
        assert stream is not None
        for raw in stream:
            with self._changed:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def output(self) -> str:
        with self._changed:
            return "\n".join(self._lines[-40:])

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(
                f"{self.name} exited with status {self.proc.returncode} before it was ready:\n"
                f"{self.output()}"
            )

    def wait_line(self, pattern: re.Pattern[str], timeout: float = 20.0) -> re.Match[str]:
        """Wait for a line matching ``pattern``; the match."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    match = pattern.match(line)
                    if match:
                        return match
                seen = len(self._lines)
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"{self.name}: no line like {pattern.pattern!r} in {timeout} s"
                    )
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    self._check_alive()
                self._changed.wait(0.05)

    def wait_port(self, port: int, timeout: float = 20.0) -> None:
        """Wait until ``port`` on 127.0.0.1 accepts a connection."""
        deadline = time.monotonic() + timeout
        while not accepts(port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name}: port {port} not accepting after {timeout} s")
            time.sleep(0.002)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it lingers; either way the process is gone afterwards."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=5)
