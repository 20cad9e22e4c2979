"""The flow model: one request, its response or error, and where and when they happened.

Fields are bytes as they were on the wire (names keep their case, headers their order), so an
addon or the store sees what the peers said, not a normalised copy. Bodies stream by default:
``content`` is None unless something asked for the whole body (see hooks.py); the sizes count
the body bytes that went through either way.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from waylay.http1.head import Headers

_flow_ids = itertools.count(1)


@dataclass(slots=True)
class Request:
    method: bytes
    scheme: str
    host: str
    port: int
    path: bytes
    http_version: bytes
    headers: Headers
    content: bytes | None = None
    trailers: Headers | None = None

    @property
    def url(self) -> str:
        """The URL as a user would type it (for CONNECT, the `host:port` it names)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.method == b"CONNECT":
            return f"{host}:{self.port}"
        if self.scheme == "tcp":
            return f"tcp://{host}:{self.port}"
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        path = "" if self.path == b"*" else self.path.decode("ascii", "replace")  # OPTIONS *
        return f"{self.scheme}://{host}{port}{path}"


@dataclass(slots=True)
class Response:
    status_code: int
    reason: bytes
    http_version: bytes
    headers: Headers
    content: bytes | None = None
    trailers: Headers | None = None


@dataclass(slots=True)
class Error:
    """Why a flow did not complete; ``code`` is the `X-Waylay-Error` code."""

    reason: str
    code: str


@dataclass(slots=True)
class Timestamps:
    """Seconds since the epoch; 0.0 until the event happened."""

    start: float = 0.0
    request_sent: float = 0.0
    first_response_byte: float = 0.0
    end: float = 0.0


@dataclass(slots=True)
class Flow:
    """One HTTP exchange through waylay — or, with ``kind`` "tcp", one raw TCP connection.

    A TCP flow's request names only its server (scheme "tcp", no method, path or headers);
    its body sizes count the bytes each way, and its captured bodies hold the first bytes.
    """

    client_address: tuple[str, int]
    request: Request
    server_address: tuple[str, int] | None = None
    response: Response | None = None
    error: Error | None = None
    timestamps: Timestamps = field(default_factory=Timestamps)
    request_body_size: int = 0
    response_body_size: int = 0
    id: int = field(default_factory=lambda: next(_flow_ids))
    # The flow's id in the flow store, once it has one; bits of what of its bodies the store
    # did not keep (store/schema.py: truncated at --body-limit, dropped when behind).
    store_id: int | None = None
    capture_flags: int = 0
    # The stored flow this one replays (waylay replay), if any.
    replay_of: int | None = None
    kind: str = "http"

    @property
    def duration(self) -> float:
        """Seconds from the request's start to the flow's end (0.0 while it is open)."""
        if not self.timestamps.end:
            return 0.0
        return self.timestamps.end - self.timestamps.start


@dataclass(slots=True)
class Client:
    """A client connection, as the client_connected and client_disconnected hooks see it."""

    address: tuple[str, int]
    connected_at: float
    disconnected_at: float = 0.0
