"""Add a header to every request and every response.

    waylay dump -s examples/add_header.py

The server sees `X-Waylay: request` on each request it gets, and the client sees
`X-Waylay: response` on each response. Both hooks run when a head arrives (`requestheaders`,
`responseheaders`), before its body is read, so no body is ever held for them: a header hook
costs nothing however large the bodies are.
"""

from waylay import Flow


def requestheaders(flow: Flow) -> None:
    # Setting a name replaces every line of it; headers.add() would append one more instead.
    flow.request.headers["X-Waylay"] = "request"


def responseheaders(flow: Flow) -> None:
    assert flow.response is not None  # always set by the time this hook runs
    flow.response.headers["X-Waylay"] = "response"
