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


def core_busy_seconds(core: int) -> float:
    """CPU time one core spent on anything but idle and I/O wait so far (``/proc/stat``)."""
    prefix = f"cpu{core} "
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(prefix):
            # user nice system idle iowait irq softirq steal (guest time is inside user)
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
            return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS
    raise ValueError(f"no cpu{core} in /proc/stat")


def children_of(pid: int) -> list[int]:
    """The direct children of ``pid`` (nginx's worker under its master)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]
