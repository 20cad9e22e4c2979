"""S8's flow database: a million stored flows, built once with waylay's own bulk writer.

``python -m bench.flowdb DIRECTORY COUNT`` runs on the Python and the source tree of the waylay
being measured (waylay's modules, ``PYTHONPATH`` set by the caller), writes
``flows-COUNT-bB-sS.db`` into DIRECTORY unless it is there already, and prints its path. B is
the version of the recipe below and S waylay's schema version, so that a cached file is
rebuilt when either changes; DIRECTORY is ``bench/`` (git-ignored), so rounds and runs reuse
it. The flows go through ``waylay.store.bulk.append_flows`` (what `waylay har import`
uses) in one transaction: the file is what waylay itself would have written.

The flows are made up but shaped like a browsing session's, and chosen so that the filters of
S8 each match about 1% of them (a listing of 10,000 lines, not of a million):

- 1,000 hosts, 5 of them ``www.exampleN.test`` (``~d example``: 0.5%);
- GET mostly, POST for 2% of the flows; a quarter of the paths under ``/api/``
  (``~m POST & ~u /api``: 1%);
- 200 mostly, 404 for about 1% (``~c 404``), some 304 and 500;
- ten header fields each (five per head), as browsers and servers send; no bodies (their
  sizes are recorded): the filters measured never read the ``bodies`` table.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from waylay.flow import Flow

RECIPE = 1  # bump when the flows below change: cached files are then rebuilt
# S8's filters: metric key -> (expression, the share of the flows below that it matches).
FILTERS = {
    "domain": ("~d example", 5 / 1000),
    "status": ("~c 404", 1 / 97),
    "method_url": ("~m POST & ~u /api", 1 / 100),
}
_START = 1_767_225_600.0  # 2026-01-01, seconds since the epoch
_HOSTS = 1000
_EXAMPLE_EVERY = 200  # one host in 200 is www.exampleN.test


def database_name(count: int, schema_version: int) -> str:
    return f"flows-{count}-b{RECIPE}-s{schema_version}.db"


def _host(i: int) -> str:
    k = (i * 7919) % _HOSTS
    return f"www.example{k}.test" if k % _EXAMPLE_EVERY == 7 else f"www.site{k}.test"


def _status(i: int) -> int:
    if i % 97 == 5:
        return 404
    if i % 31 == 2:
        return 304
    if i % 499 == 11:
        return 500
    return 200


def _flows(count: int) -> Iterator[tuple[Flow, None, None]]:
    from waylay.flow import Flow, Request, Response, Timestamps
    from waylay.headers import Headers

    request_headers = [
        (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        (b"Accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
        (b"Accept-Encoding", b"gzip, deflate, br, zstd"),
        (b"Accept-Language", b"en-US,en;q=0.5"),
    ]
    for i in range(count):
        host = _host(i)
        api = i % 4 == 1
        method = "POST" if i % 50 == 3 else "GET"
        path = f"/api/v1/items/{i % 5000}" if api else f"/static/app-{i % 300}.js"
        status = _status(i)
        size = 0 if status == 304 else 512 + (i * 37) % 40_000
        kind = b"application/json" if api else b"text/javascript"
        started = _START + i * 0.01
        request = Request(
            method=method,
            scheme="https",
            host=host,
            port=443,
            path=path,
            http_version="HTTP/1.1",
            headers=Headers.wrap([(b"Host", host.encode()), *request_headers]),
        )
        response = Response(
            status_code=status,
            reason="OK" if status == 200 else "Not Found" if status == 404 else "Other",
            http_version="HTTP/1.1",
            headers=Headers.wrap(
                [
                    (b"Date", b"Thu, 01 Jan 2026 00:00:00 GMT"),
                    (b"Server", b"nginx"),
                    (b"Content-Type", kind),
                    (b"Content-Length", str(size).encode()),
                    (b"Cache-Control", b"max-age=3600"),
                ]
            ),
        )
        flow = Flow(
            client_address=("127.0.0.1", 40_000 + i % 20_000),
            request=request,
            server_address=("127.0.0.1", 443),
            response=response,
            timestamps=Timestamps(
                start=started,
                request_sent=started + 0.001,
                first_response_byte=started + 0.004,
                end=started + 0.005,
            ),
            request_body_size=64 if method == b"POST" else 0,
            response_body_size=size,
        )
        yield flow, None, None


def build(directory: Path, count: int) -> Path:
    """The database of ``count`` flows in ``directory``: built now unless cached."""
    from waylay.store.bulk import append_flows
    from waylay.store.schema import SCHEMA_VERSION

    path = directory / database_name(count, SCHEMA_VERSION)
    if path.exists():
        return path
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    append_flows(partial, _flows(count))
    os.replace(partial, path)
    return path


if __name__ == "__main__":
    print(build(Path(sys.argv[1]), int(sys.argv[2])))
