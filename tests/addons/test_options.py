"""Options for addons: declaring them, `--set` for an addon's and for waylay's own, and the
issue's rule and interception flags as they land in Options (their addons are tested apart).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest

from waylay.addons.options import AddonOptions, Loader
from waylay.cli import _flags, build_parser
from waylay.errors import ConfigError
from waylay.filters import Filter
from waylay.options import Options, apply_own_settings, build_options, parse_assignment

# -- declaring ------------------------------------------------------------------------------------


def declared(
    typespec: object, default: object, setting: str | None = None, *, bare: bool = False
) -> Any:
    """The value of an option of ``typespec`` after `--set name=SETTING` (or none, or bare)."""
    settings: dict[str, str | None] = {}
    if setting is not None or bare:
        settings["name"] = setting
    options = AddonOptions(settings)
    Loader(options, "addon.py").add_option("name", typespec, default, "help")
    options.check_settings()
    return options.values.name


@pytest.mark.parametrize(
    ("typespec", "default", "setting", "value"),
    [
        (bool, False, None, False),
        (bool, False, "true", True),
        (bool, True, "No", False),
        (bool, False, "on", True),
        (bool, True, "off", False),
        (bool, False, "1", True),
        (bool, True, "0", False),
        (bool, False, "YES", True),
        (int, 3, None, 3),
        (int, 3, "-12", -12),
        (float, 1, None, 1.0),  # an int default will do for a float
        (float, 1.5, "2.25", 2.25),
        (float, 1.5, "3", 3.0),
        (str, "hi", None, "hi"),
        (str, "hi", "a=b c", "a=b c"),
        (str, "hi", "", ""),
        (str | None, None, None, None),
        (str | None, None, "x", "x"),
        (str | None, "x", "", None),  # empty is None
        (Optional[str], None, "y", "y"),  # noqa: UP045 (the spelling users write)
    ],
)
def test_values_by_type(typespec: object, default: object, setting: str | None, value: Any) -> None:
    got = declared(typespec, default, setting)
    assert got == value and type(got) is type(value)


def test_a_bare_set_switches_a_bool_on() -> None:
    assert declared(bool, False, bare=True) is True
    with pytest.raises(ConfigError, match=r"^--set name: expected --set name=VALUE$"):
        declared(int, 1, bare=True)


@pytest.mark.parametrize(
    ("typespec", "setting", "expected"),
    [
        (bool, "maybe", "true or false (yes/no, on/off, 1/0)"),
        (int, "1.5", "a whole number"),
        (int, "ten", "a whole number"),
        (float, "fast", "a number"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_option(
    typespec: object, setting: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        declared(typespec, typespec(), setting)  # type: ignore[operator]
    name = typespec.__name__  # type: ignore[attr-defined]
    assert caught.value.reason == (
        f"--set name={setting!r}: expected {expected} for option name ({name}, of addon.py)"
    )


@pytest.mark.parametrize(
    ("name", "typespec", "default", "reason"),
    [
        ("quiet", bool, False, "option 'quiet' of a.py clashes with waylay's own option --quiet"),
        (
            "body_limit",
            int,
            1,
            "option 'body_limit' of a.py clashes with waylay's own option --body-limit",
        ),
        ("two words", str, "", "option 'two words' of a.py: a name must be a Python identifier"),
        ("class", str, "", "option 'class' of a.py: a name must be a Python identifier"),
        ("_private", str, "", "option '_private' of a.py: a name may not start with _"),
        ("n", list, [], "option 'n' of a.py: type <class 'list'> is not one of bool, int, float"),
        ("n", [str], [], "option 'n' of a.py: type [<class 'str'>] is not one of bool, int"),
        ("n", int, "3", "option 'n' of a.py: its default '3' is not of type int"),
        ("n", int, True, "option 'n' of a.py: its default True is not of type int"),
        ("n", bool, 1, "option 'n' of a.py: its default 1 is not of type bool"),
        ("n", str, None, "option 'n' of a.py: its default None is not of type str"),
    ],
)
def test_a_bad_declaration_is_an_error(
    name: str, typespec: object, default: object, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Loader(AddonOptions(), "a.py").add_option(name, typespec, default, "")
    assert caught.value.reason.startswith(reason)


def test_declaring_a_name_twice_names_both() -> None:
    options = AddonOptions()
    first, second = Loader(options, "a.py"), Loader(options, "b.py")
    first.add_option("word", str, "", "")
    with pytest.raises(ConfigError, match=r"^option 'word' is declared twice by a.py$"):
        first.add_option("word", str, "", "")
    with pytest.raises(ConfigError, match=r"^option 'word' is declared by a.py and by b.py$"):
        second.add_option("word", int, 0, "")


def test_an_unknown_setting_is_an_error_once_all_are_loaded() -> None:
    options = AddonOptions({"word": "x", "wrod": "y"})
    Loader(options, "a.py").add_option("word", str, "", "")
    with pytest.raises(ConfigError) as caught:
        options.check_settings()
    assert caught.value.reason.startswith("--set wrod=y: no such option")


def test_values_are_read_as_attributes_and_not_assigned() -> None:
    options = AddonOptions({"greeting-word": "hey"})  # dashes read as underscores
    loader = Loader(options, "a.py")
    loader.add_option("greeting_word", str, "hi", "")
    assert loader.options.greeting_word == "hey" and "greeting_word" in loader.options
    with pytest.raises(AttributeError, match="no addon option 'nope'"):
        _ = loader.options.nope
    with pytest.raises(AttributeError, match="set with --set"):
        loader.options.greeting_word = "x"
    assert [(o.name, o.type_name, o.metavar) for o in options] == [("greeting_word", "str", "TEXT")]


# -- --set for waylay's own options --------------------------------------------------------


def options_for(tmp_path: Path, *argv: str) -> tuple[Options, list[tuple[str, str | None]]]:
    args = build_parser().parse_args(["dump", "--confdir", str(tmp_path), *argv])
    flags = _flags(args)
    others = apply_own_settings(flags, [parse_assignment(t) for t in args.settings or ()])
    return build_options(flags), others


def test_set_reaches_waylays_own_options_by_their_long_name(tmp_path: Path) -> None:
    options, others = options_for(
        tmp_path,
        "--set", "body_limit=1m",
        "--set", "quiet=yes",
        "--set", "max-head-size=2k",
        "--set", "ignore-hosts=^a$",
        "--ignore-hosts", "^b$",
        "--set", "client_certs=c.pem",
        "--set", "passthrough_pinned",
        "--set", "greeting=hi",
    )  # fmt: skip
    assert options.body_limit == 1024 * 1024 and options.quiet and options.passthrough_pinned
    assert options.limits.max_head_size == 2048
    assert options.ignore_hosts == ("^b$", "^a$")  # a repeatable option takes both
    assert options.client_certs == (("*", Path("c.pem")),)
    assert others == [("greeting", "hi")]


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--set", "quiet=perhaps"], "--set quiet='perhaps': expected true or false"),
        (["--set", "body-limit=lots"], "--body-limit 'lots': expected a size"),
        (["--set", "listen"], "--set listen: expected --set listen=VALUE"),
        (["--set", "=1"], "--set '=1': expected NAME=VALUE"),
        (["-q", "--set", "quiet=no"], "--set quiet and --quiet both set quiet: give it once"),
        (["--set", "intercept=~q &"], "--intercept '~q &': "),
    ],
)
def test_set_of_a_bad_own_value_says_so(tmp_path: Path, argv: list[str], reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        options_for(tmp_path, *argv)
    assert caught.value.reason.startswith(reason)


def test_a_later_set_wins(tmp_path: Path) -> None:
    options, _ = options_for(tmp_path, "--set", "body_limit=1k", "--set", "body_limit=2k")
    assert options.body_limit == 2048


# -- the other flags, as Options -------------------------------------------------------


def test_rule_and_interception_flags_become_options(tmp_path: Path) -> None:
    options, _ = options_for(
        tmp_path,
        "--intercept", "~d example.test & ~q",
        "--stream-large-bodies", "1m",
        "--modify-headers", "/~q/X-A/1",
        "--modify-headers", "/~s/X-B/",
        "--modify-body", "/~s/foo/bar",
        "--map-remote", "|~q|http://a/|http://b/",
        "--map-local", "/~q/example/~/site",
        "--block", "~d ads.test",
        "--block", "~u /track",
    )  # fmt: skip
    assert isinstance(options.intercept, Filter)
    assert options.intercept.text == "~d example.test & ~q"
    assert options.stream_large_bodies == 1024 * 1024
    assert options.modify_headers == ("/~q/X-A/1", "/~s/X-B/")
    assert options.modify_body == ("/~s/foo/bar",)
    assert options.map_remote == ("|~q|http://a/|http://b/",)
    assert options.map_local == ("/~q/example/~/site",)
    assert options.block == ("~d ads.test", "~u /track")


def test_their_defaults(tmp_path: Path) -> None:
    options, _ = options_for(tmp_path)
    assert options.intercept is None and options.stream_large_bodies == 32 * 1024 * 1024
    assert options.modify_headers == options.block == options.map_local == ()


def test_they_are_config_file_keys(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'intercept = "~q"\nstream-large-bodies = "4k"\nblock = ["~d a.test", "~d b.test"]\n'
        'modify-headers = "/~q/X-A/1"\n'
    )
    options, _ = options_for(tmp_path, "--block", "~d c.test")
    assert options.intercept is not None and options.intercept.text == "~q"
    assert options.stream_large_bodies == 4096
    assert options.block == ("~d c.test",)  # flags win over the file, as for every option
    assert options.modify_headers == ("/~q/X-A/1",)


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--intercept", "~q &"], "--intercept '~q &': "),
        (["--stream-large-bodies", "big"], "--stream-large-bodies 'big': expected a size"),
    ],
)
def test_their_bad_values(tmp_path: Path, argv: list[str], reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        options_for(tmp_path, *argv)
    assert caught.value.reason.startswith(reason)
