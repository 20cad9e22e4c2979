"""TLS sessions with servers, kept for the next connection to the same server (resumption).

Intercepting costs two handshakes per connection; the one with the server can be a resumed
one, as a browser's second connection to a site is: no certificate chain sent, parsed and
verified again. A session is kept per (client context, server name, address), from a
connection that has ended (by then a TLS 1.3 server has sent its tickets), and offered to
the next connection made with the same three. A server that declines it gets a full
handshake, verified as any other. The name is part of the key: a session verified for one
name is never offered for another.

Owns: which session to offer. Does not own: the handshake (tls/endpoint.py).
"""

from __future__ import annotations

import ssl
from collections import OrderedDict

# Sessions kept at most (each holds the server's certificate chain: a few KB).
MAX_SESSIONS = 256

SessionKey = tuple[ssl.SSLContext, str | None, tuple[str, int]]


class SessionCache:
    __slots__ = ("_sessions", "limit")

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._sessions: OrderedDict[SessionKey, ssl.SSLSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, key: SessionKey) -> ssl.SSLSession | None:
        session = self._sessions.get(key)
        if session is not None:
            self._sessions.move_to_end(key)
        return session

    def keep(self, key: SessionKey, session: ssl.SSLSession | None) -> None:
        """Keep ``session`` for ``key`` (the newest wins); the least used go past the limit."""
        if session is None:
            return
        self._sessions[key] = session
        self._sessions.move_to_end(key)
        while len(self._sessions) > self.limit:
            self._sessions.popitem(last=False)
