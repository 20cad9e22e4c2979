"""What every connection needs to know, passed to it rather than imported (no globals)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from waylay.access import AccessList
from waylay.errors import ConfigError
from waylay.hooks import HookTable
from waylay.hosts import Resolver
from waylay.memory import Trimmer
from waylay.options import Options
from waylay.passthrough import Passthrough
from waylay.proxyauth import ProxyAuth
from waylay.tls.contexts import UpstreamContexts, keylog_path

if TYPE_CHECKING:
    from waylay.certs.ca import CertificateAuthority
    from waylay.certs.store import CertStore
    from waylay.connection import ClientConnection
    from waylay.installpage import InstallPage
    from waylay.serverreplay import ServerReplay
    from waylay.store.flowstore import FlowStore


@dataclass(slots=True)
class ProxyContext:
    options: Options
    resolver: Resolver
    ca: CertificateAuthority
    # Forged certificates and their server-side TLS contexts, signed by the CA.
    certs: CertStore
    # Where every flow is recorded: --save FILE, or a temporary database.
    store: FlowStore
    hooks: HookTable = field(default_factory=HookTable)
    upstream_tls: UpstreamContexts = field(default_factory=UpstreamContexts)
    passthrough: Passthrough = field(default_factory=lambda: Passthrough(()))
    connections: set[ClientConnection] = field(default_factory=set)
    # When freed memory goes back to the OS: on the sweeper's ticks, sooner after a burst.
    trimmer: Trimmer = field(default_factory=Trimmer)
    # Client transports closing gently after their last response (connection._LingeringClose).
    lingering: set[asyncio.Transport] = field(default_factory=set)
    # Set by the server once it listens: the page for http://waylay.test/ and the proxy's
    # own address, and the (host, port) pairs that are the proxy itself (never forwarded to).
    install_page: InstallPage | None = None
    own_addresses: frozenset[tuple[str, int]] = frozenset()
    # `waylay web`: the UI's listening (address, port) — never reachable through the proxy.
    web_ui: tuple[str, int] | None = None
    # Transparent mode: the source ports of waylay's open connections to servers. A client
    # that comes from one of them (from this machine) is waylay itself, redirected back.
    own_ports: set[int] = field(default_factory=set)
    # A live filter reads bodies (`dump --filter '~b ...'`): each flow's bodies are kept whole
    # (up to --body-limit) in its request.raw_content and response.raw_content, for that filter.
    keep_bodies: bool = False
    # Which clients may use the proxy (--allow-from, or the default rule).
    access: AccessList = field(default_factory=lambda: AccessList(None, everyone=True))
    # --proxyauth: the credentials every proxied request must carry.
    proxyauth: ProxyAuth | None = None
    # --server-replay: stored responses that answer matching requests.
    server_replay: ServerReplay | None = None

    @classmethod
    def build(cls, options: Options, resolver: Resolver, hooks: HookTable) -> ProxyContext:
        """Everything the options ask for: the CA (created on first start), trust, passthrough.

        ConfigError names the file when the CA or a certificate file cannot be used.
        """
        from waylay.certs.ca import CertificateAuthority
        from waylay.certs.forge import LeafForger
        from waylay.certs.store import CertStore
        from waylay.serverreplay import ServerReplay
        from waylay.store.flowstore import FlowStore

        if options.upstream_mark is not None:
            check_mark_allowed(options.upstream_mark)
        ca = CertificateAuthority.load_or_create(options.confdir)
        certs = CertStore(
            ca, LeafForger(ca), user_certs=options.certs, keylog_filename=keylog_path()
        )
        server_replay = None
        if options.server_replay is not None:
            server_replay = ServerReplay(
                options.server_replay,
                strict=options.server_replay_strict,
                ignore_content=options.server_replay_ignore_content,
            )
        if options.save is not None:
            store = FlowStore(options.save, body_limit=options.body_limit)
        else:
            store = FlowStore.temporary(body_limit=options.body_limit)
        return cls(
            options,
            resolver,
            ca,
            certs,
            store,
            hooks,
            UpstreamContexts(
                insecure=options.insecure,
                upstream_ca=options.upstream_ca,
                client_certs=options.client_certs,
            ),
            Passthrough(options.ignore_hosts, remember_pinned=options.passthrough_pinned),
            server_replay=server_replay,
            access=AccessList.build(options.allow_from, options.listen.host),
            proxyauth=ProxyAuth.from_option(options.proxyauth) if options.proxyauth else None,
        )


def check_mark_allowed(mark: int) -> None:
    """ConfigError unless this process may set ``mark`` on its sockets (CAP_NET_ADMIN)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        except OSError as exc:
            raise ConfigError(
                f"--upstream-mark {mark:#x}: cannot mark sockets ({exc.strerror}); it needs "
                "root with CAP_NET_ADMIN, as the iptables rules it works with do"
            ) from None
