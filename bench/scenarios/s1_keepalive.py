"""S1: small requests over keep-alive HTTP — 1 KiB bodies, 50 connections, wrk."""

from __future__ import annotations

from contextlib import nullcontext

from bench.origin import SMALL_PATH
from bench.procstat import CpuMeter
from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.ways import Route
from bench.wrk import run_wrk


class KeepAlive(Scenario):
    name = "S1"
    title = "1 KiB responses over keep-alive HTTP, 50 connections (wrk)"
    metrics = (
        Metric("rps", "requests/s", higher_is_better=True),
        Metric("p50", "p50 latency (ms)", higher_is_better=False),
        Metric("p99", "p99 latency (ms)", higher_is_better=False),
        Metric("cpu_share", "proxy CPU (% of a core)", higher_is_better=False, direct=False),
        Metric("cpu_per_request", "proxy CPU µs/request", higher_is_better=False, direct=False),
    )

    def measure(self, env: Env, route: Route) -> Sample:
        cpu = CpuMeter(route.pid) if route.pid else None
        with cpu or nullcontext():
            result = run_wrk(
                route,
                SMALL_PATH,
                connections=env.settings.connections,
                duration=env.settings.duration,
                core=env.cores.load,
                home=env.home,
            )
        sample = {"rps": result.rate, "p50": result.p50_ms, "p99": result.p99_ms}
        if cpu:
            sample["cpu_share"] = cpu.share
            sample["cpu_per_request"] = cpu.cpu / result.requests * 1e6
        return sample
