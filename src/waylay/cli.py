"""The `waylay` command: parse the flags, build the options, run the chosen subcommand.

Every failure the user can fix — a bad flag, an unusable file, a port in use — ends here as
one line on stderr and exit status 2; anything else is a bug and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from waylay import __version__
from waylay.addons.dumper import Dumper
from waylay.context import ProxyContext
from waylay.errors import ConfigError
from waylay.hooks import HookTable
from waylay.hosts import Resolver, load_hosts
from waylay.options import DEFAULT_LISTEN, Options, build_options
from waylay.server import ProxyServer, raise_open_file_limit
from waylay.upstream import dns_lookup

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and status 2), as the interface promises."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _proxy_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=f"where the proxy listens; port 0 picks a free port, HOST * is one dual-stack "
        f"socket on every address, [::1]:8080 an IPv6 literal (default {DEFAULT_LISTEN})",
    )
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


def build_parser() -> argparse.ArgumentParser:
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Name the subcommand whose --help lists the flags that do exist.
        _Parser(prog=f"waylay {args.command}").error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(format="waylay: %(message)s", level=logging.WARNING, stream=sys.stderr)
    try:
        options = build_options(_flags(args))
        if args.command == "dump":
            return run_dump(options)
    except ConfigError as exc:
        print(f"waylay: error: {exc.reason}", file=sys.stderr)
        return EXIT_USAGE
    raise AssertionError(f"unhandled command {args.command}")


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = ("listen", "confdir", "hosts", "hosts_only", "quiet")
    return {name: getattr(args, name, None) for name in names}


def run_dump(options: Options) -> int:
    addons: list[object] = []
    if not options.quiet:
        addons.append(Dumper(sys.stdout))
    table = load_hosts(options.hosts) if options.hosts else {}
    resolver = Resolver(table, hosts_only=options.hosts_only, lookup=dns_lookup)
    ctx = ProxyContext(options, resolver, HookTable(addons))
    raise_open_file_limit()
    return asyncio.run(_serve(ctx))


async def _serve(ctx: ProxyContext) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = ProxyServer(ctx)
    port = await server.start()
    print(f"waylay listening on {ctx.options.listen.display(port)}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
    return EXIT_OK
