"""Who may use the web UI: the rules of docs/web.md ("Safety"), as one pure decision.

Theory of operation
-------------------
The UI can replay requests, read every captured body and cookie, and change flows in flight,
so a request reaches a handler only when it passes three checks, in this order (the web
server's middleware asks `Guard.judge` and turns the verdict into a response, for every route
and for the routes that do not exist):

1. **Host.** The `Host` header must name the UI's own address (`HostCheck`): a loopback name
   with the UI's port, or the `--web` host and port. A page on `evil.test` whose name an
   attacker re-pointed at 127.0.0.1 (DNS rebinding) sends `Host: evil.test:8081` and is
   refused before it can read anything. On a wildcard listener (`*`, `0.0.0.0`, `::`) any IP
   literal with the UI's port is also the UI: a rebinding attack needs a name, and every
   address of the machine reaches a wildcard socket.
2. **Origin.** A request that changes something (POST, PUT, PATCH, DELETE) and the WebSocket
   must carry no `Origin` or the UI's own (`http://` and an allowed Host): a form or script on
   another site cannot make the browser act for the user (CSRF), whatever cookies it sends.
3. **Credentials.** The token printed at start-up, as `?token=` (the UI sets the cookie and
   redirects, so the token leaves the address bar), or the cookie it set; with a password,
   `/login` is open to take it. Every secret is compared with `hmac.compare_digest`, on bytes
   (it refuses non-ASCII text), so how long a comparison takes says nothing about the secret.

Owns: the decision. Does not own: HTTP, cookies' syntax, the login form, IO of any kind.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
from dataclasses import dataclass

COOKIE_NAME = "waylay_web"
LOGIN_PATH = "/login"
# RFC 9110 §9.2.1: the methods that are not "safe" change something on the server.
CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = frozenset({"*", "0.0.0.0", "::"})


def _authority(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{shown}:{port}".lower()


class HostCheck:
    """The `Host` values that name the UI listening on ``host``:``port`` (its --web address).

    A browser leaves the port out when it is the scheme's default (RFC 9110 §7.2), so on port
    80 the bare host is accepted too. Names are compared without case, as DNS compares them.
    """

    __slots__ = ("_any_ip", "_port", "allowed")

    def __init__(self, host: str, port: int) -> None:
        self._port = port
        self._any_ip = host in _WILDCARDS
        hosts = set(_LOOPBACK_HOSTS)
        if not self._any_ip:
            hosts.add(host)
        names = {_authority(name, port) for name in hosts}
        if port == 80:
            names |= {_authority(name, port).rsplit(":", 1)[0] for name in hosts}
        self.allowed = frozenset(names)

    def allows(self, value: str | None) -> bool:
        """True if ``value`` (a Host header, or an Origin's host part) names the UI."""
        if not value:
            return False
        value = value.lower()
        if value in self.allowed:
            return True
        return self._any_ip and self._is_ip_authority(value)

    def _is_ip_authority(self, value: str) -> bool:
        if value.startswith("["):
            end = value.find("]")
            if end < 0:
                return False
            host, rest = value[1:end], value[end + 1 :]
            parse: type[ipaddress.IPv4Address | ipaddress.IPv6Address] = ipaddress.IPv6Address
        else:
            host, colon, port = value.partition(":")
            rest = colon + port
            parse = ipaddress.IPv4Address
        if rest:
            port = rest[1:]
            if not rest.startswith(":") or not (port.isascii() and port.isdecimal()):
                return False
            if port != str(self._port):
                return False
        elif self._port != 80:
            return False
        try:
            parse(host)
        except ValueError:
            return False
        return True


def origin_allowed(origin: str | None, hosts: HostCheck) -> bool:
    """No Origin (not a browser's cross-site request), or exactly the UI's own origin.

    `null` (a sandboxed frame, a redirect across sites, a file: page) is another origin.
    """
    if origin is None:
        return True
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme.lower() != "http" or "/" in rest:
        return False
    return hosts.allows(rest)


def secret_matches(given: str | None, secret: str | None) -> bool:
    """``given`` is ``secret``, compared in constant time; never True when either is absent."""
    if given is None or secret is None or not secret:
        return False
    return hmac.compare_digest(given.encode("utf-8"), secret.encode("utf-8"))


class Verdict(enum.Enum):
    """What to do with a request, in the order the checks run."""

    REFUSE_HOST = "the Host header does not name the web UI (DNS rebinding?)"
    REFUSE_ORIGIN = "a request from another origin cannot change anything here (CSRF)"
    REFUSE_TOKEN = "this token is not the one waylay printed at start-up"
    REFUSE_CREDENTIALS = "open the URL with the token waylay printed at start-up"
    # A valid ?token=: set the cookie and redirect to the same path without the token.
    ENTER = "enter"
    # The login form, or a password to check (only with --web-password).
    LOGIN = "login"
    ALLOW = "allow"

    @property
    def refused(self) -> bool:
        return self.name.startswith("REFUSE")


@dataclass(frozen=True, slots=True)
class Seen:
    """What the guard reads of one request."""

    method: str
    path: str
    # The raw Host header; None when it is missing or given more than once.
    host: str | None
    origin: str | None
    # The waylay_web cookie, and the ?token= query parameter.
    cookie: str | None = None
    token: str | None = None
    websocket: bool = False


class Guard:
    """The UI's rules for its address, token and password (docs/web.md, "Safety")."""

    __slots__ = ("hosts", "password", "token")

    def __init__(self, hosts: HostCheck, token: str, password: str | None = None) -> None:
        if not token:
            raise ValueError("the web UI needs a token")
        self.hosts = hosts
        self.token = token
        self.password = password or None

    def judge(self, seen: Seen) -> Verdict:
        if not self.hosts.allows(seen.host):
            return Verdict.REFUSE_HOST
        changing = seen.method.upper() in CHANGING_METHODS or seen.websocket
        if changing and not origin_allowed(seen.origin, self.hosts):
            return Verdict.REFUSE_ORIGIN
        if seen.token is not None:
            if seen.method.upper() not in ("GET", "HEAD") or seen.websocket:
                return Verdict.REFUSE_CREDENTIALS
            return Verdict.ENTER if self.token_matches(seen.token) else Verdict.REFUSE_TOKEN
        if seen.path == LOGIN_PATH and self.password is not None:
            return Verdict.LOGIN
        if self.token_matches(seen.cookie):
            return Verdict.ALLOW
        return Verdict.REFUSE_CREDENTIALS

    def token_matches(self, given: str | None) -> bool:
        return secret_matches(given, self.token)

    def password_matches(self, given: str | None) -> bool:
        return secret_matches(given, self.password)
