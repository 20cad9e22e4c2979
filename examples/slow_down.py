"""Hold responses back for a while, to see how a client copes with a slow server.

    waylay dump -s examples/slow_down.py --set delay_ms=2000
    waylay dump -s examples/slow_down.py --set delay_ms=500 --set slow_urls=/api/

The hook is a coroutine function: waylay awaits it in the flow's own connection, so while one
response sleeps here every other flow goes on. (A plain `time.sleep` would stop the whole
proxy: never block in a hook.)
"""

import asyncio

from waylay import Flow, Loader


class SlowDown:
    def load(self, loader: Loader) -> None:
        loader.add_option("delay_ms", int, 1000, "how long to hold each response, in ms")
        loader.add_option(
            "slow_urls", str, "", "only slow down URLs containing this text (empty: all)"
        )
        self.options = loader.options

    async def response(self, flow: Flow) -> None:
        # The whole response is here and none of it has gone to the client yet. A body over
        # --stream-large-bodies has already gone by then; to hold those too, do this in
        # responseheaders, which runs before any body is read.
        if self.options.slow_urls in flow.request.url:
            await asyncio.sleep(self.options.delay_ms / 1000)


addons = [SlowDown()]
