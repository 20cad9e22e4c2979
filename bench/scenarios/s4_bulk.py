"""S4: one large download through the proxy (curl), over HTTP and over intercepted HTTPS —
rate, and the proxy's peak memory.

Two launches per way, one per protocol, so that each peak RSS is its protocol's own.
mitmdump buffers whole bodies by default; it runs here with ``stream_large_bodies=1m``, its
fastest setting, and the ratio is taken against that.
"""

from __future__ import annotations

from contextlib import nullcontext

from bench.curl import download
from bench.procstat import CpuMeter, peak_rss_mib
from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.ways import Route

_HTTPS = "https_"  # the prefix of the HTTPS half's metric keys


def _metrics(prefix: str, protocol: str) -> tuple[Metric, ...]:
    return (
        Metric(f"{prefix}mb_per_s", f"MB/s, {protocol}", higher_is_better=True),
        Metric(
            f"{prefix}peak_rss",
            f"proxy peak RSS, {protocol} (MiB)",
            higher_is_better=False,
            direct=False,
        ),
        Metric(
            f"{prefix}cpu_share",
            f"proxy CPU, {protocol} (% of a core)",
            higher_is_better=False,
            direct=False,
        ),
        Metric(
            f"{prefix}cpu_per_mb",
            f"proxy CPU µs/MB, {protocol}",
            higher_is_better=False,
            direct=False,
        ),
    )


class Bulk(Scenario):
    name = "S4"
    title = "one large download over HTTP and over HTTPS (curl); mitmdump streaming (1m)"
    mitmdump_options = ("--set", "stream_large_bodies=1m")
    metrics = _metrics("", "HTTP") + _metrics(_HTTPS, "HTTPS")

    def run(self, env: Env, way: str) -> Sample:
        sample = super().run(env, way)
        with env.launcher.start(way, self.mitmdump_options, self.waylay_options) as route:
            sample.update(self._download(env, route, https=True))
        return sample

    def measure(self, env: Env, route: Route) -> Sample:
        return self._download(env, route, https=False)

    def _download(self, env: Env, route: Route, *, https: bool) -> Sample:
        env.origin.warm_bulk()
        cpu = CpuMeter(route.pid) if route.pid else None
        with cpu or nullcontext():
            result = download(
                route,
                env.origin.bulk_path,
                expected=env.origin.bulk_size,
                core=env.cores.load,
                home=env.home,
                https=https,
            )
        prefix = _HTTPS if https else ""
        sample = {f"{prefix}mb_per_s": result.mb_per_s}
        if cpu and route.pid:
            sample[f"{prefix}peak_rss"] = peak_rss_mib(route.pid)
            sample[f"{prefix}cpu_share"] = cpu.share
            sample[f"{prefix}cpu_per_mb"] = cpu.cpu / (result.bytes / 1e6) * 1e6
        return sample
