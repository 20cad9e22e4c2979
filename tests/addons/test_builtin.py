"""builtin_addons: the options' rules as addons, in the order their hooks run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from waylay.addons.block import Block
from waylay.addons.builtin import builtin_addons
from waylay.addons.intercept import Intercept
from waylay.addons.maplocal import MapLocal
from waylay.addons.mapremote import MapRemote
from waylay.addons.modifybody import ModifyBody
from waylay.addons.modifyheaders import ModifyHeaders
from waylay.errors import ConfigError
from waylay.filters import parse_filter
from waylay.options import Options


def test_none_by_default() -> None:
    assert builtin_addons(Options()) == []


def test_all_in_order(tmp_path: Path) -> None:
    options = Options(
        modify_headers=("/X-A/1",),
        modify_body=("/a/b",),
        map_remote=("|a|b",),
        map_local=(f"|/static|{tmp_path}",),
        block=("~d ads", "~d tracker"),
        intercept=parse_filter("~q"),
    )
    addons = builtin_addons(options)
    assert [type(a) for a in addons] == [
        Block,
        MapRemote,
        MapLocal,
        ModifyBody,
        ModifyHeaders,
        Intercept,
    ]
    blocker = addons[0]
    assert isinstance(blocker, Block) and len(blocker.rules) == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("modify_headers", ("/X-A/1", "/~zz/X/1"), "--modify-headers '/~zz/X/1': filter:"),
        ("modify_body", ("/(/x",), "--modify-body '/(/x': bad regex"),
        ("map_remote", ("|a|\\1",), "--map-remote '|a|\\\\1': bad replacement"),
        ("map_local", ("|a|/no/such/folder",), "--map-local '|a|/no/such/folder': PATH"),
        ("block", ("~zz",), "--block '~zz': unknown operator"),
    ],
)
def test_a_bad_rule_is_one_line(field: str, value: tuple[str, ...], message: str) -> None:
    settings: dict[str, Any] = {field: value}
    with pytest.raises(ConfigError) as caught:
        builtin_addons(Options(**settings))
    assert caught.value.reason.startswith(message)
    assert "\n" not in caught.value.reason
