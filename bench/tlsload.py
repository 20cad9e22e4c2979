"""The benchmark's HTTPS load client: wrk cannot CONNECT, so S2, S3 and S5's churn use this.

Several worker processes (``python -m bench.tlsload JOB``), each an asyncio loop with
Protocols, all pinned to the load core like wrk. A worker opens its share of the connections
— TCP to the proxy, ``CONNECT``, a TLS handshake trusting the proxy's CA with ``origin.test``
as SNI (for "direct": TLS straight to nginx's HTTPS port, trusting the bench's CA) — and then:

- ``keepalive`` (S2): GET after GET on every connection, one request in flight each (no
  pipelining), for ``duration`` seconds. Each connection first answers a few warm-up
  requests before the clock starts.
- ``fresh`` (S3, churn): lanes that each open a connection, make one GET, close it (TLS
  close_notify, then FIN) and start again — a fresh CONNECT and two TLS handshakes per
  request, for ``duration`` seconds or until ``limit`` connections. Each lane first makes one
  unmeasured connection, so that the proxy's certificate for the name is cached.

The parent starts the workers, waits until each says ``READY``, tells them all ``GO`` at
once, and adds up what they report: responses within the window, and latencies (from the
request's write, or the connection's start, to the response's last byte) in a histogram of
1% wide buckets, merged across workers for p50 and p99.
"""

from __future__ import annotations

import asyncio
import json
import math
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if __package__ in (None, ""):  # run as a worker: python -m bench.tlsload, or by path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.errors import BenchError
from bench.https import client_context, connect_request, content_length, get_request
from bench.process import clean_env, pinned

if TYPE_CHECKING:
    from bench.scenarios.base import Env
    from bench.ways import Route

Mode = Literal["keepalive", "fresh"]
_BUCKET = math.log(1.01)  # histogram buckets 1% wide, in microseconds
_WARM_UP_REQUESTS = 3  # per keep-alive connection, before the clock starts
_READY, _GO = "READY", "GO"
_REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class TlsLoadResult:
    requests: int  # responses (keepalive) or connections (fresh) completed in the window
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def run_tls_load(
    route: Route,
    path: str,
    *,
    mode: Mode,
    connections: int,
    duration: float,
    core: int,
    home: Path,
    processes: int = 2,
    limit: int | None = None,
    meter: AbstractContextManager[object] | None = None,
) -> TlsLoadResult:
    """Drive ``route`` with ``connections`` connections (keepalive) or lanes (fresh) over
    ``processes`` workers; ``limit``: stop after that many connections.

    ``meter`` is entered just before GO and left after the last worker reports: a CPU meter
    of the proxy, say, which then covers the load and none of the set-up.
    """
    processes = max(1, min(processes, connections))
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    limits = (
        [limit // processes + (i < limit % processes) for i in range(processes)]
        if limit is not None
        else [None] * processes
    )
    host, port = route.tls_connect_address
    jobs = [
        {
            "mode": mode,
            "host": host,
            "port": port,
            "connect": route.https_authority if route.proxy else None,
            "trust": str(route.trusted_ca),
            "server_name": route.server_name,
            "request": get_request(path, route.https_authority).decode(),
            "connections": share,
            "duration": duration,
            "limit": share_limit,
        }
        for share, share_limit in zip(shares, limits, strict=True)
    ]
    env = clean_env(home, {"PYTHONPATH": str(_REPO)})
    command = [sys.executable, "-m", "bench.tlsload"]
    workers = [
        subprocess.Popen(
            pinned(core, [*command, json.dumps(job)]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=_REPO,
        )
        for job in jobs
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline().strip()
            if line != _READY:
                _fail(route.way, worker, line)
        if meter is not None:
            meter.__enter__()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(_GO + "\n")
            worker.stdin.flush()
        timeout = 600.0 if limit is not None else duration + 60
        reports = []
        for worker in workers:
            stdout, stderr = worker.communicate(timeout=timeout)
            if worker.returncode != 0 or not stdout.strip():
                _fail(route.way, worker, stdout + stderr)
            reports.append(json.loads(stdout.strip().splitlines()[-1]))
        if meter is not None:
            meter.__exit__(None, None, None)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    errors = [report["error"] for report in reports if report["error"]]
    if errors:
        raise BenchError(f"the TLS load client through {route.way}: {errors[0]}")
    histogram: Counter[int] = Counter()
    for report in reports:
        histogram.update({int(bucket): count for bucket, count in report["histogram"].items()})
    requests = sum(report["requests"] for report in reports)
    if requests == 0:
        raise BenchError(f"the TLS load client through {route.way}: no response in the window")
    return TlsLoadResult(
        requests=requests,
        seconds=max(report["seconds"] for report in reports),
        p50_ms=_percentile(histogram, 0.50) / 1000,
        p99_ms=_percentile(histogram, 0.99) / 1000,
    )


def _fail(way: str, worker: subprocess.Popen[str], said: str) -> None:
    if worker.poll() is None:
        worker.kill()
    _out, err = worker.communicate()
    raise BenchError(f"a TLS load worker through {way} failed: {said.strip()}\n{err.strip()}")


def _percentile(histogram: Counter[int], fraction: float) -> float:
    """The latency (µs) at ``fraction`` of the samples: the middle of its bucket."""
    total = sum(histogram.values())
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= fraction * total:
            return math.exp((bucket + 0.5) * _BUCKET)
    return 0.0


# The worker: everything below runs in the load processes.


class _Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.histogram: Counter[int] = Counter()
        self.error: str | None = None
        self.start = self.end = 0.0  # the window, perf_counter

    def record(self, began: float, now: float) -> None:
        if self.start <= began and now <= self.end:
            self.requests += 1
            self.histogram[int(math.log(max(now - began, 1e-6) * 1e6) / _BUCKET)] += 1


class _Client(asyncio.Protocol):
    """One connection's client side: the answer to CONNECT, then responses over TLS."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.body_left = -1  # -1: waiting for a head
        self.head_only = False
        self.done: asyncio.Future[None] | None = None
        self.on_response: Callable[[], None] | None = None  # the keep-alive loop, once running

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def expect(self, *, head_only: bool = False) -> asyncio.Future[None]:
        self.head_only = head_only
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.body_left < 0:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            if not head.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")):
                self._fail(f"answered {head[:80]!r}")
                return
            self.body_left = 0 if self.head_only else content_length(head)
        if len(self.buffer) < self.body_left:
            return
        if len(self.buffer) > self.body_left:
            self._fail(f"{len(self.buffer) - self.body_left} bytes more than the response")
            return
        self.buffer.clear()
        self.body_left = -1
        if self.on_response is not None:
            self.on_response()
        elif self.done is not None and not self.done.done():
            self.done.set_result(None)

    def _fail(self, reason: str) -> None:
        error = BenchError(reason)
        if self.done is not None and not self.done.done():
            self.done.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or BenchError("the connection closed"))


async def _open(job: dict[str, Any], context: ssl.SSLContext) -> tuple[asyncio.Transport, _Client]:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(_Client, job["host"], job["port"])
    if job["connect"]:
        answered = client.expect(head_only=True)
        transport.write(connect_request(job["connect"]))
        await answered
    tls = await loop.start_tls(transport, client, context, server_hostname=job["server_name"])
    if tls is None:
        raise BenchError("start_tls gave no transport")
    client.transport = tls
    return tls, client


async def _exchange(transport: asyncio.Transport, client: _Client, request: bytes) -> None:
    answered = client.expect()
    transport.write(request)
    await answered


async def _keepalive(job: dict[str, Any], context: ssl.SSLContext, stats: _Stats) -> None:
    request = job["request"].encode()
    opened = [await _open(job, context) for _ in range(job["connections"])]
    for transport, client in opened:
        for _ in range(_WARM_UP_REQUESTS):
            await _exchange(transport, client, request)
    await _go(stats, job["duration"])
    finished = asyncio.get_running_loop().create_future()
    running = len(opened)

    def lane(transport: asyncio.Transport, client: _Client) -> None:
        began = time.perf_counter()

        def answered() -> None:
            nonlocal began, running
            now = time.perf_counter()
            stats.record(began, now)
            if now < stats.end:
                began = now
                transport.write(request)
            else:
                running -= 1
                if not running and not finished.done():
                    finished.set_result(None)

        client.on_response = answered
        client.done = finished  # a failure on any connection ends the run
        transport.write(request)

    for transport, client in opened:
        lane(transport, client)
    await asyncio.wait_for(finished, job["duration"] + 30)
    for transport, _client in opened:
        transport.abort()


async def _fresh(job: dict[str, Any], context: ssl.SSLContext, stats: _Stats) -> None:
    request = job["request"].encode()
    limit = job["limit"]

    async def one() -> None:
        transport, client = await _open(job, context)
        await _exchange(transport, client, request)
        transport.close()

    lanes = job["connections"] if limit is None else max(1, min(job["connections"], limit))
    await asyncio.gather(*(one() for _ in range(lanes)))  # the certificate is cached after
    await _go(stats, job["duration"] if limit is None else 1e9)
    left = limit

    async def lane() -> None:
        nonlocal left
        while left is None or left > 0:
            if left is not None:
                left -= 1
            began = time.perf_counter()
            if began >= stats.end:
                return
            await one()
            stats.record(began, time.perf_counter())

    await asyncio.gather(*(lane() for _ in range(lanes)))
    if limit is not None:
        stats.end = time.perf_counter()


async def _go(stats: _Stats, duration: float) -> None:
    """Say READY, wait for the parent's GO, open the window."""
    print(_READY, flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != _GO:
        raise BenchError(f"expected {_GO}, got {line!r}")
    stats.start = time.perf_counter()
    stats.end = stats.start + duration


def _worker(job: dict[str, Any]) -> dict[str, Any]:
    context = client_context(job["trust"])
    stats = _Stats()
    run = _keepalive if job["mode"] == "keepalive" else _fresh
    try:
        asyncio.run(run(job, context, stats))
    except (TimeoutError, OSError, ssl.SSLError, BenchError) as exc:
        stats.error = f"{type(exc).__name__}: {exc}"
    end = min(stats.end, time.perf_counter())
    return {
        "requests": stats.requests,
        "seconds": max(end - stats.start, 1e-9),
        "histogram": stats.histogram,
        "error": stats.error,
    }


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))), flush=True)


def settings_load(
    env: Env, route: Route, mode: Mode, meter: AbstractContextManager[object] | None = None
) -> TlsLoadResult:
    """S2's load (``keepalive``: its connections) or S3's (``fresh``: its lanes) on 1 KiB
    responses, sized by the run's settings: what the scenarios measure and --profile drives."""
    from bench.origin import SMALL_PATH  # not in the load workers, which run this file

    settings = env.settings
    return run_tls_load(
        route,
        SMALL_PATH,
        mode=mode,
        connections=settings.connections if mode == "keepalive" else settings.lanes,
        duration=settings.duration,
        core=env.cores.load,
        home=env.home,
        processes=settings.load_processes,
        meter=meter,
    )
