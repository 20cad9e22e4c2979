"""Options: --listen syntax, config.toml, precedence and validation."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path

import pytest

from waylay.errors import ConfigError
from waylay.options import LIMIT_FLAGS, Limits, ListenAddress, build_options, parse_listen


@pytest.mark.parametrize(
    ("text", "host", "port", "shown"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080, "127.0.0.1:8080"),
        ("127.0.0.1:0", "127.0.0.1", 0, "127.0.0.1:0"),
        ("*:8080", "*", 8080, "*:8080"),
        ("[::1]:9000", "::1", 9000, "[::1]:9000"),
        ("localhost:1", "localhost", 1, "localhost:1"),
        ("0.0.0.0:65535", "0.0.0.0", 65535, "0.0.0.0:65535"),
    ],
)
def test_parse_listen(text: str, host: str, port: int, shown: str) -> None:
    listen = parse_listen(text)
    assert listen == ListenAddress(host, port)
    assert listen.display() == shown


def test_star_is_one_dual_stack_socket() -> None:
    listen = parse_listen("*:0")
    assert listen.dual_stack and listen.bind_host == "::"


@pytest.mark.parametrize(
    "text",
    [
        "nonsense",
        "8080",
        ":8080",
        "127.0.0.1:",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:\uff18\uff10",  # fullwidth digits are not a port
        "::1:8080",
        "[nothost]:80",
        "example.test:80",
        "127.0.0.1:80x",
    ],
)
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="--listen"):
        parse_listen(text)


def _flags(confdir: Path, **given: object) -> dict[str, object]:
    flags: dict[str, object] = dict.fromkeys(("listen", "hosts", "hosts_only", "quiet"))
    flags["confdir"] = str(confdir)
    flags.update(given)
    return flags


def test_defaults(tmp_path: Path) -> None:
    options = build_options(_flags(tmp_path))
    assert options.listen == ListenAddress("127.0.0.1", 8080)
    assert options.quiet is False and options.hosts is None and options.hosts_only is False
    assert options.confdir == tmp_path


def test_config_file_then_flags(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'listen = "127.0.0.1:0"\nquiet = true\nhosts = "/etc/hosts-x"\nhosts-only = true\n'
    )
    options = build_options(_flags(tmp_path))
    assert options.listen.port == 0 and options.quiet and options.hosts_only
    assert options.hosts == Path("/etc/hosts-x")
    overridden = build_options(_flags(tmp_path, listen="[::1]:7000"))
    assert overridden.listen == ListenAddress("::1", 7000)


def test_confdir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLAY_CONFDIR", str(tmp_path))
    (tmp_path / "config.toml").write_text("quiet = true\n")
    flags = _flags(tmp_path)
    flags["confdir"] = None
    assert build_options(flags).quiet is True


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("scripts = ['a.py']\n", "unknown setting 'scripts'"),
        ("quiet = 'yes'\n", "wrong type"),
        ("listen = [1]\n", "wrong type"),
        ("quiet = \n", "not valid TOML"),
        ("listen = 'nonsense'\n", "--listen"),
        ("hosts-only = true\n", "--hosts-only needs --hosts"),
    ],
)
def test_bad_config_is_a_config_error(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(config)
    with pytest.raises(ConfigError, match=message):
        build_options(_flags(tmp_path))


def test_upstream_timeout_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLAY_UPSTREAM_TIMEOUT", "1.5")
    limits = build_options(_flags(tmp_path)).limits
    assert limits.upstream_timeout == 1.5 and limits.connect_timeout == 1.5
    monkeypatch.setenv("WAYLAY_UPSTREAM_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="WAYLAY_UPSTREAM_TIMEOUT"):
        build_options(_flags(tmp_path))


def test_interception_options_from_flags(tmp_path: Path) -> None:
    options = build_options(
        _flags(
            tmp_path,
            ignore_hosts=[r"^bank\.", "example:443$"],
            insecure=True,
            upstream_ca="corp.pem",
            passthrough_pinned=True,
            client_certs=["client.pem", "API.example.test.=api.pem"],
            certs=["*.example.test=own.pem"],
        )
    )
    assert options.ignore_hosts == (r"^bank\.", "example:443$")
    assert options.insecure and options.passthrough_pinned
    assert options.upstream_ca == Path("corp.pem")
    assert options.client_certs == (
        ("*", Path("client.pem")),
        ("api.example.test", Path("api.pem")),
    )
    assert options.certs == (("*.example.test", Path("own.pem")),)


def test_interception_options_from_config(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'ignore-hosts = "^bank"\nupstream-ca = "corp.pem"\ninsecure = true\n'
    )
    options = build_options(_flags(tmp_path))
    assert options.ignore_hosts == ("^bank",)
    assert options.upstream_ca == tmp_path / "corp.pem"  # next to the file
    assert options.insecure


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("ignore_hosts", ["(unclosed"], "not a regular expression"),
        ("certs", ["own.pem"], "expected DOMAIN=FILE"),
        ("certs", ["=own.pem"], "expected NAME=FILE"),
        ("client_certs", ["api.example.test="], "expected NAME=FILE"),
    ],
)
def test_bad_interception_options(
    tmp_path: Path, flag: str, value: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_options(_flags(tmp_path, **{flag: value}))


def test_transparent_options(tmp_path: Path) -> None:
    options = build_options(
        _flags(tmp_path, mode="transparent", upstream_mark="0x2a", peek_timeout="0.25")
    )
    assert options.mode == "transparent"
    assert options.upstream_mark == 42
    assert options.limits.peek_timeout == 0.25
    defaults = build_options(_flags(tmp_path))
    assert defaults.mode == "regular" and defaults.upstream_mark is None
    assert defaults.limits.peek_timeout == 1.0


def test_transparent_options_from_config(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'mode = "transparent"\nupstream-mark = 7\npeek-timeout = 2\n'
    )
    options = build_options(_flags(tmp_path))
    assert (options.mode, options.upstream_mark, options.limits.peek_timeout) == (
        "transparent",
        7,
        2.0,
    )


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("mode", "reverse", "expected one of regular, transparent"),
        ("upstream_mark", "0", "from 1 to 0xffffffff"),
        ("upstream_mark", "0x100000000", "from 1 to 0xffffffff"),
        ("upstream_mark", "mark", "from 1 to 0xffffffff"),
        ("peek_timeout", "soon", "expected seconds"),
        ("peek_timeout", "-1", "between 0 and 3600"),
        ("peek_timeout", "nan", "between 0 and 3600"),
    ],
)
def test_bad_transparent_options(tmp_path: Path, flag: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_options(_flags(tmp_path, **{flag: value}))


def test_allow_from_and_server_replay_ignore_content(tmp_path: Path) -> None:
    options = build_options(_flags(tmp_path, allow_from=["10.0.0.0/8", "fd00::/8"]))
    assert [str(network) for network in options.allow_from] == ["10.0.0.0/8", "fd00::/8"]
    with pytest.raises(ConfigError, match="--allow-from 'nowhere'"):
        build_options(_flags(tmp_path, allow_from=["nowhere"]))
    with pytest.raises(ConfigError, match="--server-replay-ignore-content needs --server-replay"):
        build_options(_flags(tmp_path, server_replay_ignore_content=True))


def test_proxyauth_is_refused_in_transparent_mode(tmp_path: Path) -> None:
    assert build_options(_flags(tmp_path, proxyauth="ada:pw")).proxyauth == "ada:pw"
    with pytest.raises(ConfigError, match="--proxyauth cannot work in transparent mode"):
        build_options(_flags(tmp_path, proxyauth="ada:pw", mode="transparent"))


# --- limits and timeouts (issue 9, point 4) ---------------------------------------------


def test_limits_have_safe_defaults(tmp_path: Path) -> None:
    limits = build_options(_flags(tmp_path)).limits
    assert limits == Limits()
    assert (limits.max_head_size, limits.max_headers, limits.max_peek_size) == (65536, 100, 65536)
    assert limits.max_connections == 4096
    assert (limits.head_timeout, limits.client_idle_timeout) == (30.0, 300.0)
    assert (limits.connect_timeout, limits.upstream_timeout) == (10.0, 60.0)
    assert (limits.upstream_idle_timeout, limits.tls_handshake_timeout) == (60.0, 10.0)


def test_every_limit_is_an_option() -> None:
    assert set(LIMIT_FLAGS) == {f.name for f in fields(Limits)}


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("max_head_size", "16k", 16384),
        ("max_head_size", 2048, 2048),
        ("max_headers", "20", 20),
        ("max_peek_size", "1m", 1024 * 1024),
        ("max_connections", "3", 3),
        ("connect_timeout", "2.5", 2.5),
        ("upstream_timeout", "90", 90.0),
        ("upstream_idle_timeout", "0.5", 0.5),
        ("client_idle_timeout", "600", 600.0),
        ("head_timeout", "2", 2.0),
        ("peek_timeout", "0.25", 0.25),
        ("tls_handshake_timeout", "5", 5.0),
    ],
)
def test_each_limit_from_a_flag(tmp_path: Path, name: str, given: object, expected: float) -> None:
    limits = build_options(_flags(tmp_path, **{name: given})).limits
    assert getattr(limits, name) == expected
    # The others keep their defaults.
    assert replace(limits, **{name: getattr(Limits(), name)}) == Limits()


def test_limits_from_config_and_flags_win(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        'max-connections = 50\nhead-timeout = 5\nmax-head-size = "32k"\nupstream-idle-timeout = 7\n'
    )
    limits = build_options(_flags(tmp_path)).limits
    assert (limits.max_connections, limits.head_timeout, limits.max_head_size) == (50, 5.0, 32768)
    assert limits.upstream_idle_timeout == 7.0
    assert build_options(_flags(tmp_path, head_timeout="1")).limits.head_timeout == 1.0


def test_a_flag_wins_over_the_upstream_timeout_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYLAY_UPSTREAM_TIMEOUT", "1.5")
    assert build_options(_flags(tmp_path, upstream_timeout="3")).limits.upstream_timeout == 3.0


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [
        ("max_head_size", "100", "expected 1024 to 16777216"),
        ("max_head_size", "big", "expected a size"),
        ("max_headers", "0", "expected 1 to 10000"),
        ("max_headers", "1.5", "expected a whole number"),
        ("max_connections", "-1", "expected a whole number"),
        ("max_connections", True, "expected a whole number"),
        ("head_timeout", "0", "between 0 and 3600"),
        ("head_timeout", "soon", "expected seconds"),
        ("upstream_idle_timeout", "inf", "between 0 and 86400"),
        ("client_idle_timeout", "nan", "between 0 and 86400"),
    ],
)
def test_bad_limits(tmp_path: Path, name: str, given: object, message: str) -> None:
    flag = "--" + name.replace("_", "-")
    with pytest.raises(ConfigError, match=f"{flag} .*{message}"):
        build_options(_flags(tmp_path, **{name: given}))


def test_strict_permissions_from_flag_and_config(tmp_path: Path) -> None:
    assert build_options(_flags(tmp_path)).strict_permissions is False
    assert build_options(_flags(tmp_path, strict_permissions=True)).strict_permissions
    (tmp_path / "config.toml").write_text("strict-permissions = true\n")
    assert build_options(_flags(tmp_path)).strict_permissions
    assert not build_options(_flags(tmp_path, strict_permissions=False)).strict_permissions


def test_every_limit_is_a_flag_of_dump(tmp_path: Path) -> None:
    from waylay.cli import _flags as cli_flags
    from waylay.cli import build_parser

    argv = ["dump", "--confdir", str(tmp_path)]
    for name in LIMIT_FLAGS:
        argv += ["--" + name.replace("_", "-"), "7"] if "size" not in name else []
    argv += ["--max-head-size", "8k", "--max-peek-size", "8k"]
    limits = build_options(cli_flags(build_parser().parse_args(argv))).limits
    assert limits.max_head_size == limits.max_peek_size == 8192
    assert all(getattr(limits, name) == 7 for name in LIMIT_FLAGS if "size" not in name)


def test_the_web_ui_options_from_flags_and_config(tmp_path: Path) -> None:
    options = build_options(_flags(tmp_path))
    assert options.web == ListenAddress("127.0.0.1", 8081) and options.web_password is None
    (tmp_path / "config.toml").write_text('web = "[::1]:9000"\nweb-password = "from the file"\n')
    options = build_options(_flags(tmp_path))
    assert options.web == ListenAddress("::1", 9000)
    assert options.web_password == "from the file"
    flagged = build_options(_flags(tmp_path, web="*:0", web_password="from the flag"))
    assert flagged.web == ListenAddress("*", 0) and flagged.web_password == "from the flag"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"web": "8081"}, "--web '8081': expected HOST:PORT"),
        ({"web": "example.test:8081"}, "--web 'example.test:8081': 'example.test' is not an IP"),
        ({"web_password": ""}, "--web-password: an empty password would let anyone in"),
    ],
)
def test_bad_web_ui_options(tmp_path: Path, given: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_options(_flags(tmp_path, **given))
