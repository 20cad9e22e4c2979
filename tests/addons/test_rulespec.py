"""The rule text `/FILTER/SUBJECT/REST`: separators, parts, and every error, as tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from waylay.addons.block import parse_block_rule
from waylay.addons.maplocal import parse_local_rule
from waylay.addons.mapremote import parse_remote_rule
from waylay.addons.modifybody import parse_body_rule
from waylay.addons.modifyheaders import parse_header_rule
from waylay.addons.rulespec import MATCH_ALL, check_template, compile_regex, split_rule
from waylay.errors import ConfigError

# (rule, filter text or None for "every flow", subject, rest)
SPLITS = [
    ("/~d example.test/X-A/1", "~d example.test", "X-A", "1"),
    ("|~q|X-A|1", "~q", "X-A", "1"),
    (":~s:a/b:c", "~s", "a/b", "c"),
    ("#~m POST#X-A#1", "~m POST", "X-A", "1"),
    ("%~q%X-A%1", "~q", "X-A", "1"),
    (",~q,X-A,1", "~q", "X-A", "1"),
    (" ~q X-A 1", "~q", "X-A", "1"),
    ("\t~q\tX-A\t1", "~q", "X-A", "1"),
    ("a~qaX-Aa1", "~q", "X-A", "1"),  # any character, a letter too
    ("é~qéX-Aé1", "~q", "X-A", "1"),  # and beyond ASCII
    ("!~d a.test | ~d b.test!X-A!1", "~d a.test | ~d b.test", "X-A", "1"),
    # Two parts: no filter, every flow.
    ("/X-A/1", None, "X-A", "1"),
    ("|X-A|1", None, "X-A", "1"),
    ("/X-A/", None, "X-A", ""),  # an empty rest: remove the header
    # The rest runs to the end, separators included...
    ("/~q/X-A/a/b", "~q", "X-A", "a/b"),
    ("/~q/X-A/", "~q", "X-A", ""),
    ("/~q/X-A//", "~q", "X-A", "/"),
    # ...so a two-part rule with the separator in its value is three parts: the gotcha.
    ("/X-A/a/b", "X-A", "a", "b"),
    # No escaping: a backslash is an ordinary character, and the separator still splits.
    ("/~q/X\\/A/1", "~q", "X\\", "A/1"),
    ("/~q/a\\.b/@x", "~q", "a\\.b", "@x"),
]


@pytest.mark.parametrize(("text", "filter_text", "subject", "rest"), SPLITS)
def test_split(text: str, filter_text: str | None, subject: str, rest: str) -> None:
    rule = split_rule("--x", text, subject="NAME", rest="VALUE")
    assert (rule.subject, rule.rest) == (subject, rest)
    if filter_text is None:
        assert rule.filter is MATCH_ALL
    else:
        assert rule.filter.text == filter_text
    assert rule.text == text and rule.flag == "--x"


def test_file_part() -> None:
    assert split_rule("--x", "|X-A|@~/token", subject="N", rest="V").file == (Path.home() / "token")
    assert split_rule("--x", "|X-A|@rel/f", subject="N", rest="V").file == Path("rel/f")
    assert split_rule("--x", "|X-A|a@b", subject="N", rest="V").file is None
    # A path holds slashes: with "/" as the separator, it splits the rule.
    assert split_rule("--x", "/X-A/@/tmp/f", subject="N", rest="V").subject == "@"


# (rule, the message after "--x 'RULE': ")
SPLIT_ERRORS = [
    ("", "empty rule"),
    ("/", "the first character '/' is the separator: expected /FILTER/NAME/VALUE or /NAME/VALUE"),
    (
        "/X-A",
        "the first character '/' is the separator: expected /FILTER/NAME/VALUE or /NAME/VALUE",
    ),
    (
        "~d a/X/1",
        "the first character '~' is the separator: expected ~FILTER~NAME~VALUE or ~NAME~VALUE",
    ),
    ("//X-A/1", "empty filter: leave it out to match every flow (/NAME/VALUE)"),
    ("| |X-A|1", "empty filter: leave it out to match every flow (|NAME|VALUE)"),
    ("//1", "empty NAME"),
    ("/~q//1", "empty NAME"),
    ("/~zz/X-A/1", "filter: unknown operator '~zz' at column 2"),
    ("/~d a & ~zz/X-A/1", "filter: unknown operator '~zz' at column 9"),
    ("/~c abc/X-A/1", "filter: '~c' needs a status code (up to 3 digits), not 'abc' at column 5"),
    ("/~d/X-A/1", "filter: '~d' needs a regex at column 4"),
    ("/(~q/X-A/1", "filter: unclosed '(' at column 2"),
    ("/~u '/X-A/1", "filter: unterminated string: no closing ' at column 5"),
    ("/~q (/X-A/1", "filter: expected a filter at the end at column 6"),
]


@pytest.mark.parametrize(("text", "message"), SPLIT_ERRORS)
def test_split_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        split_rule("--x", text, subject="NAME", rest="VALUE")
    assert caught.value.reason == f"--x {text!r}: {message}"


def test_filter_column_points_into_the_rule() -> None:
    text = "/~d a & ~zz/X-A/1"
    with pytest.raises(ConfigError) as caught:
        split_rule("--x", text, subject="NAME", rest="VALUE")
    column = int(re.search(r"column (\d+)", caught.value.reason).group(1))  # type: ignore[union-attr]
    assert text[column - 1 :].startswith("~zz")


def _file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# Every error of every flag: (flag's parser, rule, a regex the message after the rule matches).
FLAG_ERRORS = [
    (parse_header_rule, "/X A/1", r"'X A' is not a valid header name \(RFC 9110 §5\.6\.2 token\)"),
    (parse_header_rule, "/X:A/1", r"'X:A' is not a valid header name"),
    (parse_header_rule, "/X-A/€", r"VALUE has characters outside Latin-1"),
    (parse_header_rule, "|X-A|@{missing}", r"cannot read @.*missing: No such file or directory"),
    (parse_header_rule, "|X-A|@{two_lines}", r"the value in @.*two-lines: it holds more than"),
    (parse_header_rule, "|X-A|@{nul}", r"the value in @.*nul: it holds more than one line"),
    (parse_header_rule, "|X-A|@{folder}", r"cannot read @.*: Is a directory"),
    (parse_header_rule, "//X-A/1", r"empty filter"),
    (parse_body_rule, "/(/x", r"bad regex '\(': missing \), unterminated subpattern"),
    (parse_body_rule, "/~q/a[/x", r"bad regex 'a\[': unterminated character set"),
    (parse_body_rule, "/a/\\1", r"bad replacement '\\\\1': invalid group reference 1"),
    (parse_body_rule, "/(?P<n>a)/\\g<m>", r"bad replacement '\\\\g<m>': unknown group name 'm'"),
    (parse_body_rule, "/a/\\q", r"bad replacement '\\\\q': bad escape \\q"),
    (parse_body_rule, "|a|@{missing}", r"cannot read @.*missing: No such file or directory"),
    (parse_body_rule, "//a/b", r"empty filter"),
    (parse_body_rule, "/~q//b", r"empty REGEX"),
    (parse_remote_rule, "/(/x", r"bad regex '\(': missing \)"),
    (parse_remote_rule, "/a/\\2", r"bad replacement '\\\\2': invalid group reference 2"),
    (parse_remote_rule, "/~zz/a/b", r"filter: unknown operator '~zz' at column 2"),
    (parse_remote_rule, "/~q//b", r"empty REGEX"),
    (parse_local_rule, "|a|{missing}", r"PATH .*missing does not exist"),
    (parse_local_rule, "|a|", r"empty PATH"),
    (parse_local_rule, "|(|{folder}", r"bad regex '\(': missing \)"),
    (parse_local_rule, "|~q||{folder}", r"empty URLREGEX"),
    (parse_local_rule, "|a|{loop}", r"PATH .*loop: "),
    (parse_block_rule, "~d a & ~zz", r"unknown operator '~zz' at column 8"),
    (parse_block_rule, "", r"empty filter expression at column 1"),
]


@pytest.mark.parametrize(("parse", "template", "message"), FLAG_ERRORS)
def test_flag_errors(parse: object, template: str, message: str, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    text = template.format(
        missing=tmp_path / "missing",
        two_lines=_file(tmp_path, "two-lines", b"a\nb\n"),
        nul=_file(tmp_path, "nul", b"a\0b"),
        folder=folder,
        loop=tmp_path / "loop",
    )
    with pytest.raises(ConfigError) as caught:
        parse(text)  # type: ignore[operator]
    reason = caught.value.reason
    assert "\n" not in reason
    flag = {
        parse_header_rule: "--modify-headers",
        parse_body_rule: "--modify-body",
        parse_remote_rule: "--map-remote",
        parse_local_rule: "--map-local",
        parse_block_rule: "--block",
    }[parse]  # type: ignore[index]
    prefix = f"{flag} {text!r}: "
    assert reason.startswith(prefix), reason
    assert re.fullmatch(message + ".*", reason[len(prefix) :]), reason


def test_good_rules_of_every_flag(tmp_path: Path) -> None:
    value = _file(tmp_path, "value", b"from a file\n")
    assert parse_header_rule(f"|X-A|@{value}").value() == b"from a file"
    assert parse_header_rule("/X-A/").value() == b""
    assert parse_body_rule("/(?P<w>a+)/<\\g<w>>").regex.pattern == b"(?P<w>a+)"
    assert parse_remote_rule("|^http://([^/]+)/|https://\\1/v2/").rule.rest == "https://\\1/v2/"
    assert parse_local_rule(f"|/static/|{tmp_path}").root == tmp_path.resolve()
    assert parse_block_rule("~d ads.example.test").filter.text == "~d ads.example.test"


def test_check_template_against_groups() -> None:
    rule = split_rule("--x", "/(a)(?P<n>b)/x", subject="R", rest="T")
    regex = compile_regex(rule, rule.subject)
    for good in ("\\1\\2\\g<n>\\g<0>", "plain", "\\n\\t"):
        check_template(rule, regex, good)
    for bad in ("\\3", "\\g<m>", "\\g<3>"):
        with pytest.raises(ConfigError):
            check_template(rule, regex, bad)
    bytes_regex = compile_regex(rule, b"(a)")
    check_template(rule, bytes_regex, b"\\1")
    with pytest.raises(ConfigError):
        check_template(rule, bytes_regex, b"\\2")
