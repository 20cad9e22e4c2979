"""The scenarios of issue 8 (and S9, issue 6's addon hook), in the order they run and print:
one module and one line each."""

from __future__ import annotations

from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.scenarios.s1_keepalive import KeepAlive
from bench.scenarios.s2_tls_keepalive import TlsKeepAlive
from bench.scenarios.s3_tls_connections import TlsConnections
from bench.scenarios.s4_bulk import Bulk
from bench.scenarios.s5_memory import Memory
from bench.scenarios.s6_first_certificate import FirstCertificate
from bench.scenarios.s7_startup import Startup
from bench.scenarios.s8_filter import Filter
from bench.scenarios.s9_addon_hook import AddonHook
from bench.settings import Settings

__all__ = ["Env", "Metric", "Sample", "Scenario", "all_scenarios"]


def all_scenarios(settings: Settings) -> list[Scenario]:
    return [
        KeepAlive(),
        TlsKeepAlive(),
        TlsConnections(),
        Bulk(),
        Memory(settings),
        FirstCertificate(),
        Startup(),
        Filter(settings),
        AddonHook(),
    ]
