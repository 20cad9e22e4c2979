"""What a scenario is: metrics, the ways it runs, and one measurement of one way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.machine import Cores
from bench.origin import Origin
from bench.settings import Settings
from bench.ways import WAYS, Launcher, Route

Sample = dict[str, float]  # metric key -> value, from one way in one round


@dataclass(frozen=True)
class Metric:
    key: str
    label: str  # with its unit: "requests/s", "p99 latency (ms)"
    higher_is_better: bool
    direct: bool = True  # False when there is no proxy to measure (memory, CPU, start-up)


@dataclass(frozen=True)
class Env:
    """What every scenario may use."""

    settings: Settings
    origin: Origin
    launcher: Launcher
    cores: Cores
    home: Path  # HOME of every process launched


class Scenario:
    name: str  # "S1"
    title: str
    metrics: tuple[Metric, ...]
    ways: tuple[str, ...] = WAYS
    # Ways with nothing to compare (S8: neither mitmdump nor "no proxy" has a flow database):
    # "n/a" in the table, where "—" means a metric that needs a proxy.
    no_equivalent: tuple[str, ...] = ()
    mitmdump_options: tuple[str, ...] = ()  # what mitmdump runs with here, beside -q
    waylay_options: tuple[str, ...] = ()  # what waylay dump runs with here, beside its own

    def prepare(self, env: Env) -> str | None:
        """Once before the rounds: make what every round needs; a line to say, if any."""
        return None

    def run(self, env: Env, way: str) -> Sample:
        """One measurement of one way: start it, measure, stop it."""
        with env.launcher.start(way, self.mitmdump_options, self.waylay_options) as route:
            return self.measure(env, route)

    def measure(self, env: Env, route: Route) -> Sample:
        """What ``run`` measures through a started way (a scenario that starts none, such as
        S8, overrides ``run`` instead)."""
        raise NotImplementedError(f"{self.name} measures in run()")

    def metric(self, key: str) -> Metric:
        return next(metric for metric in self.metrics if metric.key == key)
