"""tls/sessions.py: which session is offered to the next connection to a server."""

from __future__ import annotations

import ssl
from typing import cast

from waylay.tls.sessions import SessionCache, SessionKey


def _session(label: str) -> ssl.SSLSession:
    return cast(ssl.SSLSession, label)  # the cache only stores and returns them


def test_a_session_is_offered_for_its_own_context_name_and_address_only() -> None:
    cache = SessionCache()
    one, other = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    key: SessionKey = (one, "www.example.test", ("127.0.0.1", 443))
    cache.keep(key, _session("s1"))
    assert cache.get(key) == "s1"
    assert cache.get((other, "www.example.test", ("127.0.0.1", 443))) is None  # --client-cert
    assert cache.get((one, "api.example.test", ("127.0.0.1", 443))) is None  # another name
    assert cache.get((one, "www.example.test", ("127.0.0.2", 443))) is None  # another server
    cache.keep(key, None)  # a connection without a session leaves the last one
    assert cache.get(key) == "s1"
    cache.keep(key, _session("s2"))  # the newest wins
    assert cache.get(key) == "s2" and len(cache) == 1


def test_the_least_recently_used_go_past_the_limit() -> None:
    cache = SessionCache(limit=2)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    keys: list[SessionKey] = [(context, f"h{n}.test", ("127.0.0.1", 443)) for n in range(3)]
    cache.keep(keys[0], _session("a"))
    cache.keep(keys[1], _session("b"))
    assert cache.get(keys[0]) == "a"  # used: now the newest
    cache.keep(keys[2], _session("c"))
    assert [cache.get(k) for k in keys] == ["a", None, "c"]
