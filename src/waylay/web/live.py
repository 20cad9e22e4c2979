"""Live flows: the intercept filter the web UI sets at run time, and the flows it holds.

Theory of operation
-------------------
`LiveFlows` is one of waylay's own addons under `waylay web`, in the place `--intercept`'s
addon has under `waylay dump` (the last of the built-in rules, before the scripts), and it
starts from `--intercept`'s filter. Its request and response hooks pause the flows the filter
matches as intercept.py's do — at the request before anything went to the server, at the
response before anything went to the client — and keep them by `flow.id` until the API edits,
resumes or kills them. A paused flow waits in its own connection's coroutine
(connection._run_hooks): it holds back nothing else.

A request or response hook makes every body wait whole for it (up to --stream-large-bodies),
which with no filter set would cost every flow for nothing. So the two hooks are attributes of
the instance, None while the filter is off: HookTable collects only what is callable, and each
change of the filter rebuilds `ctx.hooks` from the chain. With the filter off the proxy runs on
exactly the table it would have without this addon; a script reload, which rebuilds the table
too, finds the hooks as the filter left them.

A body that streamed past the hooks (over --stream-large-bodies) has gone on by the time they
see it, so such a flow is not paused: nothing edited there would be sent. A flow leaves the
live set when the API resumes or kills it; one something else resumed (a script) is dropped
the next time the set is read. A paused flow whose client went away stays until it is resumed
or killed, and then ends as a flow whose client is gone.

Edits are checked whole before any is applied, so a refused edit changes nothing, and what
cannot be sent — a method that is not a token, a URL that is not http(s), a header line with a
line break, a 1xx status, a body on a 204 or 304 — is refused with its reason. A body is given
as LIVE shows it, the decoded content, and set through `.content`: it is encoded again with
the Content-Encoding the edited headers name, and Content-Length follows (the data path frames
a whole body with its length anyway). A body given back unchanged keeps its wire bytes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from waylay.addons.intercept import Intercept
from waylay.filters import Filter, FilterError, parse_filter
from waylay.flow import Flow, Request, Response
from waylay.headers import Headers
from waylay.web.shapes import detail

if TYPE_CHECKING:
    from waylay.web.state import WebState

Phase = Literal["request", "response"]

# RFC 9110 §9.1: a method is a token (§5.6.2).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ).
_REASON = re.compile(r"[\t \x21-\x7e\x80-\xff]*")
_REQUEST_FIELDS = frozenset({"method", "url", "headers", "body", "body_base64"})
_RESPONSE_FIELDS = frozenset({"status_code", "reason", "headers", "body", "body_base64"})


class EditError(ValueError):
    """An edit that cannot be applied or sent: the reason, for the page to show."""


@dataclass(slots=True)
class Paused:
    """A flow held by the filter, and where: before its request or its response went on."""

    flow: Flow
    phase: Phase


class LiveFlows:
    """The intercept filter, settable at run time, and the flows it paused, by flow.id."""

    # The hooks, present only while a filter is set (see the module's docstring).
    request: Callable[[Flow], None] | None
    response: Callable[[Flow], None] | None

    def __init__(self, state: WebState) -> None:
        self._state = state
        self._paused: dict[int, Paused] = {}
        self._take_hooks(state.intercept)

    # -- the filter -----------------------------------------------------------------------

    @property
    def filter(self) -> Filter | None:
        return self._state.intercept

    def set_filter(self, filter: Filter | None) -> None:
        """Pause what ``filter`` matches from the next request on (None: nothing). The flows
        paused already stay paused."""
        self._take_hooks(filter)
        self._state.ctx.hooks = self._state.addons.table()

    def _take_hooks(self, filter: Filter | None) -> None:
        self._state.intercept = filter
        on = filter is not None
        self.request = self._at_request if on else None
        self.response = self._at_response if on else None

    def _at_request(self, flow: Flow) -> None:
        # request_sent: the body streamed (over the limit) and the request is gone already.
        if not flow.timestamps.request_sent:
            self._pause(flow, "request")

    def _at_response(self, flow: Flow) -> None:
        # end: the body streamed, or an addon's answer went, before the hook ran.
        if not flow.timestamps.end:
            self._pause(flow, "response")

    def _pause(self, flow: Flow, phase: Phase) -> None:
        # As intercept.py: a replayed flow would have nobody to resume it.
        filter = self._state.intercept
        if filter is None or flow.error is not None or flow.replay_of is not None:
            return
        if not filter.matches(flow):
            return
        flow.intercept()
        paused = self._paused[flow.id] = Paused(flow, phase)
        self._state.broadcast({"type": "live", "flow": live_json(paused)})

    # -- the paused flows -----------------------------------------------------------------

    def paused(self) -> list[Paused]:
        """The flows paused now, in the order they paused."""
        for flow_id in [i for i, p in self._paused.items() if not p.flow.intercepted]:
            self._forget(flow_id)  # resumed by something else (a script)
        return list(self._paused.values())

    def get(self, flow_id: int) -> Paused | None:
        paused = self._paused.get(flow_id)
        if paused is not None and not paused.flow.intercepted:
            self._forget(flow_id)
            return None
        return paused

    def resume(self, flow_id: int) -> bool:
        """Let the flow go on as it is now; False if no such flow is paused."""
        paused = self._forget(flow_id)
        if paused is None:
            return False
        paused.flow.resume()
        return True

    def kill(self, flow_id: int) -> bool:
        """Drop the flow (its client's connection is reset); False if no such flow is paused."""
        paused = self._forget(flow_id)
        if paused is None:
            return False
        paused.flow.kill()
        return True

    def resume_all(self) -> None:
        for flow_id in list(self._paused):
            self.resume(flow_id)

    def edited(self, paused: Paused) -> None:
        """Tell the pages the flow changed (the same message as when it paused)."""
        self._state.broadcast({"type": "live", "flow": live_json(paused)})

    def _forget(self, flow_id: int) -> Paused | None:
        paused = self._paused.pop(flow_id, None)
        if paused is not None:
            self._state.broadcast({"type": "resumed", "id": flow_id})
        return paused


def install(state: WebState) -> LiveFlows:
    """A LiveFlows on ``state``, in the chain in the place of --intercept's addon.

    Its hooks then run after the built-in rules and before the scripts' (the order
    builtin.py gives --intercept), and `ctx.hooks` is rebuilt with them.
    """
    chain = state.addons
    live = LiveFlows(state)
    chain.own = [addon for addon in chain.own if not isinstance(addon, Intercept)] + [live]
    state.ctx.hooks = chain.table()
    return live


def add_routes(app: web.Application, state: WebState) -> None:
    """Install the LiveFlows addon and serve its API (docs/web.md) on ``app``."""
    app.add_routes(routes(install(state)))


# -- editing ------------------------------------------------------------------------------


def edit_request(request: Request, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` (method, url, headers, body or body_base64) to ``request``, all or
    none; EditError says what cannot be sent."""
    _check_fields(changes, _REQUEST_FIELDS, "request")
    edited = dataclasses.replace(request, headers=request.headers.copy())
    if "method" in changes:
        method = changes["method"]
        if not isinstance(method, str) or not _TOKEN.fullmatch(method):
            raise EditError(f"{method!r} is not a method (RFC 9110 §9.1: a token)")
        edited.method = method
    if "url" in changes:
        url = changes["url"]
        if not isinstance(url, str):
            raise EditError("url: a string is needed")
        try:
            edited.url = url
        except ValueError as exc:
            raise EditError(f"url: {exc}") from None
    _edit_message(edited, changes)
    request.method = edited.method
    request.scheme, request.host, request.port = edited.scheme, edited.host, edited.port
    request.path = edited.path
    request.headers = edited.headers
    request.raw_content = edited.raw_content


def edit_response(response: Response, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` (status_code, reason, headers, body or body_base64) to ``response``,
    all or none; EditError says what cannot be sent."""
    _check_fields(changes, _RESPONSE_FIELDS, "response")
    edited = dataclasses.replace(response, headers=response.headers.copy())
    if "status_code" in changes:
        status = changes["status_code"]
        # RFC 9110 §15: three digits; a 1xx is interim, never the response itself.
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 999:
            raise EditError(f"status_code {status!r}: a number from 200 to 999 is needed")
        edited.status_code = status
    if "reason" in changes:
        reason = changes["reason"]
        if not isinstance(reason, str) or not _REASON.fullmatch(reason):
            raise EditError(f"reason {reason!r}: one line of Latin-1 (RFC 9112 §4)")
        edited.reason = reason
    _edit_message(edited, changes)
    if edited.raw_content and edited.status_code in (204, 304):
        # RFC 9110 §15.3.5, §15.4.5.
        raise EditError(f"a {edited.status_code} response has no body")
    response.status_code, response.reason = edited.status_code, edited.reason
    response.headers = edited.headers
    response.raw_content = edited.raw_content


def _check_fields(changes: Mapping[str, Any], known: frozenset[str], what: str) -> None:
    unknown = sorted(set(changes) - known)
    if unknown:
        raise EditError(f"{what}: unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    if "body" in changes and "body_base64" in changes:
        raise EditError(f"{what}: body or body_base64, not both")


def _edit_message(message: Request | Response, changes: Mapping[str, Any]) -> None:
    """Headers first, then the body: it is encoded as the new headers say.

    A body given back as it was shown, under the same Content-Encoding, keeps its bytes as
    they are: a page sends the whole message each time, and an unchanged body must go on
    unchanged — not compressed anew, nor encoded twice when it could not be decoded.
    """
    shown = message.get_content(strict=False)
    encoding = message.headers.get("content-encoding")
    if "headers" in changes:
        message.headers = _headers(changes["headers"])
    body = _body(changes)
    if body is None or (body == shown and message.headers.get("content-encoding") == encoding):
        return
    try:
        message.content = body
    except ValueError as exc:  # a Content-Encoding waylay cannot apply
        raise EditError(f"body: {exc}") from None


def _headers(value: object) -> Headers:
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
        for pair in value
    ):
        raise EditError("headers: a list of [name, value] pairs of strings is needed")
    try:
        return Headers((name, value) for name, value in value)
    except ValueError as exc:
        raise EditError(f"headers: {exc}") from None


def _body(changes: Mapping[str, Any]) -> bytes | None:
    if "body" in changes:
        text = changes["body"]
        if not isinstance(text, str):
            raise EditError("body: a string is needed (body_base64 for bytes)")
        return text.encode("utf-8")
    if "body_base64" in changes:
        encoded = changes["body_base64"]
        try:
            if not isinstance(encoded, str):
                raise TypeError
            return base64.b64decode(encoded, validate=True)
        except (TypeError, binascii.Error):
            raise EditError("body_base64: not base64") from None
    return None


# -- what the page sees -------------------------------------------------------------------


def live_json(paused: Paused) -> dict[str, Any]:
    """LIVE (docs/web.md): the flow, where it is paused, and its bodies as they would go on."""
    flow = paused.flow
    live: dict[str, Any] = {"id": flow.id, "phase": paused.phase, "flow": detail(flow, live=True)}
    for name, message in (("request", flow.request), ("response", flow.response)):
        text, encoded = _shown_body(message)
        live[f"{name}_body"] = text
        live[f"{name}_body_base64"] = encoded
    return live


def _shown_body(message: Request | Response | None) -> tuple[str | None, str | None]:
    """The decoded body as text when it is UTF-8, else as base64; (None, None) without one.

    A body whose Content-Encoding cannot be undone is shown as it is on the wire.
    """
    if message is None:
        return None, None
    content = message.get_content(strict=False)
    if content is None:
        return None, None
    try:
        return content.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, base64.b64encode(content).decode("ascii")


# -- the HTTP API -------------------------------------------------------------------------


def _error(status: int, reason: str, **extra: object) -> web.Response:
    # flows.error_response's shape (flows.py imports this module: not imported from there).
    return web.json_response({"error": reason, **extra}, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        value = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "the body is not JSON"}), content_type="application/json"
        ) from None
    if not isinstance(value, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "a JSON object is needed"}), content_type="application/json"
        )
    return value


def routes(live: LiveFlows) -> list[web.RouteDef]:
    """The routes of the live flows (docs/web.md), on ``live``."""

    async def get_intercept(request: web.Request) -> web.Response:
        current = live.filter
        return web.json_response({"filter": None if current is None else current.text})

    async def put_intercept(request: web.Request) -> web.Response:
        body = await _json_object(request)
        text = body.get("filter")
        if text is not None and not isinstance(text, str):
            return _error(400, "filter: a string or null is needed")
        if not text:
            live.set_filter(None)
            return web.json_response({"filter": None})
        try:
            parsed = parse_filter(text)
        except FilterError as exc:
            return _error(400, exc.reason, column=exc.column)
        live.set_filter(parsed)
        return web.json_response({"filter": parsed.text})

    async def list_live(request: web.Request) -> web.Response:
        return web.json_response([live_json(paused) for paused in live.paused()])

    async def patch_live(request: web.Request) -> web.Response:
        body = await _json_object(request)
        # Looked up once the body is read: the flow may have gone on meanwhile.
        paused = _paused(live, request)
        if set(body) not in ({"request"}, {"response"}):
            return _error(400, 'one of "request" or "response" is needed')
        (side, changes), *_ = body.items()
        if not isinstance(changes, dict):
            return _error(400, f"{side}: a JSON object is needed")
        flow = paused.flow
        try:
            if side == "request":
                if paused.phase != "request":
                    raise EditError("the request has gone to the server: only its response")
                edit_request(flow.request, changes)
            else:
                if paused.phase != "response" or flow.response is None:
                    raise EditError("there is no response yet: it is paused at its request")
                edit_response(flow.response, changes)
        except EditError as exc:
            return _error(400, str(exc))
        live.edited(paused)
        return web.json_response(live_json(paused))

    async def resume(request: web.Request) -> web.Response:
        if not live.resume(_flow_id(request)):
            raise _no_such_flow(request)
        return web.Response(status=204)

    async def kill(request: web.Request) -> web.Response:
        if not live.kill(_flow_id(request)):
            raise _no_such_flow(request)
        return web.Response(status=204)

    async def resume_all(request: web.Request) -> web.Response:
        live.resume_all()
        return web.Response(status=204)

    return [
        web.get("/api/intercept", get_intercept),
        web.put("/api/intercept", put_intercept),
        web.get("/api/live", list_live),
        web.post("/api/live/resume-all", resume_all),
        web.patch("/api/live/{id}", patch_live),
        web.post("/api/live/{id}/resume", resume),
        web.post("/api/live/{id}/kill", kill),
    ]


def _flow_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise _no_such_flow(request)
    return int(raw)


def _no_such_flow(request: web.Request) -> web.HTTPNotFound:
    return web.HTTPNotFound(
        text=json.dumps({"error": f"no paused flow {request.match_info['id']}"}),
        content_type="application/json",
    )


def _paused(live: LiveFlows, request: web.Request) -> Paused:
    paused = live.get(_flow_id(request))
    if paused is None:
        raise _no_such_flow(request)
    return paused
