"""S5: the proxy's memory — idle, after many flows, and per idle keep-alive connection.

Two launches, so that neither half disturbs the other (a proxy that gives freed memory back
to the system now and then would otherwise blur the slope below with the flows' garbage):

1. RSS at rest after start-up ("idle"); then idle keep-alive connections, opened one by one,
   each with one request answered (so the proxy also holds the upstream connection it keeps
   for it). The cost per idle connection is the slope over the second half,
   (RSS(n) - RSS(n/2)) / (n/2), so that what the first connections warm up (allocator arenas,
   lazily built tables) is not charged to every connection.
2. RSS at rest; N flows with wrk (50 connections, then closed); RSS again.
"""

from __future__ import annotations

import time

from bench.idle import idle_connections
from bench.origin import SMALL_PATH
from bench.procstat import rss_mib
from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.settings import Settings
from bench.ways import PROXIES, Route
from bench.wrk import run_wrk

_SETTLE = 0.5  # seconds for the proxy to finish closing before RSS is read


class Memory(Scenario):
    name = "S5"
    ways = PROXIES

    def __init__(self, settings: Settings) -> None:
        self.title = (
            f"memory: idle, after {settings.flows:,} flows, "
            f"{settings.idle_connections:,} idle keep-alive connections"
        )
        self.metrics = (
            Metric("rss_idle", "RSS idle (MiB)", higher_is_better=False, direct=False),
            Metric(
                "rss_after_flows",
                f"RSS after {settings.flows:,} flows (MiB)",
                higher_is_better=False,
                direct=False,
            ),
            Metric(
                "growth_after_flows",
                f"growth after {settings.flows:,} flows (MiB)",
                higher_is_better=False,
                direct=False,
            ),
            Metric("kib_per_idle", "KiB per idle connection", higher_is_better=False, direct=False),
        )

    def run(self, env: Env, way: str) -> Sample:
        sample = super().run(env, way)
        with env.launcher.start(way) as route:
            sample.update(self._flows(env, route))
        return sample

    def measure(self, env: Env, route: Route) -> Sample:
        """Idle, then idle keep-alive connections."""
        pid = route.proxy_pid
        time.sleep(_SETTLE)
        idle = rss_mib(pid)
        half = env.settings.idle_connections // 2
        with idle_connections(route, SMALL_PATH) as connections:
            connections.open(half)
            time.sleep(_SETTLE)
            at_half = rss_mib(pid)
            connections.open(half)
            time.sleep(_SETTLE)
            at_full = rss_mib(pid)
        return {"rss_idle": idle, "kib_per_idle": (at_full - at_half) * 1024 / half}

    def _flows(self, env: Env, route: Route) -> Sample:
        pid = route.proxy_pid
        time.sleep(_SETTLE)
        idle = rss_mib(pid)
        flows = env.settings.flows
        run_wrk(
            route,
            SMALL_PATH,
            connections=env.settings.connections,
            duration=max(600.0, flows / 100),
            core=env.cores.load,
            home=env.home,
            limit=flows,
        )
        time.sleep(_SETTLE)
        after_flows = rss_mib(pid)
        return {"rss_after_flows": after_flows, "growth_after_flows": after_flows - idle}
