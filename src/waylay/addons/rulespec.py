"""The text of a built-in rule: `/FILTER/SUBJECT/REPLACEMENT`, as mitmproxy writes it.

Theory of operation
-------------------
`--modify-headers`, `--modify-body`, `--map-remote` and `--map-local` take one rule each time
they are given, in the form mitmproxy users already write::

    rule   = SEP [ filter SEP ] subject SEP rest
    SEP    = the rule's first character, whatever it is
    filter = a filter expression (docs/flows.md), non-empty, without SEP
    subject= a header name, a regex: non-empty, without SEP
    rest   = everything after the SEP that ends the subject, SEPs included (may be empty)

The text is split at the first two separators after the first character. With two parts
the filter is left out and the rule applies to every flow; with three the rest runs to the
end, separators included, so `/~q/X-A/a/b` sets X-A to `a/b` — but `/X-A/a/b` is three parts
(filter `X-A`, name `a`, value `b`), which is why a value holding the separator needs a
filter, or another separator. There is no escaping: a rule whose filter or subject needs the
separator picks another one (`|~u a/b|X-A|1`). An empty filter with three parts (`//X-A/1`)
is refused rather than guessed at, as mitmproxy refuses it.

A rest starting with `@` names a file to read the value from (`@~/token.txt`), for the flags
that say so; there is no way to write a literal leading `@` other than putting it in a file.

Everything wrong with a rule is a ConfigError of one line: the flag, the rule as given, and
what is wrong — for a filter, where (the column counts in the rule, from 1). This module only
parses; the addons (modifyheaders.py and the others) decide what the parts mean.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import AnyStr

from waylay.errors import ConfigError
from waylay.filters import Filter, FilterError, parse_filter

# The filter of a rule written without one: every flow.
MATCH_ALL = parse_filter("~all")


def rule_error(flag: str, text: str, reason: str) -> ConfigError:
    """The one-line error for the rule ``text`` of ``flag``."""
    return ConfigError(f"{flag} {text!r}: {reason}")


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule split into its parts; the filter parsed, the others as written."""

    flag: str
    text: str
    filter: Filter
    subject: str
    rest: str

    def error(self, reason: str) -> ConfigError:
        return rule_error(self.flag, self.text, reason)

    @property
    def file(self) -> Path | None:
        """The file the rest names (`@FILE`), or None when the rest is the value itself."""
        if not self.rest.startswith("@"):
            return None
        return Path(self.rest[1:]).expanduser()


def split_rule(flag: str, text: str, *, subject: str, rest: str) -> Rule:
    """``text`` as a rule of ``flag``; ``subject`` and ``rest`` name the parts in errors
    (`NAME`, `VALUE`)."""
    if not text:
        raise rule_error(flag, text, "empty rule")
    sep, body = text[0], text[1:]
    parts = body.split(sep, 2)
    if len(parts) < 2:
        raise rule_error(
            flag,
            text,
            f"the first character {sep!r} is the separator: expected "
            f"{sep}FILTER{sep}{subject}{sep}{rest} or {sep}{subject}{sep}{rest}",
        )
    if len(parts) == 2:
        return _checked(Rule(flag, text, MATCH_ALL, parts[0], parts[1]), subject)
    source, middle, last = parts
    if not source.strip():
        raise rule_error(
            flag,
            text,
            f"empty filter: leave it out to match every flow ({sep}{subject}{sep}{rest})",
        )
    try:
        matcher = parse_filter(source)
    except FilterError as exc:
        # The filter starts after the separator: column 1 of the filter is column 2 here.
        raise rule_error(flag, text, f"filter: {exc.reason} at column {exc.column + 1}") from None
    return _checked(Rule(flag, text, matcher, middle, last), subject)


def _checked(rule: Rule, subject: str) -> Rule:
    if not rule.subject:
        raise rule.error(f"empty {subject}")
    return rule


def compile_regex(rule: Rule, pattern: AnyStr, *, flags: int = 0) -> re.Pattern[AnyStr]:
    """``pattern`` compiled, or the rule's error saying why it is not a regex."""
    try:
        with warnings.catch_warnings():
            # A FutureWarning ("possible nested set") is about the user's pattern, which still
            # compiles: it must not reach stderr as a Python warning.
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(pattern, flags)
    except re.error as exc:
        shown = pattern.decode("utf-8") if isinstance(pattern, bytes) else pattern
        raise rule.error(f"bad regex {shown!r}: {exc}") from None


def check_template(rule: Rule, regex: re.Pattern[AnyStr], template: AnyStr) -> None:
    """Refuse a replacement template that names a group ``regex`` lacks or has a bad
    escape — now, rather than on the first flow it applies to.

    A pattern of empty groups numbered and named as ``regex``'s always matches, and expanding
    the template against its match checks exactly what a real substitution would.
    """
    names = {index: name for name, index in regex.groupindex.items()}
    groups = "".join(
        f"(?P<{names[i]}>)" if i in names else "()" for i in range(1, regex.groups + 1)
    )
    empty = re.compile(groups.encode("ascii") if isinstance(template, bytes) else groups)
    match = empty.match(template[:0])
    assert match is not None
    try:
        match.expand(template)
    except (re.error, IndexError) as exc:
        shown = template.decode("utf-8") if isinstance(template, bytes) else template
        raise rule.error(f"bad replacement {shown!r}: {exc}") from None


def read_file(rule: Rule, path: Path) -> bytes:
    """The file a rule names with `@`; the rule's error when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise rule.error(f"cannot read @{path}: {exc.strerror or exc}") from None
