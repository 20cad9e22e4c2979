"""The built-in rules of the command line, as addons on the hook API scripts use.

`--block`, `--map-remote`, `--map-local`, `--modify-body`, `--modify-headers` and
`--intercept` each become one addon (none when the flag is not given), parsed here so that a
bad rule is a ConfigError naming the flag and the rule as the user wrote it.

The order is the order their hooks run in for one flow: a blocked request is neither mapped
nor modified; a request is sent to its new URL (map-remote) before map-local looks at that
URL; bodies are rewritten before headers, so a `--modify-headers` rule has the last word on
Content-Length or Content-Type; and `--intercept` comes last, so a paused flow shows what
will be sent.
"""

from __future__ import annotations

from waylay.addons.block import block
from waylay.addons.intercept import Intercept
from waylay.addons.maplocal import map_local
from waylay.addons.mapremote import map_remote
from waylay.addons.modifybody import modify_body
from waylay.addons.modifyheaders import modify_headers
from waylay.options import Options


def builtin_addons(options: Options) -> list[object]:
    """The addons the options ask for, in the order their hooks run."""
    addons = [
        block(options.block),
        map_remote(options.map_remote),
        map_local(options.map_local),
        modify_body(options.modify_body),
        modify_headers(options.modify_headers),
        None if options.intercept is None else Intercept(options.intercept),
    ]
    return [addon for addon in addons if addon is not None]
