"""The web UI's server: the aiohttp application, its guard on every route, and its life.

Theory of operation
-------------------
`WebUI` is made before the proxy starts: its socket is bound first, so the proxy knows the
UI's address (`ctx.web_ui`) before it accepts a single client and never forwards to it, and
the live flows' addon (live.py) joins the addon chain before the chain is loaded. It then
serves in the proxy's own event loop, next to the proxy, until `stop`.

One middleware runs before every handler — the API's, the page's, the static files', and the
404 of a path that does not exist — and asks `security.Guard` whether the request may go on
(docs/web.md, "Safety"); nothing reaches a handler without a verdict to let it. A refusal
says why, in one line, and never echoes what the request sent. Every response says it is not
to be framed, sniffed, cached or sent on as a referrer.

The routes: `flows.py` (the stored flows, /api/info), `live.py` (the paused flows, the
intercept filter), `updates.py` (/api/updates), and here `/` (the page), `/static/` (its
files) and `/login` (with --web-password).
"""

from __future__ import annotations

import asyncio
import html
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from waylay.web.flows import StoredFlows, error_response
from waylay.web.security import COOKIE_NAME, LOGIN_PATH, Guard, HostCheck, Seen, Verdict
from waylay.web.state import STATE, WebState

if TYPE_CHECKING:
    from waylay.addons.chain import AddonChain
    from waylay.context import ProxyContext
    from waylay.options import ListenAddress

STATIC = Path(__file__).parent / "static"
# A replayed or edited body comes as JSON, base64 at worst: room for --body-limit's default.
MAX_REQUEST_BODY = 96 * 1024 * 1024
# How long stopping waits for requests in progress (a replay, a HAR download).
SHUTDOWN_TIMEOUT = 2.0
# A wrong password costs this long, one attempt at a time: guessing goes slowly.
LOGIN_DELAY = 0.5


_SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


def _page(title: str, text: str, *, login: bool = False, status: int = 200) -> web.Response:
    """A small page of waylay's own words (nothing from the request is shown)."""
    form = ""
    if login:
        form = (
            f'<form method="post" action="{LOGIN_PATH}">'
            '<label>Password <input type="password" name="password" autofocus></label> '
            '<button type="submit">Log in</button></form>'
        )
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>waylay: {html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{form}</body></html>"
    )
    return web.Response(text=body, content_type="text/html", charset="utf-8", status=status)


def _refusal(verdict: Verdict, request: web.Request, guard: Guard) -> web.Response:
    reason = verdict.value
    if request.path.startswith("/api/"):
        return error_response(403, reason)
    login = verdict is Verdict.REFUSE_CREDENTIALS and guard.password is not None
    if login:
        reason += ", or log in with the password waylay was started with"
    return _page("forbidden", reason, login=login, status=403)


def _entered(request: web.Request, token: str) -> web.Response:
    """The token was right: set the cookie, and send the browser where it was going, without
    the token in its address bar (or its history)."""
    query = [(name, value) for name, value in request.rel_url.query.items() if name != "token"]
    return _with_cookie(str(request.rel_url.with_query(query)), token)


def _with_cookie(location: str, token: str) -> web.Response:
    """A 303 to ``location`` that sets the UI's cookie."""
    response = web.Response(status=303, headers={"Location": location})
    response.set_cookie(COOKIE_NAME, token, httponly=True, samesite="Strict", path="/")
    return response


def guard_middleware(guard: Guard) -> Middleware:
    @web.middleware
    async def guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        hosts = request.headers.getall("Host", [])
        origins = request.headers.getall("Origin", [])
        seen = Seen(
            method=request.method,
            path=request.path,
            # Two Host fields name no one address; two Origins are no one origin.
            host=hosts[0] if len(hosts) == 1 else None,
            origin=None if not origins else origins[0] if len(origins) == 1 else "",
            cookie=request.cookies.get(COOKIE_NAME),
            token=request.query.get("token"),
            websocket=request.headers.get("Upgrade", "").lower() == "websocket",
        )
        verdict = guard.judge(seen)
        if verdict.refused:
            return _refusal(verdict, request, guard)
        if verdict is Verdict.ENTER:
            return _entered(request, guard.token)
        return await handler(request)

    return guarded


async def _safety_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _SAFETY_HEADERS.items():
        response.headers.setdefault(name, value)
    cache = "no-cache" if request.path.startswith("/static/") else "no-store"
    response.headers.setdefault("Cache-Control", cache)
    response.headers["Server"] = "waylay"  # not aiohttp's and Python's versions


class _Login:
    """`/login` with --web-password: the form, and the password that sets the cookie."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._one_at_a_time = asyncio.Lock()

    async def form(self, request: web.Request) -> web.Response:
        return _page("log in", "The password waylay web was started with:", login=True)

    async def check(self, request: web.Request) -> web.Response:
        data = await request.post()
        given = data.get("password")
        async with self._one_at_a_time:
            if isinstance(given, str) and self.guard.password_matches(given):
                return _with_cookie("/", self.guard.token)
            await asyncio.sleep(LOGIN_DELAY)
        return _page("log in", "That is not the password.", login=True, status=403)


def build_app(state: WebState, guard: Guard, *, static: Path = STATIC) -> web.Application:
    """The application of the UI over ``state``; call it before the addons are loaded."""
    app = web.Application(middlewares=[guard_middleware(guard)], client_max_size=MAX_REQUEST_BODY)
    app[STATE] = state
    stored = StoredFlows(state)
    app.add_routes(stored.routes())
    app.add_routes([web.get("/api/updates", state.updates.handle)])
    state.ctx.store.commit_listeners.append(state.updates.announce_stored(stored.summaries))
    _add_live(app, state)
    index = static / "index.html"

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(index)

    async def ca_certificate(request: web.Request) -> web.Response:
        # The CA's certificate (never its key) in each format, as the install page serves it
        # through the proxy: a browser not yet set to use the proxy gets it here.
        install = state.ctx.install_page
        kind = request.match_info["kind"]
        if install is None or kind not in ("pem", "cer", "p12"):
            raise web.HTTPNotFound()
        status, fields, body = install.respond(f"/cert/{kind}")
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in fields
            if name.lower() != b"content-length"
        }
        return web.Response(status=status, body=body, headers=headers)

    app.add_routes([web.get("/", page), web.get("/ca/{kind}", ca_certificate)])
    if guard.password is not None:
        login = _Login(guard)
        app.add_routes([web.get(LOGIN_PATH, login.form), web.post(LOGIN_PATH, login.check)])
    app.router.add_static("/static/", static)
    app.on_response_prepare.append(_safety_headers)
    return app


def _add_live(app: web.Application, state: WebState) -> None:
    """The paused flows' routes, and their addon in the chain (live.py)."""
    from waylay.web import live

    live.add_routes(app, state)


def ui_url(listen: ListenAddress, port: int) -> str:
    """Where a browser on this machine opens the UI (a wildcard is reached on loopback)."""
    host = {"*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(listen.host, listen.host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class WebUI:
    """The UI for one `waylay web`: bound at once, serving from `start` to `stop`."""

    def __init__(
        self,
        ctx: ProxyContext,
        addons: AddonChain,
        sock: socket.socket,
        listen: ListenAddress,
        *,
        password: str | None = None,
    ) -> None:
        address, port = sock.getsockname()[:2]
        ctx.web_ui = (address, port)
        self.state = WebState(
            ctx, addons, secrets.token_urlsafe(32), password, intercept=ctx.options.intercept
        )
        self.state.web = listen.display(port)
        self.url = ui_url(listen, port)
        guard = Guard(HostCheck(listen.host, port), self.state.token, password)
        self.app = build_app(self.state, guard)
        self._sock = sock
        self._runner: web.AppRunner | None = None
        self._stopped = False

    @property
    def token_url(self) -> str:
        """The URL printed at start-up: it lets a browser in."""
        return f"{self.url}?token={self.state.token}"

    async def start(self, proxy_listen: str) -> None:
        self.state.listen = proxy_listen
        runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        self._runner = runner
        await web.SockSite(runner, self._sock).start()

    async def stop(self) -> None:
        """Close the pages' sockets, then the server (requests in progress get a moment).

        Once: a second call does nothing.
        """
        if self._stopped:
            return
        self._stopped = True
        await self.state.updates.close()
        if self._runner is not None:
            await self._runner.cleanup()
        else:
            self._sock.close()
