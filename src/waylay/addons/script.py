"""A user's addon script (`-s SCRIPT`): a Python file run as a module of its own.

The file is compiled from its source every time (never from a `.pyc`: an edit within the
same second must not be missed) and run as a fresh module under a name unique to its path,
registered in `sys.modules` so that dataclasses and pickling work inside it. While it runs,
its directory is first on `sys.path`, so it can import a helper module next to it; that entry
is removed afterwards, so no directory of a script stays importable for the rest of waylay.

Its addons are the objects of its `addons` list, after the module itself when it defines
hook functions at module level (mitmproxy's two forms). A file that has neither is an error:
a misspelt hook would otherwise do nothing, silently.

What goes wrong — unreadable, a syntax error, an exception while it runs — is a ScriptError
whose one-line reason names the file and line (what the CLI prints at start-up) and whose
traceback shows the script's own frames, never waylay's (what a failed reload logs).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from types import CodeType, ModuleType

from waylay.errors import ConfigError
from waylay.hooks import HOOKS

# waylay's own source tree: frames there are left out of a script's traceback.
_WAYLAY_DIR = str(Path(__file__).resolve().parents[1]) + os.sep


class ScriptError(ConfigError):
    """A script that cannot be used: a one-line reason, and the traceback that explains it."""

    def __init__(self, reason: str, traceback_text: str = "") -> None:
        super().__init__(reason)
        self.traceback = traceback_text


def describe_failure(path: Path, exc: BaseException, during: str = "") -> ScriptError:
    """``exc``, raised by the script at ``path`` (``during`` its load hook, say), explained."""
    if isinstance(exc, ConfigError) and not isinstance(exc, ScriptError):
        # add_option's own errors already name the script and the option.
        return ScriptError(exc.reason, script_traceback(exc))
    where = ""
    if isinstance(exc, SyntaxError):
        where = _place(path, exc.filename, exc.lineno)
        message = f"SyntaxError: {exc.msg}"
    else:
        frames = [
            frame
            for frame in traceback.extract_tb(exc.__traceback__)
            if not frame.filename.startswith(_WAYLAY_DIR)
        ]
        if frames:
            where = _place(path, frames[-1].filename, frames[-1].lineno)
        message = "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]
    context = ", ".join(part for part in (f"script {path}", during, where) if part)
    return ScriptError(f"{context}: {message}", script_traceback(exc))


def _place(path: Path, filename: str | None, line: int | None) -> str:
    if line is None:
        return ""
    if filename is None or filename == str(path):
        return f"line {line}"
    return f"{filename} line {line}"


def script_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from its first frame outside waylay (the script's)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_WAYLAY_DIR):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip("\n")


def module_name(path: Path) -> str:
    """A module name for the script at ``path``: its stem, and a digest of where it is."""
    where = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape"))
    stem = re.sub(r"\W", "_", path.stem)
    return f"waylay_script_{stem}_{where.hexdigest()[:10]}"


Signature = tuple[int, int, int]


class Script:
    """One `-s` file: the addons of the version last loaded, and what it looked like then."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.module_name = module_name(path)
        # The addons of the version running now ([] until the first load).
        self.addons: list[object] = []
        # The file's (mtime, size, inode) when it was last read, loaded or not: a version
        # that failed is not tried again until the file changes once more.
        self.seen: Signature | None = None

    def __repr__(self) -> str:
        return f"Script({str(self.path)!r})"

    def signature(self) -> Signature | None:
        """(mtime in ns, size, inode) of the file now; None while it is missing.

        Size and inode too: a write within the file system's clock tick, or an editor that
        replaces the file, still shows.
        """
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def changed(self) -> bool:
        """Whether the file differs from the version last read (a missing file is no change:
        an editor may be between removing and writing it)."""
        now = self.signature()
        return now is not None and now != self.seen

    def import_addons(self) -> list[object]:
        """Run the file now as a fresh module; return its addons (ScriptError if it cannot)."""
        self.seen = self.signature()
        try:
            source = self.path.read_bytes()
        except OSError as exc:
            raise ScriptError(f"script {self.path}: cannot read it: {exc.strerror}") from None
        try:
            code = compile(source, str(self.path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            raise describe_failure(self.path, exc) from None
        module = self._run(code)
        return self._addons_of(module)

    def _run(self, code: CodeType) -> ModuleType:
        spec = importlib.util.spec_from_file_location(self.module_name, self.path)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        previous = sys.modules.get(self.module_name)
        sys.modules[self.module_name] = module
        directory = str(self.path.parent.resolve())
        sys.path.insert(0, directory)
        try:
            exec(code, module.__dict__)
        except (Exception, SystemExit) as exc:
            if previous is None:
                del sys.modules[self.module_name]
            else:
                sys.modules[self.module_name] = previous
            raise describe_failure(self.path, exc) from None
        finally:
            # Our entry, not the script's own changes to sys.path.
            if directory in sys.path:
                sys.path.remove(directory)
        return module

    def _addons_of(self, module: ModuleType) -> list[object]:
        found: list[object] = []
        if any(callable(module.__dict__.get(name)) for name in HOOKS):
            found.append(module)
        listed = module.__dict__.get("addons")
        if listed is not None:
            if not isinstance(listed, list | tuple):
                raise ScriptError(
                    f"script {self.path}: addons should be a list of addon objects, not "
                    f"{type(listed).__name__}"
                )
            found.extend(listed)
        if listed is None and not found:
            raise ScriptError(
                f"script {self.path}: defines no addon: give it an `addons = [...]` list, or "
                "hook functions (load, request, response, ...) at module level"
            )
        return found
