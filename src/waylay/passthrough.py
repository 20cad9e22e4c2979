"""Which connections waylay relays untouched instead of intercepting.

Two sources: the user's ``--ignore-hosts`` patterns, matched (``re.search``) against
``host:port`` — the CONNECT target first, then the name the client sent in its SNI — and,
with ``--passthrough-pinned``, the hosts whose clients refused waylay's certificate before
(apps that pin their server's certificate cannot be intercepted; they can still work).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence


class Passthrough:
    __slots__ = ("_patterns", "_pinned", "max_pinned", "remember_pinned")

    def __init__(
        self, patterns: Sequence[str], *, remember_pinned: bool = False, max_pinned: int = 4096
    ) -> None:
        self._patterns = tuple(re.compile(p, re.IGNORECASE) for p in patterns)
        self._pinned: OrderedDict[str, None] = OrderedDict()
        self.remember_pinned = remember_pinned
        self.max_pinned = max_pinned

    def ignored(self, host: str, port: int) -> bool:
        if not self._patterns:
            return False
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return any(p.search(address) for p in self._patterns)

    def pinned(self, host: str) -> bool:
        return host.lower() in self._pinned

    def remember(self, host: str) -> bool:
        """Pass ``host`` through from now on (when enabled); True if it was remembered."""
        if not self.remember_pinned:
            return False
        host = host.lower()
        self._pinned[host] = None
        self._pinned.move_to_end(host)
        while len(self._pinned) > self.max_pinned:
            self._pinned.popitem(last=False)
        return True
