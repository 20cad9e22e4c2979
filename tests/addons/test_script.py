"""Loading addon scripts (`-s`): the two forms, errors, helpers next to a script, reloading.

The running proxy's side — hooks through real requests, reload while serving, SIGTERM's
`done` — is in tests/e2e/test_scripts.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from waylay.addons.chain import AddonChain
from waylay.addons.options import AddonOptions
from waylay.addons.script import Script, ScriptError, module_name
from waylay.errors import ConfigError
from waylay.hooks import HookTable, dispatch, hook_name


def write(path: Path, text: str) -> Path:
    """Replace the file at once (as editors do), so a poll never sees half of it."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(dedent(text))
    os.replace(temporary, path)
    return path


def chain_of(*paths: Path, settings: dict[str, str | None] | None = None) -> AddonChain:
    return AddonChain((), [Script(path) for path in paths], AddonOptions(settings))


def load(chain: AddonChain) -> AddonChain:
    asyncio.run(chain.load())
    return chain


# -- the two forms ---------------------------------------------------------------------------


def test_an_addons_list_is_the_scripts_addons(tmp_path: Path) -> None:
    path = write(
        tmp_path / "counter.py",
        """\
        class Counter:
            def __init__(self):
                self.seen = 0

            def response(self, flow):
                self.seen += 1

        addons = [Counter()]
        """,
    )
    (addon,) = Script(path).import_addons()
    assert type(addon).__name__ == "Counter"
    assert HookTable([addon]).response == (addon.response,)  # type: ignore[attr-defined]


def test_module_level_hooks_make_the_module_the_addon(tmp_path: Path) -> None:
    path = write(tmp_path / "plain.py", "def request(flow):\n    pass\n")
    (module,) = Script(path).import_addons()
    assert module.__name__ == module_name(path)  # type: ignore[attr-defined]
    assert HookTable([module]).request == (module.request,)  # type: ignore[attr-defined]


def test_module_hooks_come_before_the_listed_addons(tmp_path: Path) -> None:
    path = write(
        tmp_path / "both.py",
        """\
        class A:
            def response(self, flow): ...

        def response(flow): ...

        addons = [A()]
        """,
    )
    module, listed = Script(path).import_addons()
    assert type(listed).__name__ == "A" and module.__name__.startswith("waylay_script_both_")  # type: ignore[attr-defined]
    # An empty list is a deliberate choice, not a mistake.
    assert Script(write(tmp_path / "empty.py", "addons = []\n")).import_addons() == []


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def respnse(flow):\n    pass\n", "defines no addon"),
        ("addons = 3\n", "addons should be a list of addon objects, not int"),
    ],
)
def test_a_script_without_addons_is_an_error(tmp_path: Path, source: str, reason: str) -> None:
    path = write(tmp_path / "none.py", source)
    with pytest.raises(ScriptError) as caught:
        Script(path).import_addons()
    assert caught.value.reason.startswith(f"script {path}: ") and reason in caught.value.reason


def test_dataclasses_work_inside_a_script(tmp_path: Path) -> None:
    # dataclasses look the module up in sys.modules: the script is registered there.
    path = write(
        tmp_path / "dc.py",
        """\
        from __future__ import annotations
        from dataclasses import dataclass

        @dataclass
        class Seen:
            count: int = 0

            def response(self, flow):
                self.count += 1

        addons = [Seen()]
        """,
    )
    (addon,) = Script(path).import_addons()
    assert addon.count == 0  # type: ignore[attr-defined]


def test_a_helper_next_to_the_script_imports_and_its_folder_leaves_sys_path(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "scripts"
    folder.mkdir()
    write(folder / "waylay_test_helper_words.py", "WORD = 'from the helper'\n")
    path = write(
        folder / "uses_helper.py",
        """\
        import waylay_test_helper_words

        WORD = waylay_test_helper_words.WORD

        def response(flow): ...
        """,
    )
    try:
        (module,) = Script(path).import_addons()
        assert module.WORD == "from the helper"  # type: ignore[attr-defined]
        assert str(folder) not in sys.path and str(folder.resolve()) not in sys.path
    finally:
        sys.modules.pop("waylay_test_helper_words", None)


def test_each_path_has_its_own_module(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write(tmp_path / "a" / "same-name.py", "NAME = 'a'\ndef response(flow): ...\n")
    second = write(tmp_path / "b" / "same-name.py", "NAME = 'b'\ndef response(flow): ...\n")
    assert module_name(first) != module_name(second)
    assert module_name(first).startswith("waylay_script_same_name_")
    (one,) = Script(first).import_addons()
    (other,) = Script(second).import_addons()
    assert (one.NAME, other.NAME) == ("a", "b")  # type: ignore[attr-defined]


# -- errors -----------------------------------------------------------------------------------


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.py", "def response(flow):\n    return (\n")
    with pytest.raises(ScriptError) as caught:
        load(chain_of(path))
    assert isinstance(caught.value, ConfigError)  # the CLI's exit status 2
    assert caught.value.reason.startswith(f"script {path}, line 2: SyntaxError: ")
    assert "\n" not in caught.value.reason


def test_an_exception_at_import_names_the_line_and_shows_only_the_scripts_frames(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "raises.py",
        """\
        def response(flow): ...

        def compute():
            return 1 / 0

        VALUE = compute()
        """,
    )
    with pytest.raises(ScriptError) as caught:
        Script(path).import_addons()
    error = caught.value
    assert error.reason == f"script {path}, line 4: ZeroDivisionError: division by zero"
    assert f'File "{path}", line 6, in <module>' in error.traceback
    assert f'File "{path}", line 4, in compute' in error.traceback
    assert "waylay/addons" not in error.traceback
    assert module_name(path) not in sys.modules


def test_an_exception_in_load_names_the_hook(tmp_path: Path) -> None:
    path = write(
        tmp_path / "badload.py",
        """\
        def load(loader):
            raise RuntimeError("no config")
        """,
    )
    with pytest.raises(ScriptError) as caught:
        load(chain_of(path))
    assert caught.value.reason == (f"script {path}, load hook, line 2: RuntimeError: no config")


def test_an_unreadable_script_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"cannot read it: No such file"):
        load(chain_of(tmp_path / "missing.py"))


# -- hooks ---------------------------------------------------------------------------------------


def test_dispatch_calls_hooks_without_an_argument() -> None:
    calls: list[str] = []

    async def later() -> None:
        calls.append("async")

    asyncio.run(dispatch((lambda: calls.append("plain"), later)))
    assert calls == ["plain", "async"]


def test_a_failing_hook_is_logged_with_its_scripts_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path / "failing.py",
        """\
        def response(flow):
            raise ValueError("addon bug")
        """,
    )
    (module,) = Script(path).import_addons()
    assert hook_name(module.response) == f"response in {path}"  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="waylay.hooks"):
        asyncio.run(dispatch(HookTable([module]).response, object()))
    assert f"addon hook response in {path} failed" in caplog.text
    assert f'File "{path}", line 2, in response' in caplog.text


# -- reloading -------------------------------------------------------------------------------


VERSION = """\
events = []

def load(loader):
    loader.add_option("word", str, "{default}", "a word")
    global options
    options = loader.options

def running():
    events.append("{name} running " + options.word)

def done():
    events.append("{name} done " + options.word)

def response(flow): ...
"""


def version(path: Path, name: str, default: str = "plain") -> Path:
    return write(path, VERSION.format(name=name, default=default))


def events(chain: AddonChain) -> list[str]:
    (module,) = chain.scripts[0].addons
    return module.events  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize(
    ("settings", "old_word", "new_word"),
    [
        ({"word": "set"}, "set", "set"),  # what --set gave still holds
        ({}, "plain", "new default"),  # each version ends with the values it ran with
    ],
)
def test_a_changed_script_is_reloaded(
    tmp_path: Path, settings: dict[str, str | None], old_word: str, new_word: str
) -> None:
    path = version(tmp_path / "live.py", "v1")
    chain = chain_of(path, settings=settings)

    async def scenario() -> tuple[list[str], list[str], bool]:
        await chain.load()
        await chain.running()
        unchanged = await chain.reload_changed()
        old = events(chain)
        version(path, "v2", default="new default")
        assert chain.scripts[0].changed()
        assert await chain.reload_changed()
        assert not chain.scripts[0].changed()
        return old, events(chain), unchanged

    old, new, unchanged = asyncio.run(scenario())
    assert not unchanged
    assert old == [f"v1 running {old_word}", f"v1 done {old_word}"]
    assert new == [f"v2 running {new_word}"]
    assert chain.options.values.word == new_word
    assert [option.default for option in chain.options] == ["new default"]


def test_a_failed_reload_keeps_the_previous_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = version(tmp_path / "live.py", "v1")
    chain = chain_of(path)

    async def scenario() -> list[bool]:
        await chain.load()
        outcomes = []
        for broken in (
            "def response(flow):\n    return (\n",  # syntax
            "import waylay_no_such_module\ndef response(flow): ...\n",  # import
            "def load(loader):\n    loader.add_option('word', int, 'x', '')\n",  # load
        ):
            write(path, broken)
            outcomes.append(await chain.reload_changed())
            # Tried once: the same broken file is not tried again every second.
            assert not chain.scripts[0].changed()
        return outcomes

    with caplog.at_level(logging.ERROR, logger="waylay.addons"):
        assert asyncio.run(scenario()) == [False, False, False]
    assert events(chain) == []  # neither done nor running: v1 goes on as it was
    assert chain.options.values.word == "plain"
    records = [r.getMessage() for r in caplog.records]
    assert len(records) == 3
    assert all("not reloaded, the previous version keeps running" in r for r in records)
    assert records[0].startswith(f"script {path}, line 2: SyntaxError")
    assert "ModuleNotFoundError: No module named 'waylay_no_such_module'" in records[1]
    assert f'File "{path}", line 1, in <module>' in records[1]
    assert "its default 'x' is not of type int" in records[2]


def test_a_script_is_not_changed_until_its_file_is(tmp_path: Path) -> None:
    path = version(tmp_path / "live.py", "v1")
    script = Script(path)
    assert script.changed()  # never read yet
    script.import_addons()
    assert not script.changed()
    path.unlink()
    assert not script.changed()  # an editor between removing and writing it
    version(path, "v1")
    assert script.changed()
