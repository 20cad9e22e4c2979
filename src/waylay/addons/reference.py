"""The API reference of docs/addons.md, rendered from the code's own documentation.

What an addon sees — the hooks of `hooks.HOOKS`, the classes it receives and the decorator
it may use — is documented where it is defined, so the reference is made from there rather
than written twice: a hook's description from HOOKS; a class's docstring; for each field
(dataclass fields, annotated slots) its type as written and the comment above or beside it;
for each property and method its signature and docstring, the members of a class's
waylay-defined bases included (a Request's `content` comes from the message base). Nothing
runs but imports and `inspect`/`ast` over the modules' source.

docs/addons.md holds the output between two markers; tests/addons/test_reference.py fails
when they differ, and `python -m waylay.addons.reference --write docs/addons.md` puts the
current output there. A member without documentation is rendered bare: the fix is a
docstring or a comment in the source, never an edit of the Markdown.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from waylay.hooks import HOOKS

START = "<!-- reference:start -->"
END = "<!-- reference:end -->"

# What the reference describes, in its order: the module and name of each class or function,
# and how a hook reaches an instance (what its members are shown on).
SUBJECTS = (
    ("waylay.flow", "Flow", "flow"),
    ("waylay.flow", "Request", "flow.request"),
    ("waylay.flow", "Response", "flow.response"),
    ("waylay.headers", "Headers", "headers"),
    ("waylay.flow", "Error", "flow.error"),
    ("waylay.flow", "Timestamps", "flow.timestamps"),
    ("waylay.flow", "TcpMessage", "message"),
    ("waylay.flow", "Client", "client"),
    ("waylay.flow", "ClientHelloData", "data"),
    ("waylay.tls.clienthello", "ClientHello", "data.client_hello"),
    ("waylay.flow", "TlsDetails", "flow.client_tls"),
    ("waylay.addons.options", "Loader", "loader"),
    ("waylay.hooks", "passive", ""),
    ("waylay.filters", "parse_filter", ""),
    ("waylay.filters", "Filter", "matcher"),
    ("waylay.filters", "FilterError", "error"),
)

# The special methods an addon uses through syntax, and how that syntax reads.
_SYNTAX = {
    "__getitem__": "{obj}[name]",
    "__setitem__": "{obj}[name] = value",
    "__delitem__": "del {obj}[name]",
    "__contains__": "name in {obj}",
    "__iter__": "iter({obj})",
    "__len__": "len({obj})",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    """One line of a class's reference: how it reads, what it is, and its documentation."""

    usage: str
    kind: str
    doc: str


def render() -> str:
    """The whole reference, as Markdown (what docs/addons.md holds between the markers)."""
    parts = [
        "*Generated from the docstrings by `python -m waylay.addons.reference`: edit the "
        "source, not this section.*",
        _render_hooks(),
    ]
    exported = _exported_names()
    for subject, obj in _subjects():
        if inspect.isclass(subject):
            parts.append(_render_class(subject, obj, subject.__name__ in exported))
        else:
            parts.append(_render_function(subject, subject.__name__ in exported))
    return "\n\n".join(parts) + "\n"


def undocumented() -> list[str]:
    """The members the reference shows without a word of documentation."""
    missing: list[str] = []
    for subject, obj in _subjects():
        if not _doc(subject):
            missing.append(subject.__name__)
        if inspect.isclass(subject):
            missing += [m.usage for m in _members(subject, obj) if not m.doc]
    return missing


def _subjects() -> Iterator[tuple[Any, str]]:
    for module_name, name, obj in SUBJECTS:
        yield getattr(importlib.import_module(module_name), name), obj


def _exported_names() -> set[str]:
    import waylay

    return set(waylay.__all__)


def _render_hooks() -> str:
    lines = [
        "### Hooks",
        "",
        "An addon implements any of these as methods (or a script as functions at module "
        "level), plain or `async`; they are listed in the order they come in an addon's "
        "life, a connection's and a flow's.",
        "",
        "| hook | when it runs, what it receives |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {_cell(text)} |" for name, text in HOOKS.items()]
    return "\n".join(lines)


def _render_class(cls: type, obj: str, exported: bool) -> str:
    lines = [f"### {cls.__name__}", ""]
    if exported:
        lines += [f"`from waylay import {cls.__name__}`", ""]
    doc = _doc(cls)
    if doc:
        lines += [doc, ""]
    for member in _members(cls, obj):
        text = f"- `{member.usage}`"
        if member.kind:
            text += f" ({member.kind})"
        if member.doc:
            text += " — " + _indent_item(member.doc)
        lines.append(text)
    return "\n".join(lines).rstrip("\n")


def _render_function(function: Callable[..., Any], exported: bool) -> str:
    # A decorator (passive) reads as one; any other function by its name.
    decorator = "@" if function.__module__ == "waylay.hooks" else ""
    lines = [f"### {decorator}{function.__name__}", ""]
    if exported:
        lines += [f"`from waylay import {function.__name__}`", ""]
    lines += [f"`{function.__name__}{_signature(function)}`", ""]
    lines.append(_doc(function))
    return "\n".join(lines).rstrip("\n")


# -- a class's members --------------------------------------------------------------------


def _members(cls: type, obj: str) -> Iterator[Member]:
    """The public fields, properties and methods of ``cls`` and its waylay-defined bases,
    shown on ``obj`` (``flow.request``)."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("waylay"):
            continue
        fields = _field_docs(klass)
        for name, (annotation, doc) in fields.items():
            if name not in seen and not name.startswith("_"):
                seen.add(name)
                yield Member(f"{obj}.{name}: {annotation}", "", doc)
        for name, value in vars(klass).items():
            if name in seen or name in fields:
                continue
            member = _member(obj, cls, name, value)
            if member is not None:
                seen.add(name)
                yield member


def _member(obj: str, cls: type, name: str, value: object) -> Member | None:
    if name in _SYNTAX and callable(value):
        return Member(_SYNTAX[name].format(obj=obj), "", _doc(value))
    if name.startswith("_"):
        return None
    if isinstance(value, property):
        assert value.fget is not None
        returns = _annotation(inspect.signature(value.fget).return_annotation)
        kind = "property" if value.fset is None else "property, settable"
        usage = f"{obj}.{name}" + (f": {returns}" if returns else "")
        return Member(usage, kind, _doc(value.fget))
    if isinstance(value, classmethod | staticmethod):
        function = getattr(cls, name)
        return Member(f"{cls.__name__}.{name}{_signature(function)}", "", _doc(function))
    if inspect.isfunction(value):
        return Member(f"{obj}.{name}{_signature(value, method=True)}", "", _doc(value))
    return None


def _field_docs(klass: type) -> dict[str, tuple[str, str]]:
    """Each annotated name in ``klass``'s own body: (its type as written, its comment).

    The comment is the block of `#` lines right above the name, or the one after it on its
    line: how this code base documents a field.
    """
    if not inspect.get_annotations(klass):
        return {}
    try:
        source = textwrap.dedent(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    lines = source.splitlines()
    body = next(node for node in tree.body if isinstance(node, ast.ClassDef)).body
    found: dict[str, tuple[str, str]] = {}
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        annotation = ast.get_source_segment(source, node.annotation) or ""
        if annotation.startswith("ClassVar"):
            continue
        comment: list[str] = []
        row = node.lineno - 2
        while row >= 0 and lines[row].strip().startswith("#"):
            comment.insert(0, lines[row].strip().lstrip("#").strip())
            row -= 1
        assert node.end_lineno is not None and node.end_col_offset is not None
        after = lines[node.end_lineno - 1][node.end_col_offset :].strip()
        if after.startswith("#"):
            comment.append(after.lstrip("#").strip())
        found[node.target.id] = (annotation, " ".join(comment))
    return found


# -- text ---------------------------------------------------------------------------------


def _doc(obj: object) -> str:
    """The object's own docstring, cleaned (never one inherited from a base or a builtin, nor
    the signature a dataclass without a docstring gets as one)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        if doc and dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            doc = None
    else:
        doc = getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if doc else ""


def _signature(function: Callable[..., Any], *, method: bool = False) -> str:
    """``(a: int, *, b: str = 'x') -> bool``, annotations as written (``self`` left out)."""
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    if method and params:
        params = params[1:]
    parts: list[str] = []
    starred = False  # a bare * or a *args was written: what follows is keyword-only
    for param in params:
        text = param.name
        if param.kind is param.VAR_POSITIONAL:
            text, starred = "*" + text, True
        elif param.kind is param.VAR_KEYWORD:
            text = "**" + text
        elif param.kind is param.KEYWORD_ONLY and not starred:
            parts.append("*")
            starred = True
        annotation = _annotation(param.annotation)
        if annotation:
            text += f": {annotation}"
        if param.default is not param.empty:
            text += f" = {param.default!r}" if annotation else f"={param.default!r}"
        parts.append(text)
    returns = _annotation(signature.return_annotation)
    return f"({', '.join(parts)})" + (f" -> {returns}" if returns else "")


def _annotation(annotation: object) -> str:
    if annotation is inspect.Signature.empty:
        return ""
    if isinstance(annotation, str):  # postponed (from __future__ import annotations)
        return annotation
    return inspect.formatannotation(annotation)


def _indent_item(text: str) -> str:
    """A docstring as the rest of a Markdown list item: later lines indented under it."""
    return "\n".join(
        line if index == 0 or not line else "  " + line
        for index, line in enumerate(text.splitlines())
    )


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# -- docs/addons.md -----------------------------------------------------------------------


def current_section(document: str) -> str:
    """What ``document`` holds between the markers (ValueError if they are missing)."""
    start, end = document.find(START), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {START} ... {END} section")
    return document[start + len(START) : end].strip("\n") + "\n"


def with_section(document: str, reference: str) -> str:
    """``document`` with ``reference`` between its markers."""
    current_section(document)  # the markers must be there
    head, _, rest = document.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n\n{reference.strip()}\n\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m waylay.addons.reference",
        description="Print the addon API reference (Markdown) made from the docstrings.",
    )
    parser.add_argument(
        "--write",
        metavar="FILE",
        type=Path,
        help=f"put it between {START} and {END} in FILE instead (docs/addons.md)",
    )
    parser.add_argument(
        "--missing",
        action="store_true",
        help="list the members that have no docstring or comment to show instead",
    )
    args = parser.parse_args(argv)
    if args.missing:
        sys.stdout.writelines(f"{usage}\n" for usage in undocumented())
        return 0
    reference = render()
    if args.write is None:
        sys.stdout.write(reference)
        return 0
    try:
        document = args.write.read_text(encoding="utf-8")
        args.write.write_text(with_section(document, reference), encoding="utf-8")
    except (OSError, ValueError) as exc:
        print(f"waylay.addons.reference: {args.write}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
