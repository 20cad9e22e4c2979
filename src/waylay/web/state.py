"""What the web UI's parts share: the proxy, the UI's secrets, and the open pages.

One `WebState` is made per `waylay web` and stored in the aiohttp application under
`STATE` (``request.app[STATE]``): the routes of `flows.py` (the stored flows), of `live.py`
(the flows paused now) and of `app.py` (the page, the login) read it rather than anything
global. `broadcast` is how any of them tells every open page something changed
(docs/web.md, `GET /api/updates`): a plain function, safe to call from a hook on the proxy's
loop, that never waits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from waylay.web.updates import Updates

if TYPE_CHECKING:
    from waylay.addons.chain import AddonChain
    from waylay.context import ProxyContext
    from waylay.filters import Filter


@dataclass(slots=True)
class WebState:
    ctx: ProxyContext
    # The proxy's addons: an addon added to `addons.own` before the proxy starts (as
    # `build_app` runs) gets the hooks every flow goes through.
    addons: AddonChain
    # The secret of `/?token=`, and the value of the waylay_web cookie.
    token: str
    # --web-password: what `POST /login` takes instead of the token.
    password: str | None = None
    # The intercept filter in force: `--intercept`'s, then what `PUT /api/intercept` sets
    # (live.py owns changing it); /api/info shows it.
    intercept: Filter | None = None
    # The addresses shown by /api/info, set once each listens ("127.0.0.1:8080").
    listen: str = ""
    web: str = ""
    updates: Updates = field(default_factory=Updates)

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every open /api/updates socket, as one JSON text."""
        self.updates.broadcast(message)


STATE = web.AppKey("waylay_state", WebState)
