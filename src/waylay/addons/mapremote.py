"""`--map-remote /FILTER/REGEX/REPLACEMENT`: send matching requests to another URL.

Theory of operation
-------------------
The regex is substituted over the request's whole URL (`flow.request.url`, as
`https://api.example.test/v1/x?y=1`, the port shown only when it is not the scheme's default)
and the result set back as the URL: scheme, host, port and path all follow, and the request
goes to that server. Rules apply one after the other, each to the URL the one before left.
REPLACEMENT is a regex template (`\\1`, `\\g<name>`), checked against the regex when the rule
is parsed. A result that is not an absolute http(s) URL is not applied (a warning says so).

The Host header follows the authority: when the host or the port changes, Host becomes the
new `host[:port]` (as mitmproxy does), so the new server is asked for its own name. A request
without a Host header (HTTP/1.0) does not get one.

Rules run in `requestheaders`, so the request body still streams; only when a filter reads
bodies (`~b`) does the addon take the `request` hook instead. On the request side there is no
response yet, so a filter on the response (`~s`, `~c`) never matches. A CONNECT is not
rewritten (it names a tunnel, not a URL); the requests inside an intercepted tunnel are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from waylay.addons.rulespec import Rule, check_template, compile_regex, split_rule
from waylay.flow import Flow, Request

FLAG = "--map-remote"

log = logging.getLogger("waylay.addons.mapremote")


@dataclass(frozen=True, slots=True)
class RemoteRule:
    rule: Rule
    regex: re.Pattern[str]

    def rewrite(self, url: str) -> str:
        return self.regex.sub(self.rule.rest, url)


def parse_remote_rule(text: str) -> RemoteRule:
    """One `--map-remote` rule; ConfigError when it is not one."""
    rule = split_rule(FLAG, text, subject="REGEX", rest="REPLACEMENT")
    regex = compile_regex(rule, rule.subject)
    check_template(rule, regex, rule.rest)
    return RemoteRule(rule, regex)


def authority(request: Request) -> str:
    """`host[:port]` as a Host header names the request's server (RFC 9110 §7.2): the port
    only when it is not the scheme's default, an IPv6 address in brackets."""
    host = f"[{request.host}]" if ":" in request.host else request.host
    default = 443 if request.scheme == "https" else 80
    return host if request.port == default else f"{host}:{request.port}"


class MapRemote:
    """The `--map-remote` rules, in the order given."""

    # Which hook it takes depends on its filters (see the module docstring); the other stays
    # None, so the hook table skips it.
    requestheaders: Callable[[Flow], None] | None = None
    request: Callable[[Flow], None] | None = None

    def __init__(self, rules: Sequence[RemoteRule]) -> None:
        self.rules = tuple(rules)
        if any(r.rule.filter.uses_bodies for r in self.rules):
            self.request = self.map_request
        else:
            self.requestheaders = self.map_request

    def map_request(self, flow: Flow) -> None:
        request = flow.request
        if flow.response is not None or flow.error is not None or request.method == "CONNECT":
            return
        for r in self.rules:
            if not r.rule.filter.matches(flow):
                continue
            url = request.url
            new_url = r.rewrite(url)
            if new_url == url:
                continue
            before = authority(request)
            try:
                request.url = new_url
            except ValueError as exc:  # not an absolute http(s) URL
                log.warning("%s %r: %s not rewritten: %s", FLAG, r.rule.text, url, exc)
                continue
            after = authority(request)
            if after != before and "host" in request.headers:
                request.headers["Host"] = after


def map_remote(texts: Sequence[str]) -> MapRemote | None:
    """The addon for these rules, or None when there are none. ConfigError for a bad one."""
    if not texts:
        return None
    return MapRemote([parse_remote_rule(text) for text in texts])
