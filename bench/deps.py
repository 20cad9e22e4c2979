"""What the benchmark needs and installs when missing.

- Debian's ``nginx`` (the origin) and ``wrk`` (the keep-alive load client), through the
  project's ``scripts/ensure-debs`` (installs as root, only names what is missing otherwise);
- mitmproxy in its own virtual environment ``bench/.venv-mitmproxy``, made with the newest
  Python >= 3.12 the machine has (mitmproxy 11.1+ needs it), else mitmproxy 11.0.2 on the
  Python running the benchmark — and the output says so;
- py-spy in that same environment, only when a profile is asked for.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV = BENCH_DIR / ".venv-mitmproxy"
STAMP = VENV / ".installed.json"
MITMPROXY = "12.3.1"
MITMPROXY_FALLBACK = "11.0.2"  # the last release that runs on Python 3.11
DEBS = ("nginx", "wrk")
# nginx lives in /usr/sbin, which a non-root PATH may lack.
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])


@dataclass(frozen=True)
class Mitmproxy:
    mitmdump: Path
    version: str
    python: str  # the version of the Python it runs on
    note: str  # empty, or why this is not mitmproxy MITMPROXY


def tool(name: str) -> str:
    """The path of a program the benchmark runs, or a BenchError naming how to get it."""
    path = shutil.which(name, path=_SBIN_PATH)
    if path is None:
        raise BenchError(f"{name} not found: install Debian's {name} (make debs as root)")
    return path


def ensure_debs() -> None:
    subprocess.run([str(REPO / "scripts" / "ensure-debs"), *DEBS], check=True)
    for name in DEBS:
        tool(name)


def _version_of(python: str) -> tuple[int, ...]:
    out = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return tuple(int(part) for part in out.split())


def newest_python() -> str | None:
    """The newest CPython >= 3.12 under pyenv or on PATH, or None."""
    candidates = glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3"))
    candidates += filter(None, (shutil.which(f"python3.{minor}") for minor in range(12, 20)))
    best: tuple[tuple[int, ...], str] | None = None
    for candidate in candidates:
        if not re.search(r"/3\.\d+\.\d+/bin/python3$|python3\.\d+$", candidate):
            continue  # pyenv's -dev and alpha builds, virtualenvs named after versions
        try:
            version = _version_of(candidate)
        except (OSError, subprocess.CalledProcessError):
            continue
        if version >= (3, 12) and (best is None or version > best[0]):
            best = (version, candidate)
    return best[1] if best else None


def _pip(args: list[str]) -> None:
    result = subprocess.run(
        [str(VENV / "bin" / "pip"), "install", "-q", *args], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BenchError(f"pip install {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def ensure_mitmproxy() -> Mitmproxy:
    """mitmproxy in ``bench/.venv-mitmproxy``, installed once and reused."""
    python = newest_python()
    if python is None:
        python, version = sys.executable, MITMPROXY_FALLBACK
        note = (
            f"no Python >= 3.12 found: mitmproxy {MITMPROXY_FALLBACK} on Python "
            f"{'.'.join(map(str, sys.version_info[:3]))} instead of mitmproxy {MITMPROXY}"
        )
    else:
        version, note = MITMPROXY, ""
    wanted = {"mitmproxy": version, "python": python}
    mitmdump = VENV / "bin" / "mitmdump"
    installed = json.loads(STAMP.read_text()) if STAMP.exists() else None
    if installed != wanted or not mitmdump.exists():
        print(f"bench: installing mitmproxy {version} into {VENV} ({python})", file=sys.stderr)
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
        _pip([f"mitmproxy=={version}"])
        STAMP.write_text(json.dumps(wanted))
    python_version = ".".join(map(str, _version_of(str(VENV / "bin" / "python"))))
    return Mitmproxy(mitmdump=mitmdump, version=version, python=python_version, note=note)


def ensure_py_spy() -> Path:
    py_spy = VENV / "bin" / "py-spy"
    if not py_spy.exists():
        print("bench: installing py-spy into the bench venv", file=sys.stderr)
        _pip(["py-spy"])
    return py_spy


def ensure_all() -> Mitmproxy:
    ensure_debs()
    return ensure_mitmproxy()
