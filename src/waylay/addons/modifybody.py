"""`--modify-body /FILTER/REGEX/REPLACEMENT`: a regex replace in matching bodies.

Theory of operation
-------------------
The regex runs over the decoded body (`content`: gzip, deflate, br or zstd undone), as bytes,
with DOTALL as in mitmproxy (`.` crosses lines) and otherwise as written — case-sensitive
unless it says `(?i)`. Setting `content` encodes the new body as the old one was and fixes
its Content-Length. A body is only rewritten when the regex matched, so an untouched body keeps
its exact bytes.

REPLACEMENT is a regex template (`\\1`, `\\g<name>` refer to groups; checked against the regex
when the rule is parsed), or `@FILE`: the file's bytes, inserted literally — a file is data,
and its backslashes stay backslashes. The file is read each time the rule applies, so it can
change while waylay runs; one that cannot be read then skips the rule with a warning.

A rule applies to the request in the `request` hook and to the response in the `response`
hook, each when its filter matches the flow at that point (on the request side there is no
response yet, so `~s` or `~c` only match responses; `~q` only matches requests). Those hooks
see whole bodies, so with `--modify-body` every body is read whole before it goes on (up to
the data path's limits; a body that streamed past them has no `content` and is left alone).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from waylay.addons.rulespec import Rule, check_template, compile_regex, read_file, split_rule
from waylay.flow import Flow, Request, Response

FLAG = "--modify-body"

log = logging.getLogger("waylay.addons.modifybody")


@dataclass(frozen=True, slots=True)
class BodyRule:
    rule: Rule
    regex: re.Pattern[bytes]

    def replace(self, body: bytes) -> tuple[bytes, int]:
        """``body`` with every match replaced, and how many there were. OSError when the
        replacement file cannot be read."""
        path = self.rule.file
        if path is None:
            return self.regex.subn(self.rule.rest.encode("utf-8"), body)
        data = path.read_bytes()
        return self.regex.subn(lambda _: data, body)


def parse_body_rule(text: str) -> BodyRule:
    """One `--modify-body` rule; ConfigError when it is not one."""
    rule = split_rule(FLAG, text, subject="REGEX", rest="REPLACEMENT")
    regex = compile_regex(rule, rule.subject.encode("utf-8"), flags=re.DOTALL)
    path = rule.file
    if path is None:
        check_template(rule, regex, rule.rest.encode("utf-8"))
    else:
        read_file(rule, path)
    return BodyRule(rule, regex)


class ModifyBody:
    """The `--modify-body` rules, in the order given: each sees the body the one before left."""

    def __init__(self, rules: Sequence[BodyRule]) -> None:
        self.rules = tuple(rules)

    def request(self, flow: Flow) -> None:
        # An answer another addon already made means the request is not sent.
        if flow.response is None and flow.error is None:
            self._apply(flow, flow.request)

    def response(self, flow: Flow) -> None:
        if flow.response is not None and flow.error is None:
            self._apply(flow, flow.response)

    def _apply(self, flow: Flow, message: Request | Response) -> None:
        matching = [r for r in self.rules if r.rule.filter.matches(flow)]
        if not matching or message.raw_content is None:
            return
        try:
            body = message.content
        except ValueError as exc:
            log.warning("%s: %s left as it is: %s", FLAG, flow.request.url, exc)
            return
        assert body is not None
        changed = False
        for r in matching:
            try:
                body, count = r.replace(body)
            except OSError as exc:
                log.warning("%s %r: skipped: %s", FLAG, r.rule.text, exc)
                continue
            changed = changed or count > 0
        if changed:
            message.content = body


def modify_body(texts: Sequence[str]) -> ModifyBody | None:
    """The addon for these rules, or None when there are none. ConfigError for a bad one."""
    if not texts:
        return None
    return ModifyBody([parse_body_rule(text) for text in texts])
