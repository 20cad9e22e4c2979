"""S3: new intercepted HTTPS connections per second — per request a fresh CONNECT, two TLS
handshakes (client to proxy, proxy to nginx) and one GET of 1 KiB, the certificate already
cached (each lane's first connection, unmeasured, warms it).

16 lanes over the load client's processes keep the proxy busy. "direct" is the same client
handshaking with nginx itself: there the Python client and nginx share the load core and it
is that core which sets the rate.
"""

from __future__ import annotations

from bench.procstat import CpuMeter
from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.tlsload import settings_load
from bench.ways import Route


class TlsConnections(Scenario):
    name = "S3"
    title = "new intercepted HTTPS connections, one GET each, certificate cached (bench/tlsload)"
    metrics = (
        Metric("cps", "connections/s", higher_is_better=True),
        Metric("p50", "p50 connection to response (ms)", higher_is_better=False),
        Metric("cpu_share", "proxy CPU (% of a core)", higher_is_better=False, direct=False),
        Metric(
            "cpu_per_connection", "proxy CPU µs/connection", higher_is_better=False, direct=False
        ),
    )

    def measure(self, env: Env, route: Route) -> Sample:
        cpu = CpuMeter(route.pid) if route.pid else None
        result = settings_load(env, route, "fresh", meter=cpu)
        sample = {"cps": result.rate, "p50": result.p50_ms}
        if cpu:
            sample["cpu_share"] = cpu.share
            sample["cpu_per_connection"] = cpu.cpu / result.requests * 1e6
        return sample
