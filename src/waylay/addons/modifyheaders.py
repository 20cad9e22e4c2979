"""`--modify-headers /FILTER/NAME/VALUE`: set, add or remove a header on matching flows.

Theory of operation
-------------------
Each rule applies to the request and to the response of every flow its filter matches, as
mitmproxy's modify_headers does. For one message, every rule's filter is tested first, on the
flow as it came; then every header a matching rule names is removed; then each matching rule
with a VALUE adds one line. So one rule replaces a header, two rules for the same name send
two lines, and a rule with an empty VALUE removes the header.

The filter sees the flow as it stands when the message's head arrives: on the request side
there is no response yet, so a filter on the response (`~s`, `~c 200`, `~hs`, `~ts`) never
matches a request, and `~q` ("no response yet") restricts a rule to requests. Rules run in the
`requestheaders` and `responseheaders` hooks, which need no body; only when some filter reads
bodies (`~b`) does the addon take the `request` and `response` hooks, where bodies are whole.

A VALUE of `@FILE` is read from FILE each time it applies (so it can change while waylay runs),
with its trailing line break removed; a value must be one line of Latin-1, which is checked
when the rule is parsed. A file that cannot be read later skips the rule with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from waylay.addons.rulespec import Rule, read_file, split_rule
from waylay.flow import Flow
from waylay.headers import Headers

FLAG = "--modify-headers"

log = logging.getLogger("waylay.addons.modifyheaders")


@dataclass(frozen=True, slots=True)
class HeaderRule:
    rule: Rule

    @property
    def name(self) -> str:
        return self.rule.subject

    def value(self) -> bytes:
        """The value to set (b"" removes the header); OSError or ValueError for a bad file."""
        path = self.rule.file
        if path is None:
            return self.rule.rest.encode("latin-1")
        return _file_value(path.read_bytes())


def _file_value(data: bytes) -> bytes:
    value = data.rstrip(b"\r\n")
    if b"\r" in value or b"\n" in value or b"\0" in value:
        raise ValueError("it holds more than one line (or a NUL)")
    return value


def parse_header_rule(text: str) -> HeaderRule:
    """One `--modify-headers` rule; ConfigError when it is not one."""
    rule = split_rule(FLAG, text, subject="NAME", rest="VALUE")
    path = rule.file
    if path is not None:
        try:
            value = _file_value(read_file(rule, path))
        except ValueError as exc:
            raise rule.error(f"the value in @{path}: {exc}") from None
    else:
        try:
            value = rule.rest.encode("latin-1")
        except UnicodeEncodeError:
            raise rule.error("VALUE has characters outside Latin-1") from None
    try:
        Headers([(rule.subject, value)])  # the checks every header an addon sets goes through
    except ValueError as exc:
        raise rule.error(str(exc)) from None
    return HeaderRule(rule)


class ModifyHeaders:
    """The `--modify-headers` rules, in the order given."""

    # Which hooks it takes depends on its filters (see the module docstring): the two it does
    # not take stay None, so the hook table skips them and nothing is buffered for them.
    requestheaders: Callable[[Flow], None] | None = None
    responseheaders: Callable[[Flow], None] | None = None
    request: Callable[[Flow], None] | None = None
    response: Callable[[Flow], None] | None = None

    def __init__(self, rules: Sequence[HeaderRule]) -> None:
        self.rules = tuple(rules)
        if any(r.rule.filter.uses_bodies for r in self.rules):
            self.request, self.response = self.modify_request, self.modify_response
        else:
            self.requestheaders = self.modify_request
            self.responseheaders = self.modify_response

    def modify_request(self, flow: Flow) -> None:
        # An answer another addon already made (--block, --map-local) is not sent to anyone.
        if flow.response is None and flow.error is None:
            self._apply(flow, flow.request.headers)

    def modify_response(self, flow: Flow) -> None:
        if flow.response is not None and flow.error is None:
            self._apply(flow, flow.response.headers)

    def _apply(self, flow: Flow, headers: Headers) -> None:
        matching: list[tuple[HeaderRule, bytes]] = []
        for r in self.rules:
            if not r.rule.filter.matches(flow):
                continue
            try:
                matching.append((r, r.value()))
            except (OSError, ValueError) as exc:
                log.warning("%s %r: skipped: %s", FLAG, r.rule.text, exc)
        for r, _ in matching:
            if r.name in headers:
                del headers[r.name]
        for r, value in matching:
            if value:
                headers.add(r.name, value)


def modify_headers(texts: Sequence[str]) -> ModifyHeaders | None:
    """The addon for these rules, or None when there are none. ConfigError for a bad one."""
    if not texts:
        return None
    return ModifyHeaders([parse_header_rule(text) for text in texts])
