"""Answer an API path with made-up JSON, never contacting the server.

    waylay dump -s examples/fake_api.py
    waylay dump -s examples/fake_api.py --set fake_api_path=/v2/users

A request whose path (without the query) is `fake_api_path` gets a `200` with a JSON list of
users made up here; the server is not connected to at all. Every other request goes on as
usual. Handy to work on a client before its API exists, or to try it against answers the
real API rarely gives.
"""

import json

from waylay import Flow, Loader, Response

USERS = [
    {"id": 1, "name": "Ada", "admin": True},
    {"id": 2, "name": "Grace", "admin": False},
]


class FakeApi:
    def load(self, loader: Loader) -> None:
        loader.add_option("fake_api_path", str, "/api/users", "the path answered with fake JSON")
        self.options = loader.options

    def request(self, flow: Flow) -> None:
        path, _, _ = flow.request.path.partition("?")
        if path != self.options.fake_api_path:
            return
        body = json.dumps({"users": USERS, "fake": True})
        # A response set in a request hook is sent to the client as it is: the server is
        # never contacted, and the response hooks still run on it.
        flow.response = Response.make(200, body, {"Content-Type": "application/json"})


addons = [FakeApi()]
