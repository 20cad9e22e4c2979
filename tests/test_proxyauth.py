"""proxyauth.py: Basic proxy credentials from USER:PASS or an htpasswd file."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import bcrypt
import pytest

from waylay.errors import ConfigError
from waylay.proxyauth import ProxyAuth


def _basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def _verify(auth: ProxyAuth, header: bytes | None) -> bool:
    return asyncio.run(auth.verify(header))


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        (_basic("ada", "s3cret:with:colons"), True),
        (b"basic " + base64.b64encode(b"ada:s3cret:with:colons"), True),  # scheme is caseless
        (_basic("ada", "s3cret"), False),
        (_basic("bob", "s3cret:with:colons"), False),
        (_basic("ada", ""), False),
        (b"Bearer abc", False),
        (b"Basic not-base64!", False),
        (b"Basic " + base64.b64encode(b"no colon"), False),
        (b"", False),
        (None, False),
    ],
)
def test_user_and_password(header: bytes | None, accepted: bool) -> None:
    assert _verify(ProxyAuth.from_option("ada:s3cret:with:colons"), header) is accepted


def test_htpasswd_with_bcrypt_and_sha(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"pw-one", bcrypt.gensalt(rounds=4)).decode()
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"pw-two").digest()).decode()
    path.write_text(f"# users\none:{hashed}\n\ntwo:{sha}\n")
    auth = ProxyAuth.from_option(f"@{path}")
    assert _verify(auth, _basic("one", "pw-one"))
    assert _verify(auth, _basic("one", "pw-one"))  # remembered: no second bcrypt
    assert _verify(auth, _basic("two", "pw-two"))
    assert not _verify(auth, _basic("one", "pw-two"))
    assert not _verify(auth, _basic("two", "pw-one"))
    assert not _verify(auth, _basic("three", "pw-one"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no users in it"),
        ("# only a comment\n", "no users in it"),
        ("justaname\n", "line 1 is not USER:HASH"),
        ("ada:$apr1$abc$def\n", "line 1: only bcrypt"),
        ("ok:{SHA}x\nada:plain\n", "line 2: only bcrypt"),
    ],
)
def test_bad_htpasswd_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        ProxyAuth.from_option(f"@{path}")


@pytest.mark.parametrize("text", ["nocolon", ":nouser", "@/nonexistent/htpasswd"])
def test_bad_options(text: str) -> None:
    with pytest.raises(ConfigError, match="--proxyauth"):
        ProxyAuth.from_option(text)
