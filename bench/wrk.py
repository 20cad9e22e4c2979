"""wrk, the keep-alive load client, driven through ``wrk.lua`` (absolute-form requests)."""

from __future__ import annotations

import json
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError
from bench.process import clean_env, pinned
from bench.ways import Route

_SCRIPT = Path(__file__).with_name("wrk.lua")
_MARK = "WRK_JSON "
_LIMIT_REACHED = "WRK_LIMIT_REACHED"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def run_wrk(
    route: Route,
    path: str,
    *,
    connections: int,
    duration: float,
    core: int,
    home: Path,
    limit: int | None = None,
) -> WrkResult:
    """One wrk run: ``duration`` seconds, or until ``limit`` responses (one thread)."""
    env = {"WRK_TARGET": route.request_target(path), "WRK_HOST": route.authority}
    if limit is not None:
        env["WRK_LIMIT"] = str(limit)
    command = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "--script",
        str(_SCRIPT),
        route.connect_url,
    ]
    with subprocess.Popen(
        pinned(core, command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(home, env),
    ) as wrk:
        try:
            stdout, stderr = _wait(wrk, duration + 60, limited=limit is not None)
        finally:
            if wrk.poll() is None:
                wrk.kill()
    lines = [line for line in stdout.splitlines() if line.startswith(_MARK)]
    if wrk.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({wrk.returncode}):\n{stdout}{stderr}")
    data = json.loads(lines[-1].removeprefix(_MARK))
    errors = {key: data[key] for key in ("connect", "read", "write", "status", "timeout")}
    if any(errors.values()) or data["requests"] == 0:
        raise BenchError(f"wrk through {route.way}: {data['requests']} requests, errors {errors}")
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


def _wait(wrk: subprocess.Popen[str], timeout: float, *, limited: bool) -> tuple[str, str]:
    """wrk's output once it is done; a limited run is told to stop when the limit is hit."""
    stderr = ""
    if limited:
        assert wrk.stderr is not None
        for line in wrk.stderr:
            stderr += line
            if line.strip() == _LIMIT_REACHED:
                wrk.send_signal(signal.SIGINT)
                break
    stdout, rest = wrk.communicate(timeout=timeout)
    return stdout, stderr + rest
