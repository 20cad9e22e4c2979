"""`--intercept EXPR`: pause matching flows until something resumes them.

Theory of operation
-------------------
A flow the filter matches is paused with `flow.intercept()`: in the `request` hook, with the
request whole and nothing sent to the server yet, and again in the `response` hook, with the
response whole and nothing sent to the client — each time the filter matches the flow as it
then is, as mitmproxy's intercept does. So `~q` pauses requests only (a flow with a response
no longer matches it), `~s` or `~c 200` responses only, and `~d example.test` both. A paused
flow waits, while the others go on, for `flow.resume()` — from a script, or later the web UI
— and goes on with whatever was changed meanwhile; `flow.kill()` drops it.

The addon runs after the other built-in rules, so a paused flow shows what will be sent.
Replayed flows (`waylay replay`) are never paused: nothing would be there to resume them.
Taking the `request` and `response` hooks means bodies are read whole before they go on (up
to the data path's limits), which is what lets an intercepted body be edited.
"""

from __future__ import annotations

from waylay.filters import Filter
from waylay.flow import Flow


class Intercept:
    """Pauses the flows ``filter`` matches, at the request and at the response."""

    def __init__(self, filter: Filter) -> None:
        self.filter = filter

    def request(self, flow: Flow) -> None:
        self._pause(flow)

    def response(self, flow: Flow) -> None:
        self._pause(flow)

    def _pause(self, flow: Flow) -> None:
        if flow.error is None and flow.replay_of is None and self.filter.matches(flow):
            flow.intercept()
