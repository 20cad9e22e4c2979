"""The targets of issue 8, checked after a full run."""

from __future__ import annotations

from dataclasses import dataclass

from bench.flowdb import FILTERS
from bench.report import Results
from bench.ways import MITMDUMP, WAYLAY


@dataclass(frozen=True)
class Target:
    scenario: str
    metric: str
    text: str
    bound: float
    at_most: bool  # True: the value must not exceed the bound; False: must reach it
    against: str | None = None  # a ratio waylay/against, else waylay's own value
    strict: bool = False  # "<" rather than "<="

    def value(self, results: Results) -> float | None:
        if self.against is None:
            return results.median(self.scenario, self.metric, WAYLAY)
        return results.ratio(self.scenario, self.metric, WAYLAY, self.against)

    def met(self, value: float) -> bool:
        if self.at_most:
            return value < self.bound if self.strict else value <= self.bound
        return value >= self.bound


TARGETS = (
    Target("S1", "rps", "requests/s >= 25x mitmdump's", 25, at_most=False, against=MITMDUMP),
    Target("S1", "p99", "p99 latency <= 1/10 of mitmdump's", 0.1, at_most=True, against=MITMDUMP),
    Target("S2", "rps", "requests/s >= 20x mitmdump's", 20, at_most=False, against=MITMDUMP),
    Target("S3", "cps", "connections/s >= 3.5x mitmdump's", 3.5, at_most=False, against=MITMDUMP),
    Target(
        "S4", "mb_per_s", "HTTP MB/s >= 2x streaming mitmdump's", 2, at_most=False, against=MITMDUMP
    ),
    Target("S4", "peak_rss", "HTTP peak RSS < 60 MiB", 60, at_most=True, strict=True),
    Target(
        "S4",
        "https_mb_per_s",
        "HTTPS MB/s >= 2x streaming mitmdump's",
        2,
        at_most=False,
        against=MITMDUMP,
    ),
    Target("S4", "https_peak_rss", "HTTPS peak RSS < 60 MiB", 60, at_most=True, strict=True),
    Target("S5", "kib_per_idle", "<= 4 KiB per idle HTTP connection", 4, at_most=True),
    Target("S5", "kib_per_idle_https", "<= 64 KiB per idle HTTPS connection", 64, at_most=True),
    Target(
        "S5", "growth_after_flows", "RSS after the flows within 30 MiB of idle", 30, at_most=True
    ),
    Target(
        "S5", "growth_after_churn", "RSS after the churn within 30 MiB of idle", 30, at_most=True
    ),
    Target("S6", "added_ms", "a new host adds <= 3 ms", 3, at_most=True),
    Target("S7", "ready_ms", "ready in <= 0.5 s", 500, at_most=True),
    *(
        Target("S8", key, f"`{expression}` in < 1 s", 1, at_most=True, strict=True)
        for key, (expression, _share) in FILTERS.items()
    ),
)


@dataclass(frozen=True)
class Verdict:
    target: Target
    value: float | None

    @property
    def met(self) -> bool:
        return self.value is not None and self.target.met(self.value)

    def line(self) -> str:
        shown = "not measured" if self.value is None else f"{self.value:.3g}"
        kind = f"waylay/{self.target.against}" if self.target.against else "waylay"
        status = "met" if self.met else "MISSED"
        return f"{self.target.scenario} {self.target.text}: {kind} = {shown} — {status}"


def check(results: Results) -> list[Verdict]:
    return [
        Verdict(target, target.value(results)) for target in TARGETS if results.has(target.scenario)
    ]
