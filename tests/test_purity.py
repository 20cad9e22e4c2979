"""The pure modules import neither asyncio nor socket (ARCHITECTURE.md, principle 1).

PURE_MODULES grows with the project: add every module that parses or decides. Each entry must
exist; a missing one fails the test rather than being skipped. A module added to a package of
PURE_PACKAGES fails the test until it is listed.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

PURE_MODULES = [
    "waylay.errors",
    "waylay.http1",
    "waylay.http1.head",
    "waylay.http1.body",
    "waylay.http1.serialize",
    "waylay.http1.forwarding",
    "waylay.http1.reframe",
    "waylay.tls.clienthello",
    "waylay.detect",
    "waylay.certs.names",
    "waylay.installpage",
    "waylay.store.rows",
    "waylay.passthrough",
    "waylay.hosts",
    "waylay.options",
    "waylay.flow",
    "waylay.headers",
    "waylay.encoding",
    "waylay.hooks",
    "waylay.addons.dumper",
    "waylay.addons.rulespec",
    "waylay.addons.modifyheaders",
    "waylay.addons.modifybody",
    "waylay.addons.mapremote",
    "waylay.addons.maplocal",
    "waylay.addons.block",
    "waylay.addons.intercept",
    "waylay.addons.builtin",
    "waylay.addons.options",
    "waylay.addons.script",
    "waylay.addons.reference",
    "waylay.filters",
    "waylay.outbound",
]

# Packages that are pure as a whole: each of their modules must be in PURE_MODULES.
PURE_PACKAGES = ["waylay.http1"]

FORBIDDEN = frozenset({"asyncio", "socket"})


def module_file(module: str) -> Path:
    base = SRC.joinpath(*module.split("."))
    package = base / "__init__.py"
    return package if package.is_file() else base.with_suffix(".py")


def imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", PURE_PACKAGES)
def test_pure_packages_are_listed_whole(package: str) -> None:
    directory = SRC.joinpath(*package.split("."))
    modules = {f"{package}.{path.stem}" for path in directory.glob("*.py")}
    modules = {package if name.endswith(".__init__") else name for name in modules}
    assert modules - set(PURE_MODULES) == set()


@pytest.mark.parametrize("module", PURE_MODULES)
def test_source_imports_nothing_forbidden(module: str) -> None:
    path = module_file(module)
    assert path.is_file(), f"{module} is listed as pure but {path} does not exist"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert not imported_roots(tree) & FORBIDDEN


@pytest.mark.parametrize("module", PURE_MODULES)
def test_importing_loads_nothing_forbidden(module: str) -> None:
    # A fresh interpreter: catches forbidden modules pulled in through other imports too.
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps(sorted(m for m in {sorted(FORBIDDEN)!r} if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(result.stdout) == []
