"""S5: the proxy's memory — idle, after many flows, per idle keep-alive connection (HTTP and
intercepted HTTPS), and after many intercepted connections opened and closed.

Four launches per proxy, so that no half disturbs another (a proxy that gives freed memory
back to the system now and then would otherwise blur one reading with another's garbage):

1. RSS at rest after start-up ("idle"); then idle keep-alive HTTP connections, opened one by
   one, each with one request answered (so the proxy also holds the upstream connection it
   keeps for it). The cost per idle connection is the slope over the second half,
   (RSS(n) - RSS(n/2)) / (n/2), so that what the first connections warm up (allocator arenas,
   lazily built tables) is not charged to every connection.
2. The same with intercepted HTTPS connections: CONNECT, a TLS handshake with the proxy's
   forged certificate, one request inside; the proxy holds two TLS sessions per connection.
3. RSS at rest; N flows with wrk (50 connections, then closed); RSS again.
4. RSS at rest; N intercepted connections, opened and closed by the HTTPS load client (one
   GET each, 16 at a time); RSS again, once the proxy has finished closing. A proxy that
   trims its heap periodically (waylay: every 10 s) may or may not have trimmed since the
   last connections closed: the reading is what a user would see right after such a burst.
"""

from __future__ import annotations

import time

from bench.idle import idle_connections
from bench.origin import SMALL_PATH
from bench.procstat import rss_mib
from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.settings import Settings
from bench.tlsload import run_tls_load
from bench.ways import PROXIES, Route
from bench.wrk import run_wrk

_SETTLE = 0.5  # seconds for the proxy to finish closing before RSS is read


def _metric(key: str, label: str) -> Metric:
    return Metric(key, label, higher_is_better=False, direct=False)


class Memory(Scenario):
    name = "S5"
    ways = PROXIES

    def __init__(self, settings: Settings) -> None:
        flows, churn = f"{settings.flows:,}", f"{settings.churn:,}"
        self.title = (
            f"memory: idle, after {flows} flows, {settings.idle_connections:,} idle keep-alive "
            f"connections (HTTP, HTTPS), after {churn} intercepted connections"
        )
        self.metrics = (
            _metric("rss_idle", "RSS idle (MiB)"),
            _metric("rss_after_flows", f"RSS after {flows} flows (MiB)"),
            _metric("growth_after_flows", f"growth after {flows} flows (MiB)"),
            _metric("kib_per_idle", "KiB per idle HTTP connection"),
            _metric("kib_per_idle_https", "KiB per idle HTTPS connection"),
            _metric("rss_after_churn", f"RSS after {churn} HTTPS connections (MiB)"),
            _metric("growth_after_churn", f"growth after {churn} HTTPS connections (MiB)"),
        )

    def run(self, env: Env, way: str) -> Sample:
        sample = super().run(env, way)
        with env.launcher.start(way) as route:
            sample.update(self._idle(env, route, https=True))
        with env.launcher.start(way) as route:
            sample.update(self._flows(env, route))
        with env.launcher.start(way) as route:
            sample.update(self._churn(env, route))
        return sample

    def measure(self, env: Env, route: Route) -> Sample:
        return self._idle(env, route, https=False)

    def _idle(self, env: Env, route: Route, *, https: bool) -> Sample:
        """Idle, then idle keep-alive connections."""
        pid = route.proxy_pid
        time.sleep(_SETTLE)
        idle = rss_mib(pid)
        half = env.settings.idle_connections // 2
        with idle_connections(route, SMALL_PATH, https=https) as connections:
            connections.open(half)
            time.sleep(_SETTLE)
            at_half = rss_mib(pid)
            connections.open(half)
            time.sleep(_SETTLE)
            at_full = rss_mib(pid)
        per_connection = (at_full - at_half) * 1024 / half
        if https:
            return {"kib_per_idle_https": per_connection}
        return {"rss_idle": idle, "kib_per_idle": per_connection}

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

    def _churn(self, env: Env, route: Route) -> Sample:
        pid = route.proxy_pid
        time.sleep(_SETTLE)
        idle = rss_mib(pid)
        run_tls_load(
            route,
            SMALL_PATH,
            mode="fresh",
            connections=env.settings.lanes,
            duration=0.0,
            core=env.cores.load,
            home=env.home,
            processes=env.settings.load_processes,
            limit=env.settings.churn,
        )
        time.sleep(_SETTLE)
        after = rss_mib(pid)
        return {"rss_after_churn": after, "growth_after_churn": after - idle}
