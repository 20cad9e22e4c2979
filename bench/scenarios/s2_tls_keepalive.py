"""S2: S1 over intercepted HTTPS — 1 KiB bodies, 50 kept-alive TLS connections, each opened
with CONNECT and a forged certificate (bench/tlsload.py; wrk cannot CONNECT).

"direct" is the same client speaking TLS to nginx's HTTPS port itself. The client is Python
(asyncio's TLS), so it costs more per request than wrk: when the load core saturates first,
the rate understates the proxy, and its CPU per request says more.
"""

from __future__ import annotations

from bench.procstat import CpuMeter
from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.tlsload import settings_load
from bench.ways import Route


class TlsKeepAlive(Scenario):
    name = "S2"
    title = "1 KiB responses over kept-alive intercepted HTTPS, 50 connections (bench/tlsload)"
    metrics = (
        Metric("rps", "requests/s", higher_is_better=True),
        Metric("p50", "p50 latency (ms)", higher_is_better=False),
        Metric("p99", "p99 latency (ms)", higher_is_better=False),
        Metric("cpu_share", "proxy CPU (% of a core)", higher_is_better=False, direct=False),
        Metric("cpu_per_request", "proxy CPU µs/request", higher_is_better=False, direct=False),
    )

    def measure(self, env: Env, route: Route) -> Sample:
        cpu = CpuMeter(route.pid) if route.pid else None
        result = settings_load(env, route, "keepalive", meter=cpu)
        sample = {"rps": result.rate, "p50": result.p50_ms, "p99": result.p99_ms}
        if cpu:
            sample["cpu_share"] = cpu.share
            sample["cpu_per_request"] = cpu.cpu / result.requests * 1e6
        return sample
