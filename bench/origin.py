"""The origin: nginx on loopback, one worker, pinned to the load core, config in a temp dir.

It serves a 1 KiB file and a large one (sparse: made in no time, read from no disk), over
HTTP and over HTTPS (a second ``listen ... ssl`` server, its certificate from the bench's own
CA: ``bench/pki.py``). TLS sessions are nginx's defaults (tickets on), as a real origin's.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.deps import tool
from bench.pki import OriginPki, make_origin_pki
from bench.process import Launched, clean_env, free_port, pinned
from bench.procstat import children_of, cpu_seconds

SMALL_PATH = "/1k"
SMALL_SIZE = 1024
ORIGIN_NAME = "origin.test"  # the name in the origin's certificate (and *.origin.test)

_CONFIG = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_rlimit_nofile 65536;
events {{
    worker_connections 16384;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    # Proxies keep their upstream connections: nginx must not close them every 1,000 requests.
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{http_port};
        root {dir}/www;
    }}
    server {{
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        root {dir}/www;
    }}
}}
"""


class Origin:
    """``with Origin(dir, core, bulk_size) as origin:`` — nginx running on ``origin.http_port``
    and ``origin.https_port``; ``origin.ca`` is the CA that trusts its certificate."""

    def __init__(self, directory: Path, core: int, bulk_size: int) -> None:
        self.dir = directory
        self.core = core
        self.bulk_size = bulk_size
        self.http_port = 0
        self.https_port = 0
        self.pki: OriginPki | None = None
        self._process: Launched | None = None

    @property
    def ca(self) -> Path:
        if self.pki is None:
            raise ValueError("the origin has not started")
        return self.pki.ca

    @property
    def bulk_path(self) -> str:
        return f"/bulk-{self.bulk_size}"

    @property
    def _bulk_file(self) -> Path:
        return self.dir / "www" / self.bulk_path.lstrip("/")

    def warm_bulk(self) -> None:
        """Read the large file once, so that nginx sends it from the page cache.

        Called before every download, not once: a machine may evict cold page cache on its
        own (these VMs run DAMON, which pages out what went untouched for a minute), and the
        first download after that would pay for filling the cache.
        """
        buffer = bytearray(1 << 20)
        with open(self._bulk_file, "rb", buffering=0) as file:
            while file.readinto(buffer):
                pass

    def _write_files(self) -> None:
        www = self.dir / "www"
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        www.mkdir(parents=True, exist_ok=True)
        (www / SMALL_PATH.lstrip("/")).write_bytes(b"x" * SMALL_SIZE)
        with open(self._bulk_file, "wb") as bulk:
            bulk.truncate(self.bulk_size)  # sparse: no disk blocks, zeros when read
        # nginx's worker drops root for nobody/www-data: let it read the files.
        for path in (self.dir, www, *www.iterdir()):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)

    def __enter__(self) -> Origin:
        self._write_files()
        self.pki = make_origin_pki(self.dir / "pki", (ORIGIN_NAME, f"*.{ORIGIN_NAME}"), "127.0.0.1")
        os.chmod(self.pki.key, 0o600)  # nginx's master reads it as root, before dropping
        self.http_port, self.https_port = free_port(), free_port()
        config = self.dir / "nginx.conf"
        config.write_text(
            _CONFIG.format(
                dir=self.dir,
                http_port=self.http_port,
                https_port=self.https_port,
                chain=self.pki.chain,
                key=self.pki.key,
            )
        )
        command = [tool("nginx"), "-p", str(self.dir), "-c", str(config), "-e", "stderr"]
        self._process = Launched("nginx", pinned(self.core, command), clean_env(self.dir))
        self._process.wait_port(self.http_port)
        self._process.wait_port(self.https_port)
        return self

    def cpu_seconds(self) -> float:
        """CPU time of nginx so far, master and worker."""
        if self._process is None:
            return 0.0
        master = self._process.pid
        return sum(cpu_seconds(pid) for pid in [master, *children_of(master)])

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.stop()
