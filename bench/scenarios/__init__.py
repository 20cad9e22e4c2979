"""The scenarios of issue 8 that exist so far, in the order they run and print.

S2, S3, S6 and the HTTPS halves of S4 and S5 arrive with TLS interception; S8 with the flow
store. Each is one module and one line below.
"""

from __future__ import annotations

from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.scenarios.s1_keepalive import KeepAlive
from bench.scenarios.s4_bulk import Bulk
from bench.scenarios.s5_memory import Memory
from bench.scenarios.s7_startup import Startup
from bench.settings import Settings

__all__ = ["Env", "Metric", "Sample", "Scenario", "all_scenarios"]


def all_scenarios(settings: Settings) -> list[Scenario]:
    return [KeepAlive(), Bulk(), Memory(settings), Startup()]
