"""The hooks addons implement, and the dispatch tables built from them.

An addon is any object with methods named after hooks (mitmproxy's names, so its users feel at
home). When the addons are loaded — and again whenever they change — `HookTable` collects, per
hook, the bound methods that exist: dispatching an event is then a loop over a short tuple, and
a hook nobody implements costs one falsy check, never a scan of every addon or a task.

A hook may be a plain function or a coroutine function; a coroutine is awaited in the
connection's own coroutine. An exception in a hook is logged with its traceback, naming the
file the hook is written in (a user's script), and the flow goes on.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

log = logging.getLogger("waylay.hooks")

HOOKS: dict[str, str] = {
    # -- the addon's life ------------------------------------------------------------------
    "load": (
        "The addon was loaded (at start, or its script again after a change). Receives the "
        "Loader: declare the addon's own options with loader.add_option(name, type, default, "
        "help); their values are then loader.options.NAME."
    ),
    "running": "The proxy is listening and serving. Receives nothing.",
    "done": "The proxy is stopping, or the addon's script is being reloaded. Receives nothing.",
    # -- connections -----------------------------------------------------------------------
    "client_connected": "A client connected to waylay. Receives the Client.",
    "client_disconnected": "A client connection closed. Receives the Client.",
    "tls_clienthello": (
        "A client began a TLS handshake that waylay is about to intercept. Receives the "
        "ClientHelloData: .client_hello (sni, alpn), .client_address, .server_address; set "
        ".ignore_connection = True to relay the connection untouched instead."
    ),
    "http_connect": (
        "A CONNECT request arrived, before waylay connects to its server. Receives the Flow "
        "(method CONNECT; .request.host and .port name the tunnel's server): set "
        "flow.response to answer it yourself (a non-2xx answer refuses the tunnel), or "
        "flow.kill() to drop it."
    ),
    # -- HTTP ----------------------------------------------------------------------------------
    "requestheaders": (
        "A request head arrived; its body (if any) has not been read yet. Receives the Flow. "
        "Set flow.request.stream = True (or a function from bytes to bytes, applied to each "
        "piece as it is on the wire, then once to b'' at the end) to stream the body past "
        "request hooks, or flow.stream = True for both bodies."
    ),
    "request": (
        "The whole request has been read (its body buffered whole: flow.request.content) and "
        "nothing has been sent to the server yet. Receives the Flow: change the request, set "
        "flow.response (Response.make) to answer without contacting the server, "
        "flow.kill(), or flow.intercept(). When the body streamed (flow.request.stream, or "
        "over --stream-large-bodies) it has already gone and content is None."
    ),
    "responseheaders": (
        "A response head arrived from the server; its body has not been read yet. Receives "
        "the Flow. Set flow.response.stream = True (or a function from bytes to bytes) to "
        "stream the body past response hooks."
    ),
    "response": (
        "The whole response has been read (flow.response.content) and nothing of it has "
        "been sent to the client yet. Receives the Flow: change the response, flow.kill(), "
        "or flow.intercept(). When the body streamed it has already gone and content is None."
    ),
    "error": "The flow failed: flow.error says why (the client saw it too). Receives the Flow.",
    # -- raw TCP ---------------------------------------------------------------------------------
    "tcp_message": (
        "Bytes arrived on a raw TCP connection (transparent mode: neither TLS nor HTTP). "
        "Receives the Flow, of kind 'tcp': flow.messages[-1] is the TcpMessage (.from_client, "
        ".content); change .content to send other bytes (b'' sends nothing). Only the last "
        "message is kept, so memory stays flat."
    ),
    "tcp_end": (
        "A raw TCP connection (transparent mode: neither TLS nor HTTP) ended. Receives its "
        "Flow, of kind 'tcp': the sizes count the bytes each way."
    ),
}

Hook = Callable[..., Any]
_H = TypeVar("_H", bound=Callable[..., Any])


class HookTable:
    """Per hook name, the tuple of addon methods to call, in addon order."""

    __slots__ = (*HOOKS, "passive_request", "passive_response")

    load: tuple[Hook, ...]
    running: tuple[Hook, ...]
    done: tuple[Hook, ...]
    client_connected: tuple[Hook, ...]
    client_disconnected: tuple[Hook, ...]
    tls_clienthello: tuple[Hook, ...]
    http_connect: tuple[Hook, ...]
    requestheaders: tuple[Hook, ...]
    request: tuple[Hook, ...]
    responseheaders: tuple[Hook, ...]
    response: tuple[Hook, ...]
    error: tuple[Hook, ...]
    tcp_message: tuple[Hook, ...]
    tcp_end: tuple[Hook, ...]
    # The request and response hooks marked @passive: they never make a body buffer, and
    # see the flow once its body went through (request and response hold the others).
    passive_request: tuple[Hook, ...]
    passive_response: tuple[Hook, ...]

    def __init__(self, addons: Iterable[object] = ()) -> None:
        addons = list(addons)
        for name in HOOKS:
            methods = (getattr(addon, name, None) for addon in addons)
            setattr(self, name, tuple(m for m in methods if callable(m)))
        for name in ("request", "response"):
            hooks: tuple[Hook, ...] = getattr(self, name)
            setattr(self, name, tuple(h for h in hooks if not is_passive(h)))
            setattr(self, "passive_" + name, tuple(h for h in hooks if is_passive(h)))


def passive(hook: _H) -> _H:
    """Mark a request or response hook as one that only watches (a logger, a counter).

    A passive hook never makes a body buffer: it runs once the body went through to the
    other side, as a hook on a streamed body does, so content is None and what it changes
    is not sent. waylay's own dump line is one.
    """
    hook.waylay_passive = True  # type: ignore[attr-defined]
    return hook


def is_passive(hook: Hook) -> bool:
    # A bound method reads its function's attributes.
    return getattr(hook, "waylay_passive", False) is True


# `dispatch(hooks)` calls each hook with nothing (running, done). A default rather than
# *args: the one-argument call of every flow builds no tuple.
_NOTHING: Any = object()


async def dispatch(hooks: Sequence[Hook], arg: object = _NOTHING) -> None:
    """Call each hook with ``arg`` (or with nothing), awaiting those that return an awaitable."""
    rest = dispatch_now(hooks, arg)
    if rest is not None:
        await rest


def dispatch_now(hooks: Sequence[Hook], arg: object = _NOTHING) -> Awaitable[None] | None:
    """`dispatch` without a coroutine while the hooks are plain functions: each is called in
    turn, and at the first that returns an awaitable, what is left (awaiting it, then the
    hooks after it) is returned to be awaited. None when every hook has run."""
    for index, hook in enumerate(hooks):
        try:
            result = hook() if arg is _NOTHING else hook(arg)
            if inspect.isawaitable(result):
                return _dispatch_rest(hook, result, hooks[index + 1 :], arg)
        except Exception:
            log.exception("addon hook %s failed", hook_name(hook))
    return None


async def _dispatch_rest(
    hook: Hook, pending: Awaitable[object], hooks: Sequence[Hook], arg: object
) -> None:
    try:
        await pending
    except Exception:
        log.exception("addon hook %s failed", hook_name(hook))
    await dispatch(hooks, arg)


def hook_name(hook: Hook) -> str:
    """The hook's qualified name and the file it is written in: `request in addon.py`."""
    name = getattr(hook, "__qualname__", None) or repr(hook)
    code = getattr(getattr(hook, "__func__", hook), "__code__", None)
    return f"{name} in {code.co_filename}" if code is not None else name
