"""The machine the numbers come from, and which core does what."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Cores:
    """The proxy under test gets one core; the origin and the load clients the other."""

    proxy: int
    load: int

    @property
    def shared(self) -> bool:
        return self.proxy == self.load


def pick_cores() -> Cores:
    cores = sorted(os.sched_getaffinity(0))
    return Cores(proxy=cores[0], load=cores[1] if len(cores) > 1 else cores[0])


def pin_self(core: int) -> None:
    """Pin the benchmark itself (and so every child it starts) to the load core."""
    os.sched_setaffinity(0, {core})


def raise_open_file_limit() -> int:
    """Soft limit to the hard one: a thousand idle connections need two thousand descriptors."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def _first_line(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "not found"
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def describe(*, waylay_python: str, nginx: str, mitmproxy: dict[str, str]) -> dict[str, Any]:
    """The facts docs/performance.md prints beside the table."""
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "waylay_python": _first_line([waylay_python, "-c", "import sys; print(sys.version)"]),
        "mitmproxy": mitmproxy,
        "nginx": _first_line([nginx, "-v"]),
        "wrk": _first_line(["wrk", "-v"]),
        "curl": _first_line(["curl", "--version"]),
    }
