"""A message's header fields as addons read and change them: a case-insensitive multi-dict.

The fields stay what the wire said — a list of (name, value) byte pairs, in order, names in
their own case — and that list (`fields`) is what the data path serialises and the store
records, with no copy. The mapping on top speaks text (Latin-1, as HTTP/1 fields are bytes in
that range): ``headers["Content-Type"]`` is every value of that name, joined with ", "
(RFC 9110 §5.3); setting a name replaces all its lines, in the place of the first.

Values an addon sets are checked as the parser checks what peers send (RFC 9110 §5.5-§5.6.2):
a name must be a token, a value must hold no CR, LF or NUL. A script can never make waylay
write a header line that splits a message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping

from waylay.http1.head import Fields

_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FORBIDDEN_IN_VALUE = frozenset(b"\r\n\x00")


def _key(name: str) -> bytes:
    # A name outside Latin-1 is no token: "?" matches no field.
    return name.lower().encode("latin-1", "replace")


def _name_bytes(name: str | bytes) -> bytes:
    raw = name.encode("latin-1") if isinstance(name, str) else bytes(name)
    if not raw or not _TCHAR.issuperset(raw):
        raise ValueError(f"{name!r} is not a valid header name (RFC 9110 §5.6.2 token)")
    return raw


def _value_bytes(value: str | bytes) -> bytes:
    try:
        raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
    except UnicodeEncodeError:
        raise ValueError(
            f"header value {value!r} has characters outside Latin-1: encode it first "
            "(RFC 8187 for parameters, or percent-encoding)"
        ) from None
    if _FORBIDDEN_IN_VALUE.intersection(raw):
        raise ValueError(f"header value {value!r} holds CR, LF or NUL (RFC 9110 §5.5)")
    return raw.strip(b" \t")


class Headers(MutableMapping[str, str]):
    """Header (or trailer) fields, by name without regard to case, keeping order and repeats."""

    __slots__ = ("fields",)

    fields: Fields

    def __init__(
        self,
        fields: Fields
        | Iterable[tuple[str | bytes, str | bytes]]
        | Mapping[str, str]
        | None = None,
    ) -> None:
        if fields is None:
            self.fields = []
        else:
            pairs = fields.items() if isinstance(fields, Mapping) else fields
            self.fields = [(_name_bytes(n), _value_bytes(v)) for n, v in pairs]

    @classmethod
    def wrap(cls, fields: Fields) -> Headers:
        """Headers over ``fields`` as the parser produced them (already valid): no checks."""
        headers = cls.__new__(cls)
        headers.fields = fields
        return headers

    # -- reading ----------------------------------------------------------------------

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, one per field line, in order."""
        key = _key(name)
        return [v.decode("latin-1") for n, v in self.fields if n.lower() == key]

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _key(name)
        return any(n.lower() == key for n, _ in self.fields)

    def __iter__(self) -> Iterator[str]:
        """Each name once, as first sent, in order."""
        seen: set[bytes] = set()
        for name, _ in self.fields:
            key = name.lower()
            if key not in seen:
                seen.add(key)
                yield name.decode("latin-1")

    def __len__(self) -> int:
        return len({name.lower() for name, _ in self.fields})

    def items_multi(self) -> list[tuple[str, str]]:
        """Every field line as (name, value), in order, repeats included."""
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.fields]

    # -- changing -----------------------------------------------------------------------

    def __setitem__(self, name: str, value: str) -> None:
        self.set_all(name, [value])

    def __delitem__(self, name: str) -> None:
        key = _key(name)
        kept = [(n, v) for n, v in self.fields if n.lower() != key]
        if len(kept) == len(self.fields):
            raise KeyError(name)
        self.fields[:] = kept

    def set_all(self, name: str, values: Iterable[str | bytes]) -> None:
        """Replace every line of ``name`` by one line per value, where the first one was."""
        raw_name = _name_bytes(name)
        raw_values = [_value_bytes(v) for v in values]
        key = raw_name.lower()
        out: Fields = []
        placed = False
        for n, v in self.fields:
            if n.lower() == key:
                if not placed:
                    # The name keeps the case it was sent in.
                    out += [(n, value) for value in raw_values]
                    placed = True
                continue
            out.append((n, v))
        if not placed:
            out += [(raw_name, value) for value in raw_values]
        self.fields[:] = out

    def add(self, name: str, value: str | bytes) -> None:
        """Append one more line, keeping those of the same name (Set-Cookie, Via)."""
        self.fields.append((_name_bytes(name), _value_bytes(value)))

    # -- the rest ---------------------------------------------------------------------

    def copy(self) -> Headers:
        return Headers.wrap(list(self.fields))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.fields == other.fields
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items_multi()!r})"
