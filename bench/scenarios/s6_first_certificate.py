"""S6: the first request to a new host (the proxy forges a certificate) against one to a host
whose certificate it has cached — the added latency.

One connection at a time, from the benchmark's own process on the load core: a fresh
CONNECT, a TLS handshake, one GET, until the response's first byte. "New host" sends a new
SNI each time (``h7-3fa2….origin.test``: a token per measurement, so no proxy has seen it),
"cached" the same name every time; the two alternate, after a few unmeasured cached ones.
The CONNECT target is the same for both, so the difference is the certificate alone (nginx's
wildcard certificate answers every name). "direct" makes the same handshakes with nginx: its
new and cached hosts cost the same, the floor under both proxies.
"""

from __future__ import annotations

import secrets
import ssl
import time
from statistics import median

from bench.https import client_context, connect_tls, get_request
from bench.origin import ORIGIN_NAME, SMALL_PATH
from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.ways import Route

_WARM_UP = 20  # unmeasured connections to the cached host first


def _first_byte_ms(route: Route, context: ssl.SSLContext, server_name: str) -> float:
    started = time.perf_counter()
    with connect_tls(route, context, server_name=server_name) as tls:
        tls.sendall(get_request(SMALL_PATH, server_name))
        tls.recv(1)
    return (time.perf_counter() - started) * 1000


class FirstCertificate(Scenario):
    name = "S6"
    title = "first request to a new host (certificate forged) vs a cached host, one at a time"
    metrics = (
        Metric("new_ms", "new host, connection to first byte (ms)", higher_is_better=False),
        Metric("cached_ms", "cached host, connection to first byte (ms)", higher_is_better=False),
        Metric("added_ms", "added by a new host (ms)", higher_is_better=False, direct=False),
    )

    def measure(self, env: Env, route: Route) -> Sample:
        context = client_context(str(route.trusted_ca))
        cached_name = f"cached.{ORIGIN_NAME}"
        for _ in range(_WARM_UP):
            _first_byte_ms(route, context, cached_name)
        token = secrets.token_hex(4)
        new, cached = [], []
        for n in range(env.settings.first_certificate_rounds):
            new.append(_first_byte_ms(route, context, f"h{n}-{token}.{ORIGIN_NAME}"))
            cached.append(_first_byte_ms(route, context, cached_name))
        sample = {"new_ms": median(new), "cached_ms": median(cached)}
        if route.proxy:
            sample["added_ms"] = sample["new_ms"] - sample["cached_ms"]
        return sample
