"""docs/addons.md's API reference is what the code's docstrings say today.

The reference between the markers is generated (waylay.addons.reference); a docstring, a
field's comment, a hook or a signature that changed without the docs fails here, with the
command that brings them up to date.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import waylay
from waylay.addons import reference
from waylay.hooks import HOOKS

DOC = Path(__file__).resolve().parents[2] / "docs" / "addons.md"


def test_docs_addons_md_holds_the_current_reference() -> None:
    documented = reference.current_section(DOC.read_text(encoding="utf-8"))
    assert documented == reference.render(), (
        "docs/addons.md's API reference differs from the docstrings: run "
        "`python -m waylay.addons.reference --write docs/addons.md`"
    )


def test_the_reference_covers_every_hook_and_every_export() -> None:
    text = reference.render()
    for hook in HOOKS:
        assert f"| `{hook}` |" in text, hook
    for name in waylay.__all__:
        if name != "__version__":
            assert f"`from waylay import {name}`" in text, name


def test_fields_carry_their_comments_and_members_their_signatures() -> None:
    text = reference.render()
    # A comment above a field, one beside it, a property, a classmethod, syntax.
    assert "- `flow.request.stream: bool | StreamTransform` — Set in a requestheaders" in text
    assert "- `data.client_hello.sni: str | None` — server_name's host_name" in text
    assert "- `flow.request.url: str` (property, settable) — The URL" in text
    assert "- `Response.make(status_code: int = 200, content: bytes | str = b''," in text
    assert "- `flow.response.get_content(*, strict: bool = True) -> bytes | None`" in text
    assert "- `del headers[name]`" in text
    # A dataclass's generated signature is not passed off as its docstring.
    assert "Request(method:" not in text


def test_write_replaces_only_the_section(tmp_path: Path) -> None:
    doc = tmp_path / "addons.md"
    doc.write_text(f"# Before\n\n{reference.START}\nold\n{reference.END}\n\nafter\n")
    assert reference.main(["--write", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith(f"# Before\n\n{reference.START}\n\n*Generated")
    assert text.endswith(f"\n\n{reference.END}\n\nafter\n")
    assert reference.current_section(text) == reference.render()


def test_a_document_without_the_markers_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "addons.md"
    doc.write_text("# No markers\n")
    assert reference.main(["--write", str(doc)]) == 1
    error = capsys.readouterr().err
    assert f"no {reference.START} ... {reference.END} section" in error
    assert doc.read_text() == "# No markers\n"


def test_missing_lists_undocumented_members(capsys: pytest.CaptureFixture[str]) -> None:
    assert reference.main(["--missing"]) == 0
    missing = capsys.readouterr().out.splitlines()
    assert missing == reference.undocumented()
    assert "flow.request.stream: bool | StreamTransform" not in missing
