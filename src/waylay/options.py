"""One frozen options object: the defaults, then `config.toml` in the confdir, then the flags.

The config file's keys are the long flag names (`hosts-only = true`); a key waylay does not
know is an error, as an unknown flag is, so a typo never silently does nothing. Validation
happens here, once, so the rest of the program receives values it can use as they are.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from waylay.access import Network, parse_networks
from waylay.errors import ConfigError
from waylay.filters import Filter, FilterError, parse_filter

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_WEB = "127.0.0.1:8081"


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where a listener binds. `*` binds one dual-stack `::` socket."""

    host: str
    port: int

    @property
    def dual_stack(self) -> bool:
        return self.host == "*"

    @property
    def bind_host(self) -> str:
        return "::" if self.dual_stack else self.host

    def display(self, port: int | None = None) -> str:
        shown_port = self.port if port is None else port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{shown_port}"


def parse_listen(text: str, flag: str = "--listen") -> ListenAddress:
    """`HOST:PORT`, `[V6]:PORT` or `*:PORT`; port 0 means any free port. Errors name ``flag``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdecimal() or not port_text.isascii():
        raise ConfigError(f"{flag} {text!r}: expected HOST:PORT, [IPV6]:PORT or *:PORT")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"{flag} {text!r}: port {port} is out of range 0-65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{flag} {text!r}: {host!r} is not an IPv6 address") from None
    elif host != "*":
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            if ":" in host:
                raise ConfigError(
                    f"{flag} {text!r}: write an IPv6 address in brackets, [{host}]:{port}"
                ) from None
            if host != "localhost":
                raise ConfigError(
                    f"{flag} {text!r}: {host!r} is not an IP address (or *, or localhost)"
                ) from None
    return ListenAddress(host, port)


def default_confdir() -> Path:
    env = os.environ.get("WAYLAY_CONFDIR")
    return Path(env).expanduser() if env else Path.home() / ".waylay"


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes, counts and timeouts that bound what one peer can make waylay hold or wait for.

    Every one is an option (`LIMIT_FLAGS`: `--head-timeout 5`, or `head-timeout = 5` in
    config.toml); the defaults are safe for a proxy left running.
    """

    # A request or response head (request line and fields), and its number of field lines:
    # over either, 431 (RFC 6585 §5), or 502 for a response.
    max_head_size: int = 64 * 1024
    max_headers: int = 100
    # The client's first bytes inside a tunnel (its ClientHello) read before deciding.
    max_peek_size: int = 64 * 1024
    # Client connections served at once: the next one gets a 503 and is closed.
    max_connections: int = 4096
    connect_timeout: float = 10.0
    # A server's silence once it has the whole request, until its response head: 504.
    upstream_timeout: float = 60.0
    # An idle kept-alive connection to a server is closed after this.
    upstream_idle_timeout: float = 60.0
    # A client's silence between requests, and a request body that stalls (408).
    client_idle_timeout: float = 300.0
    # From a head's first byte to its end (slowloris): the connection is closed.
    head_timeout: float = 30.0
    # Inside a CONNECT tunnel: how long to wait for the client's first bytes before deciding
    # it speaks a server-first protocol (SMTP, SSH banners) and relaying it as it is.
    peek_timeout: float = 1.0
    # The TLS handshakes of an intercepted connection, each side.
    tls_handshake_timeout: float = 10.0


# The options that set a field of Limits, by field: what kind of value, and its bounds.
LIMIT_FLAGS: dict[str, tuple[str, float, float]] = {
    "max_head_size": ("size", 1024, 16 * 1024 * 1024),
    "max_headers": ("count", 1, 10_000),
    "max_peek_size": ("size", 1024, 16 * 1024 * 1024),
    "max_connections": ("count", 1, 1_000_000),
    "connect_timeout": ("seconds", 0, 3600),
    "upstream_timeout": ("seconds", 0, 86400),
    "upstream_idle_timeout": ("seconds", 0, 86400),
    "client_idle_timeout": ("seconds", 0, 86400),
    "head_timeout": ("seconds", 0, 3600),
    "peek_timeout": ("seconds", 0, 3600),
    "tls_handshake_timeout": ("seconds", 0, 3600),
}


@dataclass(frozen=True, slots=True)
class Options:
    listen: ListenAddress = field(default_factory=lambda: parse_listen(DEFAULT_LISTEN))
    confdir: Path = field(default_factory=default_confdir)
    quiet: bool = False
    hosts: Path | None = None
    hosts_only: bool = False
    ignore_hosts: tuple[str, ...] = ()
    insecure: bool = False
    upstream_ca: Path | None = None
    passthrough_pinned: bool = False
    # (host pattern or "*", PEM file with certificate and key) — presented to servers
    client_certs: tuple[tuple[str, Path], ...] = ()
    # (domain pattern, PEM file with certificate chain and key) — served instead of forging
    certs: tuple[tuple[str, Path], ...] = ()
    # The flow database to append to; None: a temporary one, removed at exit.
    save: Path | None = None
    # Bytes of each body the flow store keeps (0: none); the rest still streams.
    body_limit: int = 64 * 1024 * 1024
    # A flow database whose responses answer matching requests (method and URL).
    server_replay: Path | None = None
    server_replay_strict: bool = False
    server_replay_ignore_content: bool = False
    # --filter: only flows that match are shown (dump) or selected (flows, replay, har).
    filter: Filter | None = None
    # "regular": clients are configured to use the proxy; "transparent": the network redirects
    # their connections to it, and the kernel says where each was going (docs/transparent.md).
    mode: str = "regular"
    # SO_MARK set on every upstream socket, so local-capture rules can leave them alone.
    upstream_mark: int | None = None
    # --allow-from: the client networks served; empty: the default rule (access.py).
    allow_from: tuple[Network, ...] = ()
    # --proxyauth: USER:PASS, or @FILE (htpasswd); checked by proxyauth.py.
    proxyauth: str | None = None
    # Refuse to start (rather than warn) when the confdir, the CA key or the --save database
    # may be read by others (permissions.py).
    strict_permissions: bool = False
    limits: Limits = field(default_factory=Limits)
    # --intercept: flows that match are held for a person to resume, change or kill.
    intercept: Filter | None = None
    # A body larger than this streams past the request and response hooks, not buffered.
    stream_large_bodies: int = 32 * 1024 * 1024
    # The rules as typed (/FILTER/NAME/VALUE and the like): their addons parse them
    # (waylay.addons.builtin), so an error names the rule as the user wrote it.
    modify_headers: tuple[str, ...] = ()
    modify_body: tuple[str, ...] = ()
    map_remote: tuple[str, ...] = ()
    map_local: tuple[str, ...] = ()
    block: tuple[str, ...] = ()
    # `waylay web`: where the UI listens, and the password that logs in instead of the token.
    web: ListenAddress = field(default_factory=lambda: parse_listen(DEFAULT_WEB))
    web_password: str | None = None


# The long flag names a config file may set, mapped to the field they fill.
_CONFIG_KEYS = {
    "listen": "listen",
    "quiet": "quiet",
    "hosts": "hosts",
    "hosts-only": "hosts_only",
    "ignore-hosts": "ignore_hosts",
    "insecure": "insecure",
    "upstream-ca": "upstream_ca",
    "passthrough-pinned": "passthrough_pinned",
    "client-cert": "client_certs",
    "cert": "certs",
    "save": "save",
    "body-limit": "body_limit",
    "server-replay": "server_replay",
    "server-replay-strict": "server_replay_strict",
    "server-replay-ignore-content": "server_replay_ignore_content",
    "filter": "filter",
    "mode": "mode",
    "upstream-mark": "upstream_mark",
    "allow-from": "allow_from",
    "proxyauth": "proxyauth",
    "strict-permissions": "strict_permissions",
    "intercept": "intercept",
    "stream-large-bodies": "stream_large_bodies",
    "modify-headers": "modify_headers",
    "modify-body": "modify_body",
    "map-remote": "map_remote",
    "map-local": "map_local",
    "block": "block",
    "web": "web",
    "web-password": "web_password",
    **{name.replace("_", "-"): name for name in LIMIT_FLAGS},
}
MODES = ("regular", "transparent")
# Settings whose relative paths are relative to the config file.
_PATH_KEYS = frozenset({"hosts", "upstream_ca", "save", "server_replay"})
_BOOL_FIELDS = (
    "quiet",
    "hosts_only",
    "insecure",
    "passthrough_pinned",
    "server_replay_strict",
    "server_replay_ignore_content",
    "strict_permissions",
)
# Repeatable flags: each use adds one more value.
_LIST_FIELDS = frozenset(
    {
        "ignore_hosts",
        "client_certs",
        "certs",
        "allow_from",
        "modify_headers",
        "modify_body",
        "map_remote",
        "map_local",
        "block",
    }
)
_RULE_FIELDS = ("modify_headers", "modify_body", "map_remote", "map_local", "block")
# Flags that set a field of Options, or of its Limits.
_OPTION_FIELDS = {f.name for f in fields(Options)} | set(LIMIT_FLAGS)


# The names `--set NAME=VALUE` knows as waylay's own (dashes for underscores): every long
# flag and every field, so `--set client-cert=...` and `--set client_certs=...` both work.
_SET_NAMES = {
    **{f.name.replace("_", "-"): f.name for f in fields(Options) if f.name != "limits"},
    **_CONFIG_KEYS,
}
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def parse_bool(what: str, text: str) -> bool:
    """true/false, yes/no, on/off or 1/0, in any case; ConfigError naming ``what`` otherwise."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ConfigError(f"{what}={text!r}: expected true or false (yes/no, on/off, 1/0)")


def parse_assignment(text: str) -> tuple[str, str | None]:
    """`--set NAME=VALUE` as (NAME, VALUE); VALUE is None for a bare `--set NAME`."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not name:
        raise ConfigError(f"--set {text!r}: expected NAME=VALUE")
    return name, value if sep else None


def own_option(name: str) -> str | None:
    """The long flag (`--body-limit`) of waylay's own option NAME (- or _), or None."""
    key = name.replace("_", "-")
    return f"--{key}" if key in _SET_NAMES else None


def apply_own_settings(
    flags: dict[str, Any], settings: list[tuple[str, str | None]]
) -> list[tuple[str, str | None]]:
    """Put the `--set`s of waylay's own options into ``flags``; return the others (addons').

    A value is checked later by build_options, as the flag's would be; a switch takes
    true/false (a bare `--set quiet` is true). Setting an option with its flag and with
    --set is an error rather than one silently winning; a repeatable one takes both.
    """
    given = {name for name, value in flags.items() if value is not None}
    others: list[tuple[str, str | None]] = []
    for name, value in settings:
        field = _SET_NAMES.get(name.replace("_", "-"))
        if field is None:
            others.append((name, value))
            continue
        parsed: object = value
        if field in _BOOL_FIELDS:
            parsed = True if value is None else parse_bool(f"--set {name}", value)
        elif value is None:
            raise ConfigError(f"--set {name}: expected --set {name}=VALUE")
        if field in _LIST_FIELDS:
            flags[field] = [*(flags.get(field) or ()), parsed]
        elif field in given:
            raise ConfigError(
                f"--set {name} and --{field.replace('_', '-')} both set {field}: give it once"
            )
        else:
            flags[field] = parsed
    return others


def read_config(confdir: Path) -> dict[str, Any]:
    """The settings of `confdir/config.toml`, keyed by field name; {} when there is no file."""
    path = confdir / "config.toml"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        table = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    settings: dict[str, Any] = {}
    for key, value in table.items():
        name = _CONFIG_KEYS.get(key)
        if name is None:
            known = ", ".join(sorted(_CONFIG_KEYS))
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {known})")
        if name in _PATH_KEYS and isinstance(value, str):
            # A relative path in the file means next to the file, as in git's or ssh's.
            value = confdir / Path(value).expanduser()
        settings[name] = value
    return settings


def build_options(flags: dict[str, Any]) -> Options:
    """Merge defaults < config.toml < flags (flags that were not given are None) and validate."""
    confdir = Path(flags["confdir"]).expanduser() if flags.get("confdir") else default_confdir()
    merged: dict[str, Any] = read_config(confdir)
    merged.update({k: v for k, v in flags.items() if v is not None and k in _OPTION_FIELDS})
    merged["confdir"] = confdir

    values: dict[str, Any] = {"confdir": confdir}
    if "listen" in merged:
        values["listen"] = parse_listen(_expect(merged, "listen", str))
    if "web" in merged:
        values["web"] = parse_listen(_expect(merged, "web", str), "--web")
    if "web_password" in merged:
        values["web_password"] = _expect(merged, "web_password", str)
        if not values["web_password"]:
            raise ConfigError("--web-password: an empty password would let anyone in")
    for flag in _BOOL_FIELDS:
        if flag in merged:
            values[flag] = _expect(merged, flag, bool)
    for flag in ("hosts", "upstream_ca", "save", "server_replay"):
        if flag in merged:
            values[flag] = Path(_expect(merged, flag, (str, Path))).expanduser()
    if "filter" in merged:
        values["filter"] = _filter("--filter", _expect(merged, "filter", str))
    if "intercept" in merged:
        values["intercept"] = _filter("--intercept", _expect(merged, "intercept", str))
    if "body_limit" in merged:
        values["body_limit"] = parse_size("--body-limit", merged["body_limit"])
    if "stream_large_bodies" in merged:
        values["stream_large_bodies"] = parse_size(
            "--stream-large-bodies", merged["stream_large_bodies"]
        )
    for flag in _RULE_FIELDS:
        if flag in merged:
            values[flag] = tuple(_expect_list(merged, flag))
    if "ignore_hosts" in merged:
        values["ignore_hosts"] = tuple(
            _regex("--ignore-hosts", p) for p in _expect_list(merged, "ignore_hosts")
        )
    if "client_certs" in merged:
        values["client_certs"] = tuple(
            _assignment("--client-cert", text, optional_name="*")
            for text in _expect_list(merged, "client_certs")
        )
    if "certs" in merged:
        values["certs"] = tuple(
            _assignment("--cert", text) for text in _expect_list(merged, "certs")
        )
    if "mode" in merged:
        values["mode"] = _mode(_expect(merged, "mode", str))
    if "upstream_mark" in merged:
        values["upstream_mark"] = _mark(merged["upstream_mark"])
    if "proxyauth" in merged:
        values["proxyauth"] = _expect(merged, "proxyauth", str)
        if values.get("mode") == "transparent":
            raise ConfigError(
                "--proxyauth cannot work in transparent mode: its clients do not know there "
                "is a proxy to authenticate to (use --allow-from)"
            )
    if "allow_from" in merged:
        values["allow_from"] = parse_networks(_expect_list(merged, "allow_from"))
    for flag in ("server_replay_strict", "server_replay_ignore_content"):
        if values.get(flag) and "server_replay" not in values:
            raise ConfigError(f"--{flag.replace('_', '-')} needs --server-replay FILE")
    if values.get("hosts_only") and "hosts" not in values:
        raise ConfigError("--hosts-only needs --hosts FILE: without it no name could be resolved")
    limits = Limits()
    timeout = os.environ.get("WAYLAY_UPSTREAM_TIMEOUT")
    if timeout:
        limits = _with_upstream_timeout(limits, timeout)
    values["limits"] = _limits(limits, merged)
    return Options(**values)


def _mode(text: str) -> str:
    if text not in MODES:
        raise ConfigError(f"--mode {text!r}: expected one of {', '.join(MODES)}")
    return text


def _mark(value: object) -> int:
    """A firewall mark: decimal or 0x-hex, 1 to 0xffffffff (0 is no mark at all)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(text, str):
        try:
            mark = int(text, 0)
        except ValueError:
            mark = -1
        if 0 < mark <= 0xFFFFFFFF:
            return mark
    raise ConfigError(f"--upstream-mark {value!r}: expected a number from 1 to 0xffffffff")


def _limits(limits: Limits, settings: dict[str, Any]) -> Limits:
    """``limits`` with the values ``settings`` gives, each checked against its bounds."""
    changed: dict[str, Any] = {}
    for name, (kind, low, high) in LIMIT_FLAGS.items():
        if name not in settings:
            continue
        flag = "--" + name.replace("_", "-")
        value = settings[name]
        if kind == "seconds":
            changed[name] = _seconds(flag, value, high)
            continue
        if kind == "size":
            number = parse_size(flag, value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.isdecimal() and value.isascii():
            number = int(value)
        else:
            raise ConfigError(f"{flag} {value!r}: expected a whole number")
        if not low <= number <= high:
            raise ConfigError(f"{flag} {value!r}: expected {low:.0f} to {high:.0f}")
        changed[name] = number
    return replace(limits, **changed)


def _seconds(flag: str, value: object, most: float = 3600) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} {value!r}: expected seconds") from None
    if not 0 < seconds <= most:
        raise ConfigError(f"{flag} {value!r}: expected seconds between 0 and {most:g}")
    return seconds


def _with_upstream_timeout(limits: Limits, text: str) -> Limits:
    try:
        seconds = float(text)
    except ValueError:
        raise ConfigError(f"WAYLAY_UPSTREAM_TIMEOUT={text!r}: expected seconds") from None
    if not seconds > 0:
        raise ConfigError(f"WAYLAY_UPSTREAM_TIMEOUT={text!r}: must be positive")
    return replace(
        limits, upstream_timeout=seconds, connect_timeout=min(seconds, limits.connect_timeout)
    )


_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(flag: str, value: object) -> int:
    """A byte count: an integer, or a number with k, m or g (KiB, MiB, GiB; `64m`, `1GiB`)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    text = str(value).strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = text, ""
    if text.endswith(("k", "m", "g")):
        number, unit = text[:-1], text[-1]
    if not number.isdecimal() or not number.isascii():
        raise ConfigError(f"{flag} {value!r}: expected a size such as 1048576, 512k, 64m or 1g")
    return int(number) * _SIZE_UNITS[unit]


def _filter(flag: str, text: str) -> Filter:
    try:
        return parse_filter(text)
    except FilterError as exc:
        # The CLI prints one line: the reason, then where, as "at column N".
        raise ConfigError(f"{flag} {text!r}: {exc.reason} at column {exc.column}") from None


def _regex(flag: str, pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{flag} {pattern!r}: not a regular expression ({exc})") from None
    return pattern


def _assignment(flag: str, text: str, *, optional_name: str | None = None) -> tuple[str, Path]:
    """``NAME=FILE`` (or just ``FILE`` when the name is optional) as (name, path)."""
    name, sep, path = text.rpartition("=")
    if not sep:
        if optional_name is None:
            raise ConfigError(f"{flag} {text!r}: expected DOMAIN=FILE")
        name, path = optional_name, text
    if not name or not path:
        raise ConfigError(f"{flag} {text!r}: expected NAME=FILE")
    return name.lower().rstrip("."), Path(path).expanduser()


def _expect_list(settings: dict[str, Any], name: str) -> list[str]:
    value = settings[name]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        flag = name.replace("_", "-")
        raise ConfigError(f"setting {flag!r}: {value!r} should be a list of strings")
    return list(value)


def _expect(settings: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = settings[name]
    if not isinstance(value, kind):
        flag = name.replace("_", "-")
        raise ConfigError(f"setting {flag!r}: {value!r} has the wrong type")
    return value
