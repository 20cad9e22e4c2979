"""The hooks addons implement, and the dispatch tables built from them.

An addon is any object with methods named after hooks (mitmproxy's names, so its users feel at
home). When the addons are loaded — and again whenever they change — `HookTable` collects, per
hook, the bound methods that exist: dispatching an event is then a loop over a short tuple, and
a hook nobody implements costs one falsy check, never a scan of every addon or a task.

A hook may be a plain function or a coroutine function; a coroutine is awaited in the
connection's own coroutine. An exception in a hook is logged with its traceback and the flow
goes on.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

log = logging.getLogger("waylay.hooks")

HOOKS: dict[str, str] = {
    "client_connected": "A client connected to waylay. Receives the Client.",
    "requestheaders": (
        "A request head arrived; its body (if any) has not been read yet. Receives the Flow."
    ),
    "request": (
        "The whole request has been read: before anything is sent when it has no body, "
        "once its body went through otherwise (bodies stream, so flow.request.content is "
        "None for now). Receives the Flow."
    ),
    "responseheaders": "A response head arrived from the server. Receives the Flow.",
    "response": "The whole response went through to the client. Receives the Flow.",
    "error": "The flow failed: flow.error says why (the client saw it too). Receives the Flow.",
    "tcp_end": (
        "A raw TCP connection (transparent mode: neither TLS nor HTTP) ended. Receives its "
        "Flow, of kind 'tcp': the sizes count the bytes each way."
    ),
    "client_disconnected": "A client connection closed. Receives the Client.",
}

Hook = Callable[[Any], Any]


class HookTable:
    """Per hook name, the tuple of addon methods to call, in addon order."""

    __slots__ = tuple(HOOKS)

    client_connected: tuple[Hook, ...]
    requestheaders: tuple[Hook, ...]
    request: tuple[Hook, ...]
    responseheaders: tuple[Hook, ...]
    response: tuple[Hook, ...]
    error: tuple[Hook, ...]
    tcp_end: tuple[Hook, ...]
    client_disconnected: tuple[Hook, ...]

    def __init__(self, addons: Iterable[object] = ()) -> None:
        addons = list(addons)
        for name in HOOKS:
            methods = (getattr(addon, name, None) for addon in addons)
            setattr(self, name, tuple(m for m in methods if callable(m)))


async def dispatch(hooks: Sequence[Hook], arg: object) -> None:
    """Call each hook with ``arg``, awaiting those that return an awaitable."""
    for hook in hooks:
        try:
            result = hook(arg)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("addon hook %s failed", _name(hook))


def _name(hook: Hook) -> str:
    return getattr(hook, "__qualname__", repr(hook))
