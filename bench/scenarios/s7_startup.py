"""S7: start-up — from launch to ready.

waylay is ready when it prints ``waylay listening on HOST:PORT`` on stderr; mitmdump, which
prints nothing under ``-q``, when its port first accepts a connection (polled every 2 ms).
Both launches are warm: bytecode cached, mitmproxy's CA already in its confdir.
"""

from __future__ import annotations

from statistics import median

from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.ways import PROXIES, Route


class Startup(Scenario):
    name = "S7"
    title = "start-up: launch to ready"
    ways = PROXIES
    metrics = (Metric("ready_ms", "launch to ready (ms)", higher_is_better=False, direct=False),)

    def run(self, env: Env, way: str) -> Sample:
        times = []
        for _ in range(env.settings.launches):
            with env.launcher.start(way) as route:
                times.append(self.measure(env, route)["ready_ms"])
        return {"ready_ms": median(times)}

    def measure(self, env: Env, route: Route) -> Sample:
        return {"ready_ms": route.ready_seconds * 1000}
