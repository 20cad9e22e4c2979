"""The `waylay` command: parse the flags, build the options, run the chosen subcommand.

Every failure the user can fix — a bad flag, an unusable file, a port in use — ends here as
one line on stderr and exit status 2; anything else is a bug and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pwd
import shutil
import signal
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from waylay import __version__
from waylay.errors import ConfigError
from waylay.flowlist import list_flows
from waylay.har import export_file, import_file
from waylay.options import (
    DEFAULT_LISTEN,
    DEFAULT_WEB,
    LIMIT_FLAGS,
    MODES,
    Limits,
    Options,
    apply_own_settings,
    build_options,
    parse_assignment,
)
from waylay.permissions import check_secrets
from waylay.platform import iptables

if TYPE_CHECKING:
    from waylay.addons.chain import AddonChain
    from waylay.addons.options import AddonOption
    from waylay.context import ProxyContext
    from waylay.filters import Filter
    from waylay.web.app import WebUI

# The proxy's own modules (certificates, TLS, the server) are imported by the commands that
# run it: `waylay flows` and `har` start without loading cryptography (half of start-up).

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and status 2), as the interface promises."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _proxy_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a command that runs the proxy (`dump`)."""
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=f"where the proxy listens; port 0 picks a free port, HOST * is one dual-stack "
        f"socket on every address, [::1]:8080 an IPv6 literal (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="regular: clients are configured to use the proxy; transparent: the network "
        "redirects their connections here (see `waylay transparent rules`) (default regular)",
    )
    parser.add_argument(
        "--allow-from",
        metavar="CIDR",
        action="append",
        help="repeatable; serve only clients from these networks (default: everyone when "
        "listening on loopback, otherwise only addresses that are not globally reachable)",
    )
    parser.add_argument(
        "--proxyauth",
        metavar="USER:PASS|@FILE",
        help="require Basic proxy credentials: this pair, or the users of an htpasswd file "
        "(bcrypt or {SHA} hashes); others get a 407",
    )
    parser.add_argument(
        "--upstream-mark",
        metavar="MARK",
        help="set this firewall mark (SO_MARK) on every connection to a server, so local-capture "
        "rules (`waylay transparent rules --local --exclude-mark MARK`) leave them alone",
    )
    _client_flags(parser)
    _filter_flag(parser, "show only the flows that match EXPR (see docs/flows.md)")
    _limit_flags(parser)
    flows = parser.add_argument_group("recording flows")
    flows.add_argument(
        "--save",
        metavar="FILE",
        help="append every flow to this flow database (created if absent); without it, "
        "flows go to a temporary database removed at exit",
    )
    _body_limit_flag(flows)
    flows.add_argument(
        "--server-replay",
        metavar="FILE",
        help="answer requests whose method and URL match a flow saved in FILE with its saved "
        "response, without contacting the server",
    )
    flows.add_argument(
        "--server-replay-strict",
        action=argparse.BooleanOptionalAction,
        help="with --server-replay: a request with no saved match gets a 404 instead of going "
        "to the server",
    )
    flows.add_argument(
        "--server-replay-ignore-content",
        action=argparse.BooleanOptionalAction,
        help="with --server-replay: match requests on method and URL alone, not on their body",
    )
    tls = parser.add_argument_group("HTTPS interception")
    tls.add_argument(
        "--ignore-hosts",
        metavar="REGEX",
        action="append",
        help="repeatable; a CONNECT target or SNI whose host:port matches is relayed untouched "
        "(the client sees the server's own certificate)",
    )
    tls.add_argument(
        "--passthrough-pinned",
        action=argparse.BooleanOptionalAction,
        help="once a client rejects waylay's certificate for a host, relay that host untouched",
    )
    tls.add_argument(
        "--cert",
        metavar="DOMAIN=FILE",
        dest="certs",
        action="append",
        help="repeatable; serve this PEM file's certificate and key for DOMAIN (a name or "
        "*.domain) instead of a forged one",
    )
    _addon_flags(parser)


def _addon_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("addons and interception")
    group.add_argument(
        "-s",
        metavar="SCRIPT",
        dest="scripts",
        action="append",
        help="repeatable; load a Python addon script: its `addons` list, or its hook functions "
        "at module level; reloaded when the file changes",
    )
    group.add_argument(
        "--set",
        metavar="NAME=VALUE",
        dest="settings",
        action="append",
        help="repeatable; set an option an addon declares (`-s SCRIPT --help` lists them), "
        "or one of waylay's own by its long name (body_limit=1m)",
    )
    group.add_argument(
        "--intercept",
        metavar="EXPR",
        help="pause the flows that match EXPR (see docs/flows.md) until they are resumed",
    )
    group.add_argument(
        "--stream-large-bodies",
        metavar="SIZE",
        help="bodies larger than SIZE stream past request/response hooks instead of being "
        "buffered (default 32m)",
    )
    rules = (
        ("--modify-headers", "/FILTER/NAME/VALUE", "set header NAME to VALUE (empty: remove it)"),
        ("--modify-body", "/FILTER/REGEX/REPLACEMENT", "replace REGEX in bodies"),
        ("--map-remote", "/FILTER/REGEX/REPLACEMENT", "send requests to a rewritten URL"),
        ("--map-local", "/FILTER/URLREGEX/PATH", "answer requests from a local file or folder"),
    )
    for flag, metavar, meaning in rules:
        group.add_argument(
            flag,
            metavar=metavar,
            action="append",
            help=f"repeatable; in the flows FILTER matches, {meaning}",
        )
    group.add_argument(
        "--block",
        metavar="EXPR",
        action="append",
        help="repeatable; answer the requests that match EXPR with a 403, never sending them",
    )


def _addon_option_flags(parser: argparse.ArgumentParser, options: Sequence[AddonOption]) -> None:
    """The options scripts declare, in --help: a group per script (they are set with --set)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for option in options:
        group = groups.get(option.owner)
        if group is None:
            group = groups[option.owner] = parser.add_argument_group(f"options of {option.owner}")
        default = option.default
        shown = str(default).lower() if isinstance(default, bool) else repr(default)
        help_text = f"{option.help} ({option.type_name}, default {shown})".replace("%", "%%")
        group.add_argument(
            f"--set {option.name}={option.metavar}",
            action="store_true",
            default=argparse.SUPPRESS,
            help=help_text.strip(),
        )


# Each option of Limits (options.LIMIT_FLAGS), with its metavar and meaning.
_LIMIT_HELP = {
    "max_head_size": ("SIZE", "largest request or response head; a bigger one gets a 431"),
    "max_headers": ("N", "most header lines in a head; more get a 431"),
    "max_peek_size": ("SIZE", "largest ClientHello read to decide what a tunnel carries"),
    "max_connections": (
        "N",
        "client connections served at once; the next one gets a 503 and is closed",
    ),
    "connect_timeout": ("SECONDS", "for a server to accept a connection (504 after)"),
    "upstream_timeout": ("SECONDS", "for a server's response head once it has the request"),
    "upstream_idle_timeout": ("SECONDS", "an idle kept-alive server connection is closed after"),
    "client_idle_timeout": (
        "SECONDS",
        "an idle client connection is closed after; a stalled request body gets a 408",
    ),
    "head_timeout": (
        "SECONDS",
        "from a request head's first byte to its end; a slower client is closed (slowloris)",
    ),
    "peek_timeout": (
        "SECONDS",
        "for a client's first bytes in a tunnel before relaying it as a server-speaks-first "
        "protocol",
    ),
    "tls_handshake_timeout": ("SECONDS", "for each side's TLS handshake"),
}


def _limit_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("limits and timeouts")
    defaults = Limits()
    for name, (metavar, meaning) in _LIMIT_HELP.items():
        default = getattr(defaults, name)
        shown = f"{default // 1024}k" if metavar == "SIZE" else f"{default:g}"
        group.add_argument(
            "--" + name.replace("_", "-"), metavar=metavar, help=f"{meaning} (default {shown})"
        )


def _client_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of every command that talks to servers (`dump`, `replay`)."""
    parser.add_argument(
        "--confdir",
        metavar="DIR",
        help="configuration directory; DIR/config.toml may set any long option "
        "(default $WAYLAY_CONFDIR or ~/.waylay)",
    )
    parser.add_argument(
        "--hosts",
        metavar="FILE",
        help="a hosts-format file; names found there are not looked up in DNS",
    )
    # --no-... undoes a setting of config.toml: flags win over the file.
    parser.add_argument(
        "--hosts-only",
        action=argparse.BooleanOptionalAction,
        help="resolve only names in the --hosts file; any other name gets a 502, no DNS query",
    )
    parser.add_argument(
        "-q", "--quiet", action=argparse.BooleanOptionalAction, help="print no line per flow"
    )
    parser.add_argument(
        "--strict-permissions",
        action=argparse.BooleanOptionalAction,
        help="refuse to start when the confdir, the CA key or the --save database may be read "
        "by others (default: a warning)",
    )
    servers = parser.add_argument_group("servers' certificates")
    servers.add_argument(
        "--insecure",
        action=argparse.BooleanOptionalAction,
        help="do not verify servers' certificates",
    )
    servers.add_argument(
        "--upstream-ca",
        metavar="FILE",
        help="a PEM bundle of extra CAs trusted for servers (besides certifi and the system's)",
    )
    servers.add_argument(
        "--client-cert",
        metavar="[HOST=]FILE",
        dest="client_certs",
        action="append",
        help="repeatable; a PEM file (certificate and key) presented to servers that ask, "
        "to HOST only (a name or *.domain) when given",
    )


def _filter_flag(parser: argparse.ArgumentParser, meaning: str) -> None:
    parser.add_argument("--filter", metavar="EXPR", help=meaning)


def _body_limit_flag(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    group.add_argument(
        "--body-limit",
        metavar="SIZE",
        help="bytes of each body kept in the flow database (1048576, 512k, 64m, 1g; 0 keeps "
        "none); the rest still streams to the peer (default 64m)",
    )


def build_parser(addon_options: Sequence[AddonOption] = ()) -> argparse.ArgumentParser:
    """The whole command line; ``addon_options`` (the scripts' options) go in dump's --help."""
    parser = _Parser(
        prog="waylay",
        description="An intercepting HTTP/HTTPS proxy: see every request and response.",
    )
    parser.add_argument("--version", action="version", version=f"waylay {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    dump = commands.add_parser(
        "dump",
        help="run the proxy and print one line per flow",
        description="Run the proxy; print one line per flow on stdout.",
    )
    _proxy_flags(dump)
    _addon_option_flags(dump, addon_options)
    web = commands.add_parser(
        "web",
        help="run the proxy and a web UI to see, search, replay and intercept its flows",
        description="Run the proxy and, in the same process, a web UI (docs/web.md). It "
        "prints the UI's address with a token: open that URL, which lets the browser in.",
    )
    _proxy_flags(web)
    ui = web.add_argument_group("the web UI")
    ui.add_argument(
        "--web",
        metavar="HOST:PORT",
        help=f"where the UI listens; never through the proxy (default {DEFAULT_WEB})",
    )
    ui.add_argument(
        "--web-password",
        metavar="PASSWORD",
        help="also let in whoever gives this password at /login (config.toml's web-password "
        "keeps it out of the process list)",
    )
    _addon_option_flags(web, addon_options)
    _ca_command(commands)
    flows = commands.add_parser(
        "flows",
        help="list the flows saved in a flow database",
        description="List the flows saved in FILE (a --save database), one line each, in the "
        "order they started; works while another waylay is writing FILE.",
    )
    flows.add_argument("file", metavar="FILE", help="the flow database")
    flows.add_argument("--json", action="store_true", help="one JSON object per flow and line")
    _filter_flag(flows, "list only the flows that match EXPR (see docs/flows.md)")
    replay = commands.add_parser(
        "replay",
        help="send saved requests again (client replay)",
        description="Send the requests saved in FILE again, as they were, through waylay's "
        "own data path (hosts file, TLS verification, dump lines); opens no listener. The "
        "new flows are appended to FILE, each linked to its original (replay_of).",
    )
    replay.add_argument("file", metavar="FILE", help="the flow database to replay from and to")
    _client_flags(replay)
    _body_limit_flag(replay)
    _filter_flag(replay, "replay only the flows that match EXPR (see docs/flows.md)")
    _har_command(commands)
    _transparent_command(commands)
    return parser


def _ca_command(commands: Any) -> None:
    ca = commands.add_parser(
        "ca",
        help="show or export waylay's CA certificate",
        description="waylay's certificate authority, created in the confdir on first use and "
        "reused after. Clients trust its certificate to accept the certificates waylay forges.",
    )
    actions = ca.add_subparsers(dest="ca_action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    path = actions.add_parser(
        "path",
        help="print the CA certificate's path",
        description="Print the path of the CA certificate (PEM), creating the CA if absent.",
    )
    export = actions.add_parser(
        "export",
        help="write the CA certificate as PEM, DER or PKCS#12",
        description="Write the CA certificate (never its key) to stdout or a file, creating "
        "the CA if absent.",
    )
    export.add_argument(
        "--format",
        choices=("pem", "der", "p12"),
        default="pem",
        help="pem (most tools), der (.cer: Windows, Android), p12 (PKCS#12, no key; default pem)",
    )
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    for parser in (path, export):
        parser.add_argument(
            "--confdir",
            metavar="DIR",
            help="configuration directory holding the CA (default $WAYLAY_CONFDIR or ~/.waylay)",
        )


def _har_command(commands: Any) -> None:
    har = commands.add_parser(
        "har",
        help="export flows to a HAR file, or import one",
        description="HAR 1.2 (HTTP Archive), the format browsers' developer tools, Charles and "
        "Insomnia export: flows of a flow database out to a HAR file, or a HAR file's entries "
        "into a flow database. docs/flows.md says what changes on the way.",
    )
    actions = har.add_subparsers(dest="har_action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    export = actions.add_parser(
        "export",
        help="write the flows of a flow database to a HAR file",
        description="Write the flows of FILE (those EXPR matches, with --filter), in the "
        "order they started, with their bodies, to OUT.har (created 0600, replaced whole or "
        "not at all).",
    )
    export.add_argument("file", metavar="FILE", help="the flow database")
    export.add_argument("-o", "--output", metavar="OUT.har", required=True, help="the HAR file")
    _filter_flag(export, "export only the flows that match EXPR (see docs/flows.md)")
    imports = actions.add_parser(
        "import",
        help="append the entries of a HAR file to a flow database",
        description="Append every entry of IN.har to the flow database FILE (created if "
        "absent) as a flow with its bodies: all of them, or on any error none.",
    )
    imports.add_argument("input", metavar="IN.har", help="the HAR file")
    imports.add_argument(
        "-o", "--output", metavar="FILE", required=True, help="the flow database to append to"
    )


def _transparent_command(commands: Any) -> None:
    transparent = commands.add_parser(
        "transparent",
        help="set up transparent mode: the iptables rules that send connections to waylay",
        description="Transparent mode (waylay dump --mode transparent) needs the network to "
        "redirect clients' connections to waylay; see docs/transparent.md.",
    )
    actions = transparent.add_subparsers(
        dest="transparent_action", metavar="ACTION", parser_class=_Parser
    )
    actions.required = True
    rules = actions.add_parser(
        "rules",
        help="print, apply or remove the iptables rules",
        description="Print the iptables and ip6tables rules (nat table, REDIRECT) for a gateway "
        "or for local capture, with what else the set-up needs; without --gateway or --local, "
        "both set-ups with placeholders. --apply and --remove change the rules (as root); every "
        "rule carries the comment 'waylay'.",
        epilog="WAYLAY_IPTABLES=iptables-legacy (or iptables-nft, or a path) chooses the "
        "iptables front end; ip6tables is the matching one. Default: iptables and ip6tables "
        "on PATH.",
    )
    where = rules.add_mutually_exclusive_group()
    where.add_argument(
        "--gateway",
        metavar="IFACE",
        help="clients route through this machine and come in on IFACE: redirect in PREROUTING",
    )
    where.add_argument(
        "--local",
        action="store_true",
        help="capture this machine's own programs: redirect in OUTPUT (needs --exclude-user "
        "or --exclude-mark)",
    )
    exclude = rules.add_mutually_exclusive_group()
    exclude.add_argument(
        "--exclude-user",
        metavar="USER",
        help="with --local: leave the connections of USER, the user waylay runs as, alone",
    )
    exclude.add_argument(
        "--exclude-mark",
        metavar="MARK",
        help="with --local: leave connections with firewall mark MARK alone (run waylay with "
        "--upstream-mark MARK)",
    )
    rules.add_argument(
        "--proxy-port",
        metavar="N",
        default=str(iptables.DEFAULT_PROXY_PORT),
        help=f"the port waylay listens on (default {iptables.DEFAULT_PROXY_PORT})",
    )
    rules.add_argument(
        "--ports",
        metavar="LIST",
        default=",".join(iptables.DEFAULT_PORTS),
        help="the TCP destination ports to redirect, LOW:HIGH for a range (default 80,443)",
    )
    rules.add_argument(
        "--block-quic",
        action="store_true",
        help="also reject UDP 443 (QUIC), so browsers use TCP and get intercepted",
    )
    change = rules.add_mutually_exclusive_group()
    change.add_argument(
        "--apply", action="store_true", help="add the rules that are not there yet (as root)"
    )
    change.add_argument(
        "--remove",
        action="store_true",
        help="delete exactly these rules, leaving every other rule alone (as root)",
    )


class _LogFormat(logging.Formatter):
    """waylay's own lines start with "waylay: "; an addon's with its logger's name."""

    def format(self, record: logging.LogRecord) -> str:
        name = record.name
        if name == "waylay" or name.startswith("waylay."):
            who = "waylay"
        else:
            who = "addon" if name == "root" else name
        return f"{who}: {super().format(record)}"


def _configure_logging() -> None:
    """waylay says warnings and errors; addon scripts' logging.info() is shown too."""
    root = logging.getLogger()
    if root.handlers:
        return  # configured already (as logging.basicConfig, a second call changes nothing)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormat("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for quiet in ("waylay", "asyncio"):
        logging.getLogger(quiet).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        addon_options = _options_for_help(argv)
    except ConfigError as exc:
        print(f"waylay: error: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE
    parser = build_parser(addon_options)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Name the subcommand whose --help lists the flags that do exist.
        action = getattr(args, "ca_action", None) or getattr(args, "transparent_action", None)
        words = ["waylay", args.command, action]
        prog = " ".join(word for word in words if word)
        _Parser(prog=prog).error(f"unrecognized arguments: {' '.join(unknown)}")
    _configure_logging()
    try:
        if args.command == "transparent":
            return run_transparent(args)
        flags = _flags(args)
        settings = apply_own_settings(
            flags, [parse_assignment(text) for text in getattr(args, "settings", None) or ()]
        )
        options = build_options(flags)
        if args.command in ("dump", "web"):
            scripts = [Path(path).expanduser() for path in args.scripts or ()]
            run = run_dump if args.command == "dump" else run_web
            return run(options, scripts=scripts, settings=dict(settings))
        if args.command == "ca":
            return run_ca(options, args)
        if args.command == "replay":
            return run_replay(replace(options, save=Path(args.file)))
        if args.command == "flows":
            return _listing(
                lambda: list_flows(
                    Path(args.file), sys.stdout, as_json=args.json, only=options.filter
                )
            )
        if args.command == "har":
            if args.har_action == "export":
                count = export_file(Path(args.file), Path(args.output), only=options.filter)
                print(f"waylay: exported {count} flows to {args.output}", file=sys.stderr)
            else:
                ids = import_file(Path(args.input), Path(args.output))
                print(f"waylay: imported {len(ids)} flows into {args.output}", file=sys.stderr)
            return EXIT_OK
    except ConfigError as exc:
        print(f"waylay: error: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.DatabaseError as exc:
        # A flow database damaged past its first pages shows only when it is read.
        where = getattr(args, "file", None) or "the flow database"
        print(f"waylay: error: {where}: damaged flow database ({exc})", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(f"unhandled command {args.command}")


def _listing(write: Callable[[], object]) -> int:
    """Run a command that writes to stdout; a reader that went away (`| head`) is no error."""
    try:
        write()
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would complain again flushing stdout at exit: point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "listen",
        "confdir",
        "hosts",
        "hosts_only",
        "quiet",
        "ignore_hosts",
        "insecure",
        "upstream_ca",
        "passthrough_pinned",
        "client_certs",
        "certs",
        "save",
        "body_limit",
        "server_replay",
        "server_replay_strict",
        "server_replay_ignore_content",
        "filter",
        "mode",
        "allow_from",
        "proxyauth",
        "upstream_mark",
        "strict_permissions",
        "intercept",
        "stream_large_bodies",
        "modify_headers",
        "modify_body",
        "map_remote",
        "map_local",
        "block",
        "web",
        "web_password",
        *LIMIT_FLAGS,
    )
    return {name: getattr(args, name, None) for name in names}


def _options_for_help(argv: Sequence[str]) -> list[AddonOption]:
    """For `waylay dump -s SCRIPT --help` (or web): the options the scripts declare
    (mitmproxy's way).

    The scripts are loaded (run, and their `load` hooks called) but never started.
    """
    if argv[:1] not in (["dump"], ["web"]) or not {"-h", "--help"} & set(argv):
        return []
    scan = argparse.ArgumentParser(add_help=False)
    scan.add_argument("-s", dest="scripts", action="append", default=[])
    known, _ = scan.parse_known_args(argv[1:])
    if not known.scripts:
        return []
    from waylay.addons.chain import AddonChain
    from waylay.addons.options import AddonOptions
    from waylay.addons.script import Script

    chain = AddonChain((), [Script(Path(p).expanduser()) for p in known.scripts], AddonOptions())
    asyncio.run(chain.load())
    return list(chain.options)


def _check_secrets(options: Options) -> None:
    """Warn (or, with --strict-permissions, stop) if a secret at rest is open to others.

    A refusal comes before anything is opened or created; a warning after the CA loaded, so
    that a damaged CA is one line, its own error.
    """
    from waylay.certs.ca import CA_FILE

    databases = [options.save] if options.save is not None else []
    check_secrets(
        options.confdir,
        options.confdir / CA_FILE,
        databases,
        strict=options.strict_permissions,
    )


def _context(
    options: Options,
    *,
    show: Filter | None,
    scripts: Sequence[Path] = (),
    settings: Mapping[str, str | None] | None = None,
) -> tuple[ProxyContext, AddonChain]:
    """The proxy's context, and the addons its hooks come from (loaded by the caller, async).

    The hook order: the dumper first, then the built-in rules, then the scripts' addons.
    """
    from waylay.addons.builtin import builtin_addons
    from waylay.addons.chain import AddonChain
    from waylay.addons.dumper import Dumper
    from waylay.addons.options import AddonOptions
    from waylay.addons.script import Script
    from waylay.context import ProxyContext
    from waylay.hooks import HookTable
    from waylay.hosts import Resolver, load_hosts
    from waylay.upstream import dns_lookup

    if options.strict_permissions:
        _check_secrets(options)
    own: list[object] = []
    if not options.quiet:
        own.append(Dumper(sys.stdout, only=show))
    own.extend(builtin_addons(options))
    addons = AddonChain(own, [Script(path) for path in scripts], AddonOptions(settings))
    table = load_hosts(options.hosts) if options.hosts else {}
    resolver = Resolver(table, hosts_only=options.hosts_only, lookup=dns_lookup)
    ctx = ProxyContext.build(options, resolver, HookTable(own))
    if not options.strict_permissions:
        _check_secrets(options)
    ctx.keep_bodies = show is not None and show.uses_bodies and not options.quiet
    return ctx, addons


def run_dump(
    options: Options,
    *,
    scripts: Sequence[Path] = (),
    settings: Mapping[str, str | None] | None = None,
) -> int:
    from waylay.server import raise_open_file_limit

    ctx, addons = _context(options, show=options.filter, scripts=scripts, settings=settings)
    raise_open_file_limit()
    return asyncio.run(_serve(ctx, addons))


def run_web(
    options: Options,
    *,
    scripts: Sequence[Path] = (),
    settings: Mapping[str, str | None] | None = None,
) -> int:
    """`waylay web`: the proxy as `dump` runs it, and the web UI in the same loop."""
    from waylay.server import listening_socket, raise_open_file_limit
    from waylay.web.app import WebUI

    if options.web == options.listen and options.web.port != 0:
        raise ConfigError(f"--web and --listen both name {options.web.display()}: give two ports")
    # The UI's socket first: the proxy then knows it before it accepts anyone.
    sock = listening_socket(options.web)
    try:
        ctx, addons = _context(options, show=options.filter, scripts=scripts, settings=settings)
    except BaseException:
        sock.close()
        raise
    try:
        ui = WebUI(ctx, addons, sock, options.web, password=options.web_password)
    except BaseException:
        sock.close()
        ctx.store.close()
        ctx.certs.close()
        raise
    raise_open_file_limit()
    return asyncio.run(_serve(ctx, addons, ui))


def run_replay(options: Options) -> int:
    assert options.save is not None
    if not options.save.is_file():
        raise ConfigError(f"{options.save}: no such flow database")
    from waylay.replay import replay_stored

    # Every replayed flow is shown: --filter chose which flows to replay.
    ctx, addons = _context(options, show=None)

    async def replay() -> int:
        try:
            await addons.load()
            ctx.hooks = addons.table()
            count = await replay_stored(ctx, options.filter)
            await addons.done()
        finally:
            ctx.store.close()
            ctx.certs.close()
        print(f"waylay: replayed {count} flows into {options.save}", file=sys.stderr)
        return EXIT_OK

    return asyncio.run(replay())


async def _serve(ctx: ProxyContext, addons: AddonChain, ui: WebUI | None = None) -> int:
    """Load the addons, listen, serve until SIGINT or SIGTERM; the addons' life around it.

    With ``ui`` (`waylay web`), the web UI serves in the same loop from the proxy's start to
    its stop; its pages are closed before the proxy's connections.
    """
    from waylay.memory import keep_reads_off_mmap, settle_collector
    from waylay.server import ProxyServer

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        # Before listening: a script that cannot load is exit status 2, nothing served.
        await addons.load()
        ctx.hooks = addons.table()
        server = ProxyServer(ctx)
        port = await server.start()
        settle_collector()  # start-up is over: what it made stays (memory.py)
        keep_reads_off_mmap()
        listen = ctx.options.listen.display(port)
        try:
            if ui is not None:
                await ui.start(listen)
            print(f"waylay listening on {listen}", file=sys.stderr, flush=True)
            if ui is not None:
                print(f"waylay web UI at {ui.token_url}", file=sys.stderr, flush=True)
            await addons.running()
            watch = loop.create_task(addons.watch(ctx)) if addons.scripts else None
            try:
                await stop.wait()
            finally:
                if watch is not None:
                    watch.cancel()
        finally:
            if ui is not None:
                await ui.stop()
            await server.stop()
            await addons.done()
    finally:
        if ui is not None:
            await ui.stop()  # when the proxy could not start: the UI's socket
        ctx.store.close()
        ctx.certs.close()
        if ctx.server_replay is not None:
            ctx.server_replay.close()
    return EXIT_OK


def run_ca(options: Options, args: argparse.Namespace) -> int:
    """`waylay ca path` and `waylay ca export`; a damaged CA is a ConfigError (status 2)."""
    from waylay.certs.ca import CertificateAuthority

    ca = CertificateAuthority.load_or_create(options.confdir)
    _check_secrets(options)
    if args.ca_action == "path":
        print(ca.cert_path)
        return EXIT_OK
    exports = {"pem": ca.cert_pem, "der": ca.cert_der, "p12": ca.cert_p12}
    data = exports[args.format]
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return EXIT_OK
    try:
        Path(args.output).write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return EXIT_OK


def _transparent_setup(args: argparse.Namespace) -> iptables.Setup | None:
    """The set-up the flags ask for; None when they name none (print both, with placeholders)."""
    exclude: iptables.ExcludeUser | iptables.ExcludeMark | None = None
    if args.exclude_user is not None:
        exclude = iptables.ExcludeUser(iptables.check_user(args.exclude_user))
    elif args.exclude_mark is not None:
        exclude = iptables.ExcludeMark(iptables.parse_mark(args.exclude_mark))
    if args.local:
        if exclude is None:
            raise ConfigError(
                "--local needs --exclude-user USER or --exclude-mark MARK: without one, "
                "waylay's own connections to servers would be redirected back to it (a loop)"
            )
        return iptables.LocalCapture(exclude)
    if exclude is not None:
        flag = "--exclude-user" if args.exclude_user is not None else "--exclude-mark"
        raise ConfigError(f"{flag} goes with --local (a gateway redirects other machines' traffic)")
    if args.gateway is not None:
        return iptables.Gateway(iptables.check_interface(args.gateway))
    return None


_PLACEHOLDERS = (
    iptables.Gateway("IFACE"),
    iptables.LocalCapture(iptables.ExcludeUser("USER")),
    iptables.LocalCapture(iptables.ExcludeMark("MARK")),
)


def run_transparent(args: argparse.Namespace) -> int:
    """`waylay transparent rules`: print the rules, or apply or remove them (as root)."""
    front_end = iptables.FrontEnd.from_environment(os.environ)
    proxy_port = iptables.parse_port("--proxy-port", args.proxy_port)
    ports = iptables.parse_ports(args.ports)
    setup = _transparent_setup(args)
    if setup is None:
        if args.apply or args.remove:
            raise ConfigError(
                f"--{'apply' if args.apply else 'remove'} needs a set-up: --gateway IFACE, or "
                "--local with --exclude-user USER or --exclude-mark MARK"
            )
        rulesets = [
            iptables.RuleSet(each, proxy_port, ports, args.block_quic) for each in _PLACEHOLDERS
        ]
        intro = (
            "# Transparent mode needs the network to send connections to waylay. The two common\n"
            "# set-ups follow, with placeholders: IFACE (the interface clients come in on), USER\n"
            "# (the user waylay runs as) or MARK (a firewall mark waylay sets, such as 1). Name\n"
            "# yours to get rules ready to paste, or to --apply them:\n"
            + "".join(f"#   {iptables.rules_command(each)}\n" for each in rulesets)
        )
        texts = [intro, *(iptables.script(each, front_end) for each in rulesets)]
        return _listing(lambda: sys.stdout.write("\n".join(texts)))
    ruleset = iptables.RuleSet(setup, proxy_port, ports, args.block_quic)
    if not (args.apply or args.remove):
        return _listing(lambda: sys.stdout.write(iptables.script(ruleset, front_end)))
    try:
        _change_rules(ruleset, front_end, remove=args.remove)
    except iptables.IptablesError as exc:
        print(f"waylay: error: {exc.reason}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _change_rules(ruleset: iptables.RuleSet, front_end: iptables.FrontEnd, *, remove: bool) -> None:
    flag = "--remove" if remove else "--apply"
    if os.geteuid() != 0:
        raise ConfigError(f"{flag} changes the packet filter, which needs root: run it with sudo")
    setup = ruleset.setup
    if isinstance(setup, iptables.LocalCapture) and isinstance(setup.exclude, iptables.ExcludeUser):
        user = setup.exclude.user
        if not user.isdecimal():
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise ConfigError(f"--exclude-user {user!r}: no such user here") from None
    for command in (front_end.ipv4, front_end.ipv6):
        if shutil.which(command) is None:
            raise ConfigError(
                f"{command} not found on PATH: install iptables, or choose the front end with "
                "WAYLAY_IPTABLES=iptables-nft or WAYLAY_IPTABLES=iptables-legacy"
            )
    rules = iptables.transparent_rules(ruleset)
    tools = f"{front_end.ipv4}, {front_end.ipv6}"
    if remove:
        outcome = iptables.remove_rules(rules, front_end)
        print(
            f"waylay: {outcome.changed} rules removed, {outcome.unchanged} were not there "
            f"({tools})",
            file=sys.stderr,
        )
        others = iptables.tagged_rules(rules, front_end)
        if others:
            print(
                f"waylay: {len(others)} other rules tagged waylay remain in these chains (made "
                "with other flags: remove them with those flags, or by hand):",
                file=sys.stderr,
            )
            for line in others:
                print(f"waylay:   {line}", file=sys.stderr)
        return
    outcome = iptables.apply_rules(rules, front_end)
    print(
        f"waylay: {outcome.changed} rules added, {outcome.unchanged} already there ({tools})",
        file=sys.stderr,
    )
    print(f"waylay: now run: {iptables.proxy_command(ruleset)}", file=sys.stderr)
    if isinstance(setup, iptables.Gateway):
        for key in iptables.disabled_forwarding(lambda path: Path(path).read_text()):
            print(
                f"waylay: warning: {key} is 0, so the clients' packets are not forwarded: "
                f"sysctl -w {key}=1",
                file=sys.stderr,
            )
