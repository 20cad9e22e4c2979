"""S9's addon (``bench/scenarios/s9_addon_hook.py``): one ``request`` hook that does nothing.

A module-level hook function, a form both ``waylay dump -s`` and ``mitmdump -s`` load.
"""


def request(flow):
    pass
