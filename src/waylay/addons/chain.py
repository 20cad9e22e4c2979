"""The addons in the order their hooks run, their life (load, running, done), and reloading.

The order is waylay's own addons first — the dumper, then the built-in rule addons
(`builtin.py`) — and then each script's addons, in the order of the `-s` flags. Connections
never see this chain: they read `ctx.hooks`, a HookTable built from it, once per event; a
reload builds a new table and swaps it in, so a change costs the data path nothing.

Each addon's `load` receives a Loader naming it (a script's path, or a built-in's class), so
an option clash names both owners. `load` is called directly rather than through `dispatch`:
an exception in it means the addon cannot run, which at start-up is exit status 2.

A changed script (polled every second: one stat per script) is reloaded in this order: its
new version is run and loaded first, so that a version that fails — a syntax error, an
exception at import or in `load` — is only logged with its traceback and the previous
version goes on untouched; only then does the old version get `done`, the new one `running`,
and the connections the new table.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from waylay.addons.options import AddonOptions, Loader
from waylay.addons.script import Script, ScriptError, describe_failure
from waylay.hooks import HookTable, dispatch

if TYPE_CHECKING:
    from waylay.context import ProxyContext

log = logging.getLogger("waylay.addons")

# How often the scripts' files are looked at for a change.
WATCH_INTERVAL = 1.0


async def _load(addon: object, loader: Loader) -> None:
    hook = getattr(addon, "load", None)
    if callable(hook):
        result = hook(loader)
        if inspect.isawaitable(result):
            await result


class AddonChain:
    """waylay's own addons, then the scripts'; their options; the table the proxy runs on."""

    def __init__(
        self, own: Sequence[object], scripts: Sequence[Script], options: AddonOptions
    ) -> None:
        self.own = list(own)
        self.scripts = list(scripts)
        self.options = options

    def addons(self) -> list[object]:
        return [*self.own, *(addon for script in self.scripts for addon in script.addons)]

    def table(self) -> HookTable:
        return HookTable(self.addons())

    async def load(self) -> None:
        """Load every addon, in order; then every `--set` must have found its option.

        ConfigError (ScriptError for a script, naming it) if one cannot be loaded.
        """
        for addon in self.own:
            await _load(addon, Loader(self.options, type(addon).__name__))
        for script in self.scripts:
            script.addons = await self._load_script(script)
        self.options.check_settings()

    async def _load_script(self, script: Script) -> list[object]:
        """The script's addons, run and loaded from its file as it is now."""
        addons = script.import_addons()
        loader = Loader(self.options, str(script.path))
        for addon in addons:
            try:
                await _load(addon, loader)
            except Exception as exc:
                raise describe_failure(script.path, exc, "load hook") from None
        return addons

    async def running(self) -> None:
        await dispatch(self.table().running)

    async def done(self) -> None:
        await dispatch(self.table().done)

    async def reload_changed(self) -> bool:
        """Reload each script whose file changed; True if any was (the table is stale)."""
        reloaded = False
        for script in self.scripts:
            if script.changed():
                reloaded |= await self._reload(script)
        return reloaded

    async def _reload(self, script: Script) -> bool:
        snapshot = self.options.forget(str(script.path))
        try:
            addons = await self._load_script(script)
        except ScriptError as exc:
            self.options.restore(snapshot)
            detail = f"\n{exc.traceback}" if exc.traceback else ""
            log.error("%s; not reloaded, the previous version keeps running%s", exc.reason, detail)
            return False
        self.options.commit()
        # The old version ends with the option values it ran with; the new one runs on its own.
        loaded = self.options.snapshot()
        self.options.restore(snapshot)
        await dispatch(HookTable(script.addons).done)
        self.options.restore(loaded)
        script.addons = addons
        await dispatch(HookTable(addons).running)
        log.warning("script %s reloaded", script.path)
        return True

    async def watch(self, ctx: ProxyContext, interval: float = WATCH_INTERVAL) -> None:
        """Reload changed scripts until cancelled, swapping ``ctx.hooks`` after each."""
        while True:
            await asyncio.sleep(interval)
            try:
                if await self.reload_changed():
                    ctx.hooks = self.table()
            except Exception:
                # A bug here must not end the watching for the rest of the run.
                log.exception("reloading scripts failed")
