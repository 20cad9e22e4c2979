"""S8: a filter over a million stored flows — ``waylay flows --filter EXPR FILE`` as a user
types it, from launch to exit, listing what matched.

The database is built once (``bench/flowdb.py``, cached under ``bench/``) with waylay's own
bulk writer, by the waylay being measured. Each filter picks about 1% of the flows, so the
time is the filter's and not that of printing a million lines; the listing is checked against
what the recipe put in. The command runs pinned to the load core, where the benchmark counts
the CPU of the processes it reaps (no load runs meanwhile), its file read into the page cache
first. Neither mitmdump nor "no proxy" has a flow database to filter: "n/a".
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench import deps
from bench.errors import BenchError
from bench.flowdb import FILTERS
from bench.process import clean_env, pinned
from bench.scenarios.base import Env, Metric, Sample, Scenario
from bench.settings import Settings
from bench.ways import DIRECT, MITMDUMP, WAYLAY

_TOLERANCE = 0.02  # the listing may differ from the recipe's expected share by 2% of it


class Filter(Scenario):
    name = "S8"
    ways = (WAYLAY,)
    no_equivalent = (DIRECT, MITMDUMP)

    def __init__(self, settings: Settings) -> None:
        self.count = settings.stored_flows
        self.title = f"`waylay flows --filter EXPR` over {self.count:,} stored flows"
        self.metrics = tuple(
            Metric(key, f"`{expression}` ({share:.1%} listed), s", higher_is_better=False)
            for key, (expression, share) in FILTERS.items()
        )
        self.database: Path | None = None

    def _env(self, env: Env) -> dict[str, str]:
        programs = env.launcher.programs
        return clean_env(env.home, {"PYTHONPATH": f"{programs.waylay_src}:{deps.REPO}"})

    def prepare(self, env: Env) -> str:
        started = time.monotonic()
        built = subprocess.run(
            [env.launcher.programs.waylay_python, "-m", "bench.flowdb", str(deps.BENCH_DIR),
             str(self.count)],
            capture_output=True, text=True, env=self._env(env), cwd=deps.REPO, timeout=1800,
        )  # fmt: skip
        if built.returncode != 0:
            raise BenchError(f"building S8's flow database failed:\n{built.stderr}")
        self.database = Path(built.stdout.strip())
        took = time.monotonic() - started
        return f"{self.count:,} flows in {self.database.name}" + (
            f" (built in {took:.0f} s)" if took > 5 else " (cached)"
        )

    def run(self, env: Env, way: str) -> Sample:
        if self.database is None:
            self.prepare(env)
        assert self.database is not None
        sample = {}
        for key, (expression, share) in FILTERS.items():
            _warm(self.database)
            command = [env.launcher.programs.waylay_python, "-m", "waylay", "flows",
                       "--filter", expression, str(self.database)]  # fmt: skip
            started = time.monotonic()
            listed = subprocess.run(
                pinned(env.cores.load, command),
                capture_output=True,
                text=True,
                env=self._env(env),
                timeout=600,
            )
            sample[key] = time.monotonic() - started
            lines = listed.stdout.count("\n")
            expected = share * self.count
            if listed.returncode != 0 or abs(lines - expected) > _TOLERANCE * expected + 1:
                raise BenchError(
                    f"`waylay flows --filter {expression!r}` listed {lines} flows, expected "
                    f"about {expected:.0f} (exit {listed.returncode}): {listed.stderr[-500:]}"
                )
        return sample


def _warm(path: Path) -> None:
    """Read the database once: the first filter should not pay for filling the page cache."""
    buffer = bytearray(1 << 20)
    with open(path, "rb", buffering=0) as file:
        while file.readinto(buffer):
            pass
