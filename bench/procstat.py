"""Readings of another process from ``/proc``: CPU time, resident memory, peak memory."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of every thread of ``pid`` so far (``/proc/PID/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _CLOCK_TICKS


def status_kib(pid: int, field: str) -> int:
    """A memory field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == field:
            number, unit = value.split()
            if unit != "kB":
                raise ValueError(f"unexpected unit {unit!r} for {field}")
            return int(number)
    raise ValueError(f"{field} not in /proc/{pid}/status")


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


def peak_rss_mib(pid: int) -> float:
    return status_kib(pid, "VmHWM") / 1024


@dataclass
class CpuMeter:
    """The CPU a process spends over a stretch of wall time: ``with CpuMeter(pid) as cpu:``."""

    pid: int
    cpu: float = 0.0
    wall: float = 0.0

    def __enter__(self) -> CpuMeter:
        self._cpu0 = cpu_seconds(self.pid)
        self._wall0 = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = cpu_seconds(self.pid) - self._cpu0
        self.wall = time.monotonic() - self._wall0

    @property
    def share(self) -> float:
        """CPU seconds per wall second, as a percentage of one core."""
        return 100 * self.cpu / self.wall if self.wall > 0 else 0.0
