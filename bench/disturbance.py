"""How quiet the machine was: the share of each core that went to others while measuring.

The proxy's core should run the proxy only, the load core nginx, the load clients and the
benchmark itself. Whatever else keeps a core busy (other tests, other users) disturbs the
measurement: on the proxy's core it steals the proxy's time, on the load core it slows the
clients and the origin, and the proxy then idles. Busy time per core comes from
``/proc/stat``; our own share from ``/proc/PID/stat`` and ``getrusage``. The rest, as a
percentage of the wall time, is the disturbance (the kernel's work for our own sockets
counts as ours only in part, so a quiet core still shows a few percent).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.machine import Cores
from bench.procstat import core_busy_seconds


def own_cpu_seconds() -> float:
    """CPU time of the benchmark and of the children it has reaped (wrk, curl, proxies)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class Ours:
    """Our CPU seconds so far, per core: the proxies on one, everything else on the other."""

    proxies: Callable[[], float]  # every proxy launched, the running one included
    stopped_proxies: Callable[[], float]  # the reaped ones: inside own_cpu_seconds()
    origin: Callable[[], float]  # nginx, not reaped until the end

    def on_proxy_core(self) -> float:
        return self.proxies()

    def on_load_core(self) -> float:
        return own_cpu_seconds() - self.stopped_proxies() + self.origin()


@dataclass
class Disturbance:
    """``with Disturbance(cores, ours) as d: ...`` then ``d.proxy_core``, ``d.load_core`` (%)."""

    cores: Cores
    ours: Ours
    proxy_core: float = 0.0
    load_core: float = 0.0

    def _snapshot(self) -> tuple[float, float, float, float, float]:
        return (
            core_busy_seconds(self.cores.proxy),
            self.ours.on_proxy_core(),
            core_busy_seconds(self.cores.load),
            self.ours.on_load_core(),
            time.monotonic(),
        )

    def __enter__(self) -> Disturbance:
        self._start = self._snapshot()
        return self

    def __exit__(self, *exc: object) -> None:
        busy_p, ours_p, busy_l, ours_l, wall = (
            end - start for end, start in zip(self._snapshot(), self._start, strict=True)
        )
        if wall <= 0 or self.cores.shared:
            return
        self.proxy_core = _percent(busy_p - ours_p, wall)
        self.load_core = _percent(busy_l - ours_l, wall)


def _percent(seconds: float, wall: float) -> float:
    return min(100.0, max(0.0, 100 * seconds / wall))
