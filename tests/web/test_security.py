"""The web UI's safety rules (docs/web.md, "Safety") as tables: Host, Origin, token, password.

Each row is one request as the guard sees it and the verdict it must get. The attacks are
the ones that hit mitmweb: a page on another site re-pointing its own name at 127.0.0.1
(DNS rebinding: its Host is its own name), and a form or script on another site posting to
the UI (CSRF: its Origin is its own).
"""

from __future__ import annotations

import pytest

from waylay.web.security import (
    Guard,
    HostCheck,
    Seen,
    Verdict,
    origin_allowed,
    secret_matches,
)

TOKEN = "s3cret-token_value"
PASSWORD = "correct horse"

LOOPBACK = HostCheck("127.0.0.1", 8081)
ON_LAN = HostCheck("192.168.1.5", 8081)
WILDCARD = HostCheck("*", 8081)
ON_PORT_80 = HostCheck("127.0.0.1", 80)

HOSTS = [
    # (check, Host header, allowed)
    (LOOPBACK, "127.0.0.1:8081", True),
    (LOOPBACK, "localhost:8081", True),
    (LOOPBACK, "LOCALHOST:8081", True),
    (LOOPBACK, "[::1]:8081", True),
    (LOOPBACK, None, False),
    (LOOPBACK, "", False),
    (LOOPBACK, "127.0.0.1", False),  # the default port is 80, not the UI's
    (LOOPBACK, "127.0.0.1:8080", False),  # the proxy's port, not the UI's
    (LOOPBACK, "evil.test:8081", False),  # DNS rebinding
    (LOOPBACK, "evil.test", False),
    (LOOPBACK, "127.0.0.1.evil.test:8081", False),
    (LOOPBACK, "127.0.0.1.evil.test", False),
    (LOOPBACK, "localhost.:8081", False),
    (LOOPBACK, "localhost.evil.test:8081", False),
    (LOOPBACK, "127.0.0.1:8081.evil.test", False),
    (LOOPBACK, "127.0.0.1:8081:8081", False),
    (LOOPBACK, "user@127.0.0.1:8081", False),
    (LOOPBACK, "[::1]", False),
    (LOOPBACK, "::1:8081", False),
    (LOOPBACK, "127.1:8081", False),
    (LOOPBACK, "2130706433:8081", False),
    (LOOPBACK, "192.168.1.5:8081", False),  # on loopback, another address is not the UI
    (ON_LAN, "192.168.1.5:8081", True),
    (ON_LAN, "127.0.0.1:8081", True),
    (ON_LAN, "192.168.1.6:8081", False),
    (ON_LAN, "evil.test:8081", False),
    (WILDCARD, "192.168.1.5:8081", True),  # any address reaches a wildcard socket
    (WILDCARD, "10.0.0.1:8081", True),
    (WILDCARD, "[fe80::1]:8081", True),
    (WILDCARD, "localhost:8081", True),
    (WILDCARD, "*:8081", False),
    (WILDCARD, "10.0.0.1:8080", False),
    (WILDCARD, "10.0.0.1", False),
    (WILDCARD, "10.0.0.1:08081", False),
    (WILDCARD, "10.0.0.1:+8081", False),
    (WILDCARD, "evil.test:8081", False),  # a name is never an IP literal
    (WILDCARD, "10.0.0.1.evil.test:8081", False),
    (WILDCARD, "[::1:8081", False),
    (WILDCARD, "[evil.test]:8081", False),
    (WILDCARD, "[::1]x:8081", False),
    (ON_PORT_80, "127.0.0.1", True),  # a browser leaves the default port out
    (ON_PORT_80, "127.0.0.1:80", True),
    (ON_PORT_80, "localhost", True),
    (ON_PORT_80, "[::1]", True),
    (ON_PORT_80, "evil.test", False),
]


@pytest.mark.parametrize(("check", "host", "allowed"), HOSTS)
def test_host(check: HostCheck, host: str | None, allowed: bool) -> None:
    assert check.allows(host) is allowed


ORIGINS = [
    # (Origin header, allowed)
    (None, True),  # not a browser's cross-site request (curl, a script)
    ("http://127.0.0.1:8081", True),
    ("http://localhost:8081", True),
    ("http://[::1]:8081", True),
    ("HTTP://LOCALHOST:8081", True),
    ("null", False),  # a sandboxed frame, a file: page
    ("", False),
    ("http://evil.test", False),
    ("http://evil.test:8081", False),
    ("https://127.0.0.1:8081", False),  # not the UI's scheme
    ("http://127.0.0.1:8080", False),
    ("http://127.0.0.1:8081/", False),  # an Origin has no path
    ("http://127.0.0.1:8081.evil.test", False),
    ("http://127.0.0.1.evil.test:8081", False),
    ("ws://127.0.0.1:8081", False),
    ("127.0.0.1:8081", False),
]


@pytest.mark.parametrize(("origin", "allowed"), ORIGINS)
def test_origin(origin: str | None, allowed: bool) -> None:
    assert origin_allowed(origin, LOOPBACK) is allowed


SECRETS = [
    # (given, secret, matches)
    (TOKEN, TOKEN, True),
    (TOKEN + "x", TOKEN, False),
    (TOKEN[:-1], TOKEN, False),
    ("", TOKEN, False),
    (None, TOKEN, False),
    (TOKEN, None, False),
    ("", "", False),  # an empty secret is no secret
    ("pässwörd", "pässwörd", True),  # non-ASCII: compared as UTF-8 bytes
    ("passwörd", "pässwörd", False),
    ("tökén", TOKEN, False),
]


@pytest.mark.parametrize(("given", "secret", "matches"), SECRETS)
def test_secret(given: str | None, secret: str | None, matches: bool) -> None:
    assert secret_matches(given, secret) is matches


GOOD_HOST = "127.0.0.1:8081"
GOOD_ORIGIN = "http://127.0.0.1:8081"
EVIL = "http://evil.test"


def _seen(
    method: str,
    path: str,
    *,
    host: str | None = GOOD_HOST,
    origin: str | None = None,
    cookie: str | None = None,
    token: str | None = None,
    ws: bool = False,
) -> Seen:
    return Seen(method, path, host, origin, cookie=cookie, token=token, websocket=ws)


VERDICTS = [
    # (what the guard sees, with a password?, verdict)
    (_seen("GET", "/", token=TOKEN), False, Verdict.ENTER),
    (_seen("GET", "/api/flows", token=TOKEN), False, Verdict.ENTER),
    (_seen("GET", "/", token="wrong"), False, Verdict.REFUSE_TOKEN),
    (_seen("GET", "/", token=""), False, Verdict.REFUSE_TOKEN),
    # A stale token URL is refused even with a good cookie: it says the token is wrong.
    (_seen("GET", "/", cookie=TOKEN, token="old"), False, Verdict.REFUSE_TOKEN),
    (_seen("GET", "/", cookie=TOKEN), False, Verdict.ALLOW),
    (_seen("GET", "/api/flows", cookie=TOKEN), False, Verdict.ALLOW),
    (_seen("GET", "/"), False, Verdict.REFUSE_CREDENTIALS),
    (_seen("GET", "/", cookie="wrong"), False, Verdict.REFUSE_CREDENTIALS),
    (_seen("GET", "/", cookie=""), False, Verdict.REFUSE_CREDENTIALS),
    # The token is for entering: it does not authorise a change, or a socket.
    (_seen("POST", "/api/flows/clear", token=TOKEN), False, Verdict.REFUSE_CREDENTIALS),
    (_seen("GET", "/api/updates", token=TOKEN, ws=True), False, Verdict.REFUSE_CREDENTIALS),
    # DNS rebinding: a good cookie or token does not help a foreign Host.
    (_seen("GET", "/", host="evil.test:8081", cookie=TOKEN), False, Verdict.REFUSE_HOST),
    (_seen("GET", "/", host="evil.test:8081", token=TOKEN), False, Verdict.REFUSE_HOST),
    (_seen("GET", "/", host=None, cookie=TOKEN), False, Verdict.REFUSE_HOST),
    (_seen("GET", "/", host="127.0.0.1.evil.test:8081", cookie=TOKEN), False,
     Verdict.REFUSE_HOST),
    # CSRF: changes and the socket need no Origin or the UI's own.
    (_seen("POST", "/api/flows/clear", cookie=TOKEN), False, Verdict.ALLOW),
    (_seen("POST", "/api/flows/clear", origin=GOOD_ORIGIN, cookie=TOKEN), False, Verdict.ALLOW),
    (_seen("POST", "/api/flows/clear", origin=EVIL, cookie=TOKEN), False, Verdict.REFUSE_ORIGIN),
    (_seen("post", "/api/flows/clear", origin=EVIL, cookie=TOKEN), False, Verdict.REFUSE_ORIGIN),
    (_seen("DELETE", "/api/flows/1", origin="null", cookie=TOKEN), False, Verdict.REFUSE_ORIGIN),
    (_seen("PUT", "/api/intercept", origin="http://localhost:9999", cookie=TOKEN), False,
     Verdict.REFUSE_ORIGIN),
    (_seen("PATCH", "/api/live/1", origin="https://127.0.0.1:8081", cookie=TOKEN), False,
     Verdict.REFUSE_ORIGIN),
    (_seen("GET", "/api/updates", origin=EVIL, cookie=TOKEN, ws=True), False,
     Verdict.REFUSE_ORIGIN),
    (_seen("GET", "/api/updates", origin=GOOD_ORIGIN, cookie=TOKEN, ws=True), False,
     Verdict.ALLOW),
    # A cross-origin GET changes nothing, and SameSite=Strict keeps the cookie from it anyway.
    (_seen("GET", "/api/flows", origin=EVIL, cookie=TOKEN), False, Verdict.ALLOW),
    # Logging in: only with a password, and never from another origin.
    (_seen("POST", "/login"), True, Verdict.LOGIN),
    (_seen("GET", "/login"), True, Verdict.LOGIN),
    (_seen("POST", "/login", origin=GOOD_ORIGIN), True, Verdict.LOGIN),
    (_seen("POST", "/login", origin=EVIL), True, Verdict.REFUSE_ORIGIN),
    (_seen("POST", "/login", host="evil.test:8081"), True, Verdict.REFUSE_HOST),
    (_seen("POST", "/login"), False, Verdict.REFUSE_CREDENTIALS),
    (_seen("GET", "/"), True, Verdict.REFUSE_CREDENTIALS),
]  # fmt: skip


@pytest.mark.parametrize(("seen", "with_password", "verdict"), VERDICTS)
def test_verdict(seen: Seen, with_password: bool, verdict: Verdict) -> None:
    guard = Guard(LOOPBACK, TOKEN, PASSWORD if with_password else None)
    assert guard.judge(seen) is verdict


def test_the_password_is_checked_in_constant_time_and_only_when_set() -> None:
    assert Guard(LOOPBACK, TOKEN, PASSWORD).password_matches(PASSWORD)
    assert not Guard(LOOPBACK, TOKEN, PASSWORD).password_matches(TOKEN)
    assert not Guard(LOOPBACK, TOKEN, None).password_matches("")
    assert not Guard(LOOPBACK, TOKEN, "").password_matches("")


def test_a_guard_needs_a_token() -> None:
    with pytest.raises(ValueError):
        Guard(LOOPBACK, "")
