"""S4: one large download through the proxy (curl) — rate, and the proxy's peak memory.

mitmdump buffers whole bodies by default; it runs here with ``stream_large_bodies=1m``,
its fastest setting, and the ratio is taken against that.
"""

from __future__ import annotations

from contextlib import nullcontext

from bench.curl import download
from bench.procstat import CpuMeter, peak_rss_mib
from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.ways import Route


class Bulk(Scenario):
    name = "S4"
    title = "one large HTTP download (curl); mitmdump with stream_large_bodies=1m"
    mitmdump_options = ("--set", "stream_large_bodies=1m")
    metrics = (
        Metric("mb_per_s", "MB/s", higher_is_better=True),
        Metric("peak_rss", "proxy peak RSS (MiB)", higher_is_better=False, direct=False),
        Metric("cpu_share", "proxy CPU (% of a core)", higher_is_better=False, direct=False),
        Metric("cpu_per_mb", "proxy CPU µs/MB", higher_is_better=False, direct=False),
    )

    def measure(self, env: Env, route: Route) -> Sample:
        env.origin.warm_bulk()
        cpu = CpuMeter(route.pid) if route.pid else None
        with cpu or nullcontext():
            result = download(
                route,
                env.origin.bulk_path,
                expected=env.origin.bulk_size,
                core=env.cores.load,
                home=env.home,
            )
        sample = {"mb_per_s": result.mb_per_s}
        if cpu and route.pid:
            sample["peak_rss"] = peak_rss_mib(route.pid)
            sample["cpu_share"] = cpu.share
            sample["cpu_per_mb"] = cpu.cpu / (result.bytes / 1e6) * 1e6
        return sample
