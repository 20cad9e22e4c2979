"""Addons' own options: declared in their `load` hook, set with `--set NAME=VALUE`.

An addon's `load(loader)` declares each option once, with its type, default and help::

    def load(self, loader):
        loader.add_option("greeting", str, "hello", "what to say")
        self.options = loader.options        # later: self.options.greeting

The types are bool, int, float, str and `str | None` (`Optional[str]`). `--set` values arrive
before any addon is loaded, so they wait here as text and are parsed when their option is
declared (a bad one names the option and what it expected); one that no addon declares is an
error once every addon has loaded, as an unknown flag is.

An option's name is its own: declaring a name twice, or one of waylay's own options
(`--set quiet=...` must mean waylay's), is an error naming both. A reloaded script declares
its options again; what `--set` gave them still holds.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from waylay.errors import ConfigError
from waylay.options import own_option, parse_bool


def _parse_int(text: str) -> int:
    return int(text.strip())


def _parse_float(text: str) -> float:
    return float(text.strip())


_OPTIONAL_STR = str | None

# The types an option may have: the name shown to users, its metavar in --help, what a
# --set value must look like, and how it becomes a value.
_TYPES: dict[object, tuple[str, str, str, Callable[[str], object]]] = {
    bool: ("bool", "BOOL", "true or false (yes/no, on/off, 1/0)", lambda t: parse_bool("", t)),
    int: ("int", "N", "a whole number", _parse_int),
    float: ("float", "NUMBER", "a number", _parse_float),
    str: ("str", "TEXT", "text", str),
    _OPTIONAL_STR: ("str | None", "TEXT", "text (empty for None)", lambda text: text or None),
}


@dataclass(frozen=True, slots=True)
class AddonOption:
    """One option an addon declared, and who declared it (a script's path, or a class)."""

    name: str
    type: object
    default: object
    help: str
    owner: str

    @property
    def type_name(self) -> str:
        return _TYPES[self.type][0]

    @property
    def metavar(self) -> str:
        return _TYPES[self.type][1]

    def parse(self, text: str | None) -> object:
        """The value `--set NAME=TEXT` gives (a bare `--set NAME` switches a bool on)."""
        if text is None:
            if self.type is bool:
                return True
            raise ConfigError(f"--set {self.name}: expected --set {self.name}=VALUE")
        _, _, expected, convert = _TYPES[self.type]
        try:
            return convert(text)
        except (ValueError, ConfigError):
            raise ConfigError(
                f"--set {self.name}={text!r}: expected {expected} for option {self.name} "
                f"({self.type_name}, of {self.owner})"
            ) from None


class OptionValues:
    """The addons' options by name, read as attributes: ``loader.options.greeting``."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, object]) -> None:
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            known = ", ".join(sorted(self._values)) or "none"
            raise AttributeError(f"no addon option {name!r} (declared: {known})") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"addon options are set with --set {name}=VALUE, not assigned")

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        return f"OptionValues({self._values!r})"


def _check_default(name: str, owner: str, typespec: object, default: object) -> object:
    """``default``, if it is a value of ``typespec`` (an int will do for a float)."""
    if typespec is _OPTIONAL_STR:
        fits = default is None or isinstance(default, str)
    elif isinstance(default, bool):
        fits = typespec is bool
    elif typespec is float:
        fits = isinstance(default, int | float)
    else:
        fits = isinstance(default, typespec)  # type: ignore[arg-type]
    if not fits:
        kind = _TYPES[typespec][0]
        raise ConfigError(
            f"option {name!r} of {owner}: its default {default!r} is not of type {kind}"
        )
    return float(default) if typespec is float else default  # type: ignore[arg-type]


class AddonOptions:
    """Every option the addons declared, its current value, and the `--set`s waiting."""

    def __init__(self, settings: Mapping[str, str | None] | None = None) -> None:
        # --set NAME=VALUE for addons, by name (dashes read as underscores), as typed.
        self._settings = {name.replace("-", "_"): value for name, value in (settings or {}).items()}
        self._declared: dict[str, AddonOption] = {}
        self._values: dict[str, object] = {}
        self.values = OptionValues(self._values)

    def __iter__(self) -> Iterator[AddonOption]:
        return iter(self._declared.values())

    def declare(
        self, owner: str, name: str, typespec: object, default: object, help: str
    ) -> AddonOption:
        """Add an option; ConfigError if it cannot be (its name, type, default or a clash)."""
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ConfigError(f"option {name!r} of {owner}: a name must be a Python identifier")
        if name.startswith("_"):
            raise ConfigError(f"option {name!r} of {owner}: a name may not start with _")
        # typing.Optional[str] is equal to str | None, and stored as it.
        canonical = next((known for known in _TYPES if known == typespec), None)
        if canonical is None:
            raise ConfigError(
                f"option {name!r} of {owner}: type {typespec!r} is not one of bool, int, "
                "float, str, str | None"
            )
        flag = own_option(name)
        if flag is not None:
            raise ConfigError(f"option {name!r} of {owner} clashes with waylay's own option {flag}")
        other = self._declared.get(name)
        if other is not None:
            by = "twice by" if other.owner == owner else f"by {other.owner} and by"
            raise ConfigError(f"option {name!r} is declared {by} {owner}")
        default = _check_default(name, owner, canonical, default)
        option = AddonOption(name, canonical, default, str(help), owner)
        value = option.parse(self._settings[name]) if name in self._settings else default
        self._declared[name] = option
        self._values[name] = value
        return option

    def check_settings(self) -> None:
        """ConfigError for the first `--set` that names an option nobody declared."""
        for name, value in self._settings.items():
            if name not in self._declared:
                shown = name if value is None else f"{name}={value}"
                raise ConfigError(
                    f"--set {shown}: no such option (neither waylay's own nor one a loaded "
                    "addon declares; `waylay dump -s SCRIPT --help` lists a script's)"
                )

    def snapshot(self) -> OptionsSnapshot:
        return OptionsSnapshot(dict(self._declared), dict(self._values))

    def forget(self, owner: str) -> OptionsSnapshot:
        """Drop ``owner``'s declarations, so that its new version may declare them again;
        return how everything was before.

        Their values stay readable until `commit`: the running version still reads them.
        """
        snapshot = self.snapshot()
        for name, option in snapshot.declared.items():
            if option.owner == owner:
                del self._declared[name]
        return snapshot

    def commit(self) -> None:
        """After a reload: the values of options no longer declared go."""
        for name in [name for name in self._values if name not in self._declared]:
            del self._values[name]

    def restore(self, snapshot: OptionsSnapshot) -> None:
        """Every declaration and value as in ``snapshot`` (a failed reload undone, say)."""
        self._declared.clear()
        self._declared.update(snapshot.declared)
        self._values.clear()
        self._values.update(snapshot.values)


@dataclass(frozen=True, slots=True)
class OptionsSnapshot:
    declared: dict[str, AddonOption]
    values: dict[str, object]


class Loader:
    """What an addon's `load` hook receives: declare options, and read them all."""

    __slots__ = ("_owner", "_registry")

    def __init__(self, registry: AddonOptions, owner: str) -> None:
        self._registry = registry
        self._owner = owner

    def add_option(self, name: str, typespec: object, default: object, help: str) -> None:
        """Declare option ``name`` of type bool, int, float, str or `str | None`.

        Its value (``default``, or what `--set name=VALUE` says) is then
        ``loader.options.name``.
        """
        self._registry.declare(self._owner, name, typespec, default, help)

    @property
    def options(self) -> OptionValues:
        """Every addon option's current value, by name: ``loader.options.greeting``."""
        return self._registry.values
