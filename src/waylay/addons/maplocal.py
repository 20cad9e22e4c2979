"""`--map-local /FILTER/URLREGEX/PATH`: answer matching requests from local files.

Theory of operation
-------------------
A rule applies to a request its filter matches whose URL (`flow.request.url`) URLREGEX finds.
PATH is a file or a folder, resolved (symlinks and `~` followed) when the rule is parsed; it
must exist then. A file is the answer to every URL the rule applies to. For a folder, the part
of the URL after what URLREGEX matched — or its first group, if it has one, as in mitmproxy —
without the query, names a file below PATH; a folder there means its `index.html`. The answer
is a 200 with the file's bytes and a Content-Type guessed from its name (none when unknown).
Rules are tried in order and the first file found answers; when a rule applied but no rule
found a file, the answer is a 404 (`X-Waylay-Error: not-in-map-local`). Either way the server
is not contacted.

Whatever the URL holds, no file outside PATH is ever served. The URL part is percent-decoded
exactly once (so `%252e%252e` names a file called `%2e%2e`, inside PATH); a result that is not
UTF-8, or holds a backslash or NUL, or a `..` segment, answers 404; empty and `.` segments are
dropped, so `//etc/passwd` is `etc/passwd` below PATH. The candidate is then resolved with its
symlinks and must still be inside PATH — a link inside that points outside answers 404 — and
it is opened without following a last symlink, and must be a regular file.

The answer is made in `requestheaders`, so the request body is never read; only when a
filter reads bodies (`~b`) does the addon take the `request` hook instead. The file is read
whole into memory (Response.make holds a body): map large files with care. A CONNECT is never
answered from files (the requests inside an intercepted tunnel are).
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from waylay.addons.rulespec import Rule, compile_regex, split_rule
from waylay.flow import Flow, Response

FLAG = "--map-local"
INDEX = "index.html"

log = logging.getLogger("waylay.addons.maplocal")


@dataclass(frozen=True, slots=True)
class LocalRule:
    rule: Rule
    regex: re.Pattern[str]
    root: Path  # resolved: no symlinks, absolute

    def url_part(self, url: str) -> str | None:
        """What of ``url`` names a file below the root (still percent-encoded), or None when
        the rule's regex does not find the URL."""
        match = self.regex.search(url)
        if match is None:
            return None
        part = (match.group(1) or "") if self.regex.groups else url[match.end() :]
        return part.split("?", 1)[0]


def parse_local_rule(text: str) -> LocalRule:
    """One `--map-local` rule; ConfigError when it is not one or PATH does not exist."""
    rule = split_rule(FLAG, text, subject="URLREGEX", rest="PATH")
    regex = compile_regex(rule, rule.subject)
    if not rule.rest:
        raise rule.error("empty PATH")
    try:
        root = Path(rule.rest).expanduser().resolve(strict=True)
    except FileNotFoundError:
        raise rule.error(f"PATH {rule.rest} does not exist") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise rule.error(f"PATH {rule.rest}: {getattr(exc, 'strerror', None) or exc}") from None
    if not (root.is_file() or root.is_dir()):
        raise rule.error(f"PATH {rule.rest} is neither a file nor a folder")
    return LocalRule(rule, regex, root)


def local_file(root: Path, url_part: str) -> Path | None:
    """The regular file below the folder ``root`` that ``url_part`` (percent-encoded) names,
    resolved; None when there is none or the name is refused (see the module docstring)."""
    try:
        name = unquote_to_bytes(url_part).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\\" in name or "\0" in name:
        return None
    segments = [s for s in name.split("/") if s not in ("", ".")]
    if ".." in segments:
        return None
    found = _inside(root, root.joinpath(*segments))
    if found is not None and found.is_dir():
        found = _inside(root, found / INDEX)
    return found if found is not None and found.is_file() else None


def _inside(root: Path, candidate: Path) -> Path | None:
    """``candidate`` with its symlinks resolved, if it exists and is ``root`` or below it."""
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a NUL
        return None
    return resolved if resolved.is_relative_to(root) else None


def read_regular_file(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is (still) a regular file and not a symlink, else None."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        return file.read()


def _file_response(path: Path, content: bytes) -> Response:
    headers = []
    kind, _ = mimetypes.guess_type(path.name)
    if kind is not None:
        headers.append(("Content-Type", kind))
    return Response.make(200, content, headers)


NOT_FOUND_BODY = "waylay: --map-local has no file for this URL\n"


def _not_found() -> Response:
    return Response.make(
        404,
        NOT_FOUND_BODY,
        [("Content-Type", "text/plain; charset=utf-8"), ("X-Waylay-Error", "not-in-map-local")],
    )


class MapLocal:
    """The `--map-local` rules, in the order given."""

    # Which hook it takes depends on its filters (see the module docstring); the other stays
    # None, so the hook table skips it.
    requestheaders: Callable[[Flow], None] | None = None
    request: Callable[[Flow], None] | None = None

    def __init__(self, rules: Sequence[LocalRule]) -> None:
        self.rules = tuple(rules)
        if any(r.rule.filter.uses_bodies for r in self.rules):
            self.request = self.answer
        else:
            self.requestheaders = self.answer

    def answer(self, flow: Flow) -> None:
        if flow.response is not None or flow.error is not None:
            return
        if flow.request.method == "CONNECT":
            return
        url = flow.request.url
        applied = False
        for r in self.rules:
            if not r.rule.filter.matches(flow):
                continue
            part = r.url_part(url)
            if part is None:
                continue
            applied = True
            path = r.root if r.root.is_file() else local_file(r.root, part)
            content = None if path is None else read_regular_file(path)
            if path is not None and content is not None:
                flow.response = _file_response(path, content)
                return
        if applied:
            log.info("%s: no file for %s", FLAG, url)
            flow.response = _not_found()


def map_local(texts: Sequence[str]) -> MapLocal | None:
    """The addon for these rules, or None when there are none. ConfigError for a bad one."""
    if not texts:
        return None
    return MapLocal([parse_local_rule(text) for text in texts])
