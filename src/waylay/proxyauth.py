"""`--proxyauth`: who may use the proxy, by Basic credentials (RFC 9110 §11.7, RFC 7617).

`--proxyauth USER:PASS` accepts that one pair; `--proxyauth @FILE` reads an htpasswd file
(`user:hash` lines, `#` comments) with bcrypt (`htpasswd -B`) or `{SHA}` hashes. Passwords are
compared in constant time (``hmac.compare_digest``, ``bcrypt.checkpw``). bcrypt is slow on
purpose, so it runs off the event loop, and a credential once verified is remembered (by its
SHA-256, never in clear) so the next requests cost a dictionary lookup.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
from collections import OrderedDict
from pathlib import Path

import bcrypt

from waylay.errors import ConfigError

log = logging.getLogger("waylay.proxyauth")

_BCRYPT = (b"$2y$", b"$2b$", b"$2a$")
_REMEMBERED = 1024


class ProxyAuth:
    """The credentials a proxy accepts, and the check of one Proxy-Authorization value."""

    def __init__(self, users: dict[bytes, bytes]) -> None:
        # user -> b"plain:" + password, b"{SHA}" + base64 digest, or a bcrypt hash.
        self._users = users
        self._verified: OrderedDict[bytes, None] = OrderedDict()

    @classmethod
    def from_option(cls, text: str) -> ProxyAuth:
        if text.startswith("@"):
            return cls(_read_htpasswd(Path(text[1:]).expanduser()))
        user, sep, password = text.partition(":")
        if not sep or not user:
            raise ConfigError("--proxyauth: expected USER:PASS or @FILE (an htpasswd file)")
        return cls({user.encode(): b"plain:" + password.encode()})

    async def verify(self, header: bytes | None) -> bool:
        """Whether a Proxy-Authorization value carries credentials this proxy accepts."""
        if header is None:
            return False
        key = hashlib.sha256(header).digest()
        if key in self._verified:
            self._verified.move_to_end(key)
            return True
        pair = _basic_credentials(header)
        if pair is None:
            return False
        user, password = pair
        stored = self._users.get(user)
        if stored is None:
            return False
        if stored.startswith(b"plain:"):
            ok = hmac.compare_digest(stored[6:], password)
        elif stored.startswith(b"{SHA}"):
            digest = base64.b64encode(hashlib.sha1(password).digest())
            ok = hmac.compare_digest(stored[5:], digest)
        else:
            try:
                ok = await asyncio.to_thread(bcrypt.checkpw, password, stored)
            except ValueError:
                log.warning("--proxyauth: the hash of user %r is not valid bcrypt", user)
                ok = False
        if ok:
            self._verified[key] = None
            if len(self._verified) > _REMEMBERED:
                self._verified.popitem(last=False)
        return ok


def _basic_credentials(header: bytes) -> tuple[bytes, bytes] | None:
    """(user, password) from ``Basic base64(user:password)``; None if it is not that."""
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


def _read_htpasswd(path: Path) -> dict[bytes, bytes]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(f"--proxyauth @{path}: cannot read it ({exc.strerror})") from None
    users: dict[bytes, bytes] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        user, sep, hashed = line.partition(b":")
        if not sep or not user or not hashed:
            raise ConfigError(f"--proxyauth @{path}: line {number} is not USER:HASH")
        if not (hashed.startswith(_BCRYPT) or hashed.startswith(b"{SHA}")):
            raise ConfigError(
                f"--proxyauth @{path}: line {number}: only bcrypt ($2y$, `htpasswd -B`) and "
                "{SHA} hashes are supported"
            )
        users[user] = hashed
    if not users:
        raise ConfigError(f"--proxyauth @{path}: no users in it")
    return users
