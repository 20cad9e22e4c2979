"""`--block EXPR`: answer matching requests with a 403 and never contact their server.

Theory of operation
-------------------
Each `--block` is a filter expression; a request any of them matches is answered by waylay
with `403 Forbidden`, a one-line text body naming the rule, and `X-Waylay-Error: blocked`, so
a client or a script can tell it from a server's own 403. The answer is made in
`requestheaders`, so neither the request body is read nor a connection opened; only when a
filter reads bodies (`~b`) does the addon take the `request` hook, where the body is whole.

A CONNECT the filter matches (`~d ads.example.test` matches a tunnel to that host) is refused
in `http_connect` with the same 403, before waylay connects anywhere; the requests inside a
tunnel that was let through are each tested again.

Filters are tested on the request alone: there is no response yet, so a filter on the
response (`~s`, `~c 404`, `~hs`, `~ts`, `~a`) never blocks anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from waylay.errors import ConfigError
from waylay.filters import Filter, FilterError, parse_filter
from waylay.flow import Flow, Response

FLAG = "--block"


@dataclass(frozen=True, slots=True)
class BlockRule:
    text: str
    filter: Filter

    def response(self) -> Response:
        return Response.make(
            403,
            f"waylay: blocked by {FLAG} {self.text!r}\n",
            [("Content-Type", "text/plain; charset=utf-8"), ("X-Waylay-Error", "blocked")],
        )


def parse_block_rule(text: str) -> BlockRule:
    """One `--block` expression; ConfigError (with the column) when it is not a filter."""
    try:
        return BlockRule(text, parse_filter(text))
    except FilterError as exc:
        raise ConfigError(f"{FLAG} {text!r}: {exc.reason} at column {exc.column}") from None


class Block:
    """The `--block` rules: the first that matches answers."""

    # Which request hook it takes depends on its filters (see the module docstring); the other
    # stays None, so the hook table skips it.
    requestheaders: Callable[[Flow], None] | None = None
    request: Callable[[Flow], None] | None = None

    def __init__(self, rules: Sequence[BlockRule]) -> None:
        self.rules = tuple(rules)
        if any(r.filter.uses_bodies for r in self.rules):
            self.request = self.block
        else:
            self.requestheaders = self.block

    def http_connect(self, flow: Flow) -> None:
        self.block(flow)

    def block(self, flow: Flow) -> None:
        if flow.response is not None or flow.error is not None:
            return
        for r in self.rules:
            if r.filter.matches(flow):
                flow.response = r.response()
                return


def block(texts: Sequence[str]) -> Block | None:
    """The addon for these expressions, or None when there are none. ConfigError for a bad
    one."""
    if not texts:
        return None
    return Block([parse_block_rule(text) for text in texts])
