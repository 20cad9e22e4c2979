"""The web UI of `waylay web` (docs/web.md): a browser page and its API, in the proxy's loop.

`app.py` builds the aiohttp application and enforces the safety rules (`security.py`) on
every route; `flows.py` answers for the stored flows, `live.py` for the flows paused now,
`updates.py` pushes changes to open pages; `shapes.py` and `export.py` are the pure parts
(the JSON of a flow, a request as a curl command or Python). `static/` is the page.
"""
