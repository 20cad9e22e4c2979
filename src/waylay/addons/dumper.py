"""`waylay dump`'s terminal output: one line per flow, as the flow ends.

It hooks only `response`, `error` and `tcp_end`, reads sizes the data path counted, and never
asks for a body, so printing flows costs no buffering. Colour only when writing to a terminal.
"""

from __future__ import annotations

import time
from typing import TextIO

from waylay.filters import Filter
from waylay.flow import Flow
from waylay.hooks import passive

_RESET = "\033[0m"
_BOLD = "\033[1m"
_DIM = "\033[2m"
_STATUS_COLOURS = {1: "\033[36m", 2: "\033[32m", 3: "\033[36m", 4: "\033[33m", 5: "\033[31m"}
_ERROR_COLOUR = "\033[31m"


def human_size(size: int) -> str:
    """Bytes as people read them: 512b, 1.5k, 12m, 3.2g."""
    if size < 1024:
        return f"{size}b"
    value = float(size)
    for unit in "kmgt":
        value /= 1024
        if value < 10:
            return f"{value:.1f}{unit}"
        if value < 1024 or unit == "t":
            return f"{value:.0f}{unit}"
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 100:
        return f"{seconds:.1f}s"
    return f"{seconds:.0f}s"


class Dumper:
    """Prints `time client METHOD URL status size duration` for every flow."""

    def __init__(
        self, out: TextIO, *, colour: bool | None = None, only: Filter | None = None
    ) -> None:
        self._out = out
        self._colour = out.isatty() if colour is None else colour
        # --filter: only flows that match are shown. With a body operator in it, the proxy
        # keeps each body whole for it (ProxyContext.keep_bodies), up to the body limit.
        self._only = only

    @passive
    def response(self, flow: Flow) -> None:
        if self._only is not None and not self._only.matches(flow):
            return
        response = flow.response
        assert response is not None
        status = str(response.status_code)
        if self._colour:
            status = f"{_STATUS_COLOURS.get(response.status_code // 100, '')}{status}{_RESET}"
        self._write(flow, f"{status} {human_size(flow.response_body_size)}")

    def error(self, flow: Flow) -> None:
        if self._only is not None and not self._only.matches(flow):
            return
        assert flow.error is not None
        text = f"<< {flow.error.reason}"
        if self._colour:
            text = f"{_ERROR_COLOUR}{text}{_RESET}"
        self._write(flow, text)

    def tcp_end(self, flow: Flow) -> None:
        if self._only is not None and not self._only.matches(flow):
            return
        sizes = (
            f"{human_size(flow.request_body_size)} up {human_size(flow.response_body_size)} down"
        )
        self._write(flow, sizes)

    def _write(self, flow: Flow, outcome: str) -> None:
        clock = time.strftime("%H:%M:%S", time.localtime(flow.timestamps.start))
        host, port = flow.client_address
        client = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        method = "TCP" if flow.kind == "tcp" else flow.request.method
        if self._colour:
            clock = f"{_DIM}{clock}{_RESET}"
            method = f"{_BOLD}{method}{_RESET}"
        duration = human_duration(flow.duration)
        self._out.write(f"{clock} {client} {method} {flow.request.url} {outcome} {duration}\n")
        self._out.flush()
