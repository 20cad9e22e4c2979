"""Log the JSON bodies of requests and responses to a file, one JSON object per line.

    waylay dump -s examples/log_json.py --set json_log=bodies.jsonl

Each line is `{"url": ..., "side": "request" or "response", "status": ..., "body": ...}`,
the body parsed (or as text when it is not valid JSON). Only messages whose Content-Type says
JSON are read whole: the others are told to stream as soon as their head arrives, so a large
download never waits in memory for a hook that would not look at it.
"""

import json
from pathlib import Path
from typing import Any

from waylay import Flow, Loader, Request, Response


def is_json(message: Request | Response) -> bool:
    content_type = message.headers.get("content-type", "").lower()
    return "json" in content_type.partition(";")[0]


class LogJson:
    def load(self, loader: Loader) -> None:
        loader.add_option("json_log", str, "json-bodies.jsonl", "the file the lines go to")
        self.options = loader.options

    # The request and response hooks below make bodies wait for them, whole; these two let
    # every body that is not JSON stream past them instead.
    def requestheaders(self, flow: Flow) -> None:
        if not is_json(flow.request):
            flow.request.stream = True

    def responseheaders(self, flow: Flow) -> None:
        assert flow.response is not None
        if not is_json(flow.response):
            flow.response.stream = True

    def request(self, flow: Flow) -> None:
        self.write(flow, "request", flow.request)

    def response(self, flow: Flow) -> None:
        assert flow.response is not None
        self.write(flow, "response", flow.response)

    def write(self, flow: Flow, side: str, message: Request | Response) -> None:
        # raw_content is None when the body streamed past the hook: not JSON, or larger than
        # --stream-large-bodies (32m unless set).
        raw = message.raw_content
        if not is_json(message) or not raw:
            return
        body: Any
        try:
            body = message.json()  # parses content: the body with its gzip, br... undone
        except ValueError:  # not JSON after all, or its Content-Encoding is broken
            body = raw.decode("utf-8", "replace")
        line: dict[str, Any] = {"url": flow.request.url, "side": side, "body": body}
        if flow.response is not None:
            line["status"] = flow.response.status_code
        with Path(self.options.json_log).open("a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


addons = [LogJson()]
