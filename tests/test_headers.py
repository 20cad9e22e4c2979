"""Headers: the case-insensitive multi-dict addons read and change, over the wire's field lines.

What the mapping shows (joined repeats, each name once) and what it writes (into the same
list the data path sends) are checked on tables; what it refuses (RFC 9110 §5.5-§5.6.2) on
every way in; and a property holds a random sequence of changes to a plain list model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waylay.headers import Headers
from waylay.http1.head import Fields

WIRE: Fields = [
    (b"Host", b"a.test"),
    (b"Accept", b"text/html"),
    (b"X-Trace", b"1"),
    (b"accept", b"*/*"),
    (b"Set-Cookie", b"a=1"),
    (b"set-cookie", b"b=2"),
]


def _headers() -> Headers:
    return Headers(list(WIRE))


# --- reading -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "joined", "each"),
    [
        ("Host", "a.test", ["a.test"]),
        ("host", "a.test", ["a.test"]),
        ("HOST", "a.test", ["a.test"]),
        ("Accept", "text/html, */*", ["text/html", "*/*"]),  # RFC 9110 §5.3: joined with ", "
        ("ACCEPT", "text/html, */*", ["text/html", "*/*"]),
        ("set-cookie", "a=1, b=2", ["a=1", "b=2"]),
    ],
)
def test_a_name_is_read_without_regard_to_case(name: str, joined: str, each: list[str]) -> None:
    headers = _headers()
    assert headers[name] == joined
    assert headers.get(name) == joined
    assert headers.get_all(name) == each
    assert name in headers


def test_a_missing_name_is_a_key_error_and_get_gives_the_default() -> None:
    headers = _headers()
    with pytest.raises(KeyError):
        headers["Content-Type"]
    assert headers.get("content-type") is None
    assert headers.get("content-type", "text/plain") == "text/plain"
    assert headers.get_all("content-type") == []
    assert "content-type" not in headers


def test_only_text_names_are_in_it() -> None:
    headers = _headers()
    assert b"Host" not in headers  # type: ignore[comparison-overlap]
    assert ("Host", "a.test") not in headers  # type: ignore[comparison-overlap]
    assert 7 not in headers  # type: ignore[comparison-overlap]


def test_iteration_gives_each_name_once_as_first_sent_in_order() -> None:
    headers = _headers()
    assert list(headers) == ["Host", "Accept", "X-Trace", "Set-Cookie"]
    assert len(headers) == 4
    assert dict(headers.items()) == {
        "Host": "a.test",
        "Accept": "text/html, */*",
        "X-Trace": "1",
        "Set-Cookie": "a=1, b=2",
    }


def test_items_multi_is_every_line_as_text() -> None:
    assert _headers().items_multi() == [(n.decode("latin-1"), v.decode("latin-1")) for n, v in WIRE]


def test_latin_1_bytes_read_as_their_characters() -> None:
    headers = Headers.wrap([(b"X-Name", b"caf\xe9 \xff")])
    assert headers["x-name"] == "café ÿ"


def test_an_empty_headers_is_empty_and_false() -> None:
    headers = Headers()
    assert headers.fields == [] and len(headers) == 0 and not headers
    assert list(headers) == []


# --- changing ------------------------------------------------------------------------------


def test_setting_replaces_every_line_of_the_name_in_the_place_of_the_first() -> None:
    headers = _headers()
    headers["ACCEPT"] = "application/json"
    assert headers.fields == [
        (b"Host", b"a.test"),
        (b"Accept", b"application/json"),  # in the case it was sent in
        (b"X-Trace", b"1"),
        (b"Set-Cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]


def test_setting_a_new_name_appends_it() -> None:
    headers = _headers()
    headers["Content-Type"] = "text/plain"
    assert headers.fields == [*WIRE, (b"Content-Type", b"text/plain")]


def test_set_all_puts_one_line_per_value_and_nothing_for_none() -> None:
    headers = _headers()
    headers.set_all("set-cookie", ["c=3", b"d=4", "e=5"])
    assert headers.fields[4:] == [(b"Set-Cookie", b"c=3"), (b"Set-Cookie", b"d=4"),
                                  (b"Set-Cookie", b"e=5")]  # fmt: skip
    headers.set_all("Set-Cookie", [])
    assert "set-cookie" not in headers
    assert headers.fields == WIRE[:4]


def test_add_keeps_the_lines_already_there() -> None:
    headers = _headers()
    headers.add("Set-Cookie", "c=3")
    headers.add("Via", b"1.1 waylay")
    assert headers.fields == [*WIRE, (b"Set-Cookie", b"c=3"), (b"Via", b"1.1 waylay")]
    assert headers.get_all("set-cookie") == ["a=1", "b=2", "c=3"]


def test_deleting_removes_every_line_of_the_name() -> None:
    headers = _headers()
    del headers["ACCEPT"]
    assert headers.fields == [(b"Host", b"a.test"), (b"X-Trace", b"1"),
                              (b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2")]  # fmt: skip
    with pytest.raises(KeyError):
        del headers["accept"]


def test_mapping_methods_work_through_the_same_primitives() -> None:
    headers = _headers()
    assert headers.pop("x-trace") == "1" and "X-Trace" not in headers
    assert headers.setdefault("X-New", "v") == "v"
    assert headers.setdefault("x-new", "other") == "v"
    headers.update({"Host": "b.test"})
    assert headers.fields[0] == (b"Host", b"b.test")


def test_values_set_lose_their_surrounding_whitespace() -> None:
    headers = Headers()
    headers["X-A"] = " \t padded \t "
    assert headers.fields == [(b"X-A", b"padded")]  # RFC 9110 §5.5: OWS is not the value


# --- the list underneath -----------------------------------------------------------------


def test_wrap_keeps_the_very_list_and_changes_show_in_it() -> None:
    fields: Fields = list(WIRE)
    headers = Headers.wrap(fields)
    assert headers.fields is fields
    headers["Accept"] = "x/y"
    headers.add("Via", "waylay")
    del headers["Host"]
    assert headers.fields is fields
    assert fields[0] == (b"Accept", b"x/y") and fields[-1] == (b"Via", b"waylay")


def test_a_list_of_byte_pairs_is_checked_and_copied() -> None:
    fields: Fields = list(WIRE)
    headers = Headers(fields)
    assert headers.fields == fields and headers.fields is not fields
    with pytest.raises(ValueError):
        Headers([(b"X-A", b"split\r\nX-B: 1")])
    with pytest.raises(ValueError):
        Headers([(b"Bad Name", b"1")])


@pytest.mark.parametrize(
    "given",
    [
        [("Host", "a.test"), ("Accept", "x")],
        [(b"Host", "a.test"), ("Accept", b"x")],
        {"Host": "a.test", "Accept": "x"},
        (pair for pair in [("Host", "a.test"), ("Accept", "x")]),
    ],
    ids=["text pairs", "mixed pairs", "dict", "iterator"],
)
def test_other_forms_are_checked_into_byte_pairs(given: object) -> None:
    headers = Headers(given)  # type: ignore[arg-type]
    assert headers.fields == [(b"Host", b"a.test"), (b"Accept", b"x")]


def test_copy_is_a_new_list_and_equality_is_by_fields() -> None:
    headers = _headers()
    copy = headers.copy()
    assert copy == headers and copy.fields is not headers.fields
    copy["Host"] = "b.test"
    assert copy != headers and headers["host"] == "a.test"
    assert headers != WIRE  # a Headers is not a list, even with the same lines
    assert Headers.wrap([(b"A", b"1")]) != Headers.wrap([(b"a", b"1")])  # the case is kept


def test_headers_are_not_hashable() -> None:
    with pytest.raises(TypeError):
        hash(Headers())


# --- what is refused ---------------------------------------------------------------------

BAD_NAMES = ["", "Bad Name", "X:Y", "X\r\nY", "X\x00", "Ä", "€", "(x)", "a/b", b"X Y"]
BAD_VALUES = [
    "a\r\nInjected: 1",  # RFC 9110 §5.5: a value never holds CR or LF (response splitting)
    "a\nb",
    "a\rb",
    "a\x00b",  # nor NUL
    b"a\r\nb",
]
NOT_LATIN_1 = ["€", "日本", "caf\u00e9\u2019"]

# Names and values of the wrong type on purpose (bytes where text is asked): Any.
Put = Callable[[Any, Any], object]
WAYS_IN: list[tuple[str, Put]] = [
    ("setitem", lambda n, v: Headers().__setitem__(n, v)),
    ("add", lambda n, v: Headers().add(n, v)),
    ("set_all", lambda n, v: Headers().set_all(n, [v])),
    ("pairs", lambda n, v: Headers([(n, v)])),
    ("dict", lambda n, v: Headers({n: v})),
]


@pytest.mark.parametrize(("way", "put"), WAYS_IN, ids=[w for w, _ in WAYS_IN])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_a_token_is_refused(way: str, put: Put, name: str | bytes) -> None:
    with pytest.raises(ValueError):
        put(name, "v")


@pytest.mark.parametrize(("way", "put"), WAYS_IN, ids=[w for w, _ in WAYS_IN])
@pytest.mark.parametrize("value", BAD_VALUES)
def test_a_value_with_cr_lf_or_nul_is_refused(way: str, put: Put, value: str | bytes) -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        put("X-A", value)


@pytest.mark.parametrize(("way", "put"), WAYS_IN, ids=[w for w, _ in WAYS_IN])
@pytest.mark.parametrize("value", NOT_LATIN_1)
def test_a_value_outside_latin_1_is_refused(way: str, put: Put, value: str) -> None:
    with pytest.raises(ValueError, match="outside Latin-1"):
        put("X-A", value)


def test_a_refused_change_leaves_the_fields_as_they_were() -> None:
    headers = _headers()
    changes: list[Callable[[], object]] = [
        lambda: headers.__setitem__("Accept", "a\r\nb"),
        lambda: headers.set_all("Accept", ["fine", "not\nfine"]),
        lambda: headers.add("Bad Name", "v"),
        lambda: headers.__setitem__("X-Trace", "€"),
    ]
    for change in changes:
        with pytest.raises(ValueError):
            change()
        assert headers.fields == WIRE


# --- a property: any changes, against a plain model ----------------------------------------

_NAMES = ["Accept", "accept", "ACCEPT", "X-A", "x-a", "Set-Cookie", "Bad Name", "Ä"]
_VALUES = st.text(alphabet="ab; =\t \r\n\x00é€", max_size=6)
_CHANGES = st.lists(
    st.tuples(st.sampled_from(["set", "add", "del"]), st.sampled_from(_NAMES), _VALUES),
    max_size=12,
)
_TCHAR = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _model_value(value: str) -> bytes | None:
    """What the value becomes on the wire, or None when it must be refused."""
    if set(value) & set("\r\n\x00"):
        return None
    try:
        return value.encode("latin-1").strip(b" \t")
    except UnicodeEncodeError:
        return None


@given(start=st.lists(st.tuples(st.sampled_from(_NAMES[:6]), st.sampled_from(["1", "2"]))),
       changes=_CHANGES)  # fmt: skip
def test_any_changes_keep_the_fields_clean_and_match_a_plain_model(
    start: list[tuple[str, str]], changes: list[tuple[str, str, str]]
) -> None:
    headers = Headers(start)
    model = [(n.encode(), v.encode()) for n, v in start]
    for op, name, value in changes:
        key = name.lower().encode("latin-1")
        valid_name = set(name) <= _TCHAR
        wire = _model_value(value)
        if op == "del":
            if any(n.lower() == key for n, _ in model):
                del headers[name]
                model = [(n, v) for n, v in model if n.lower() != key]
            else:
                with pytest.raises(KeyError):
                    del headers[name]
            continue
        if not valid_name or wire is None:
            with pytest.raises(ValueError):
                if op == "set":
                    headers[name] = value
                else:
                    headers.add(name, value)
            continue
        line = (name.encode(), wire)
        if op == "add":
            headers.add(name, value)
            model.append(line)
        else:
            headers[name] = value
            first = next((i for i, (n, _) in enumerate(model) if n.lower() == key), None)
            rest = [(n, v) for n, v in model if n.lower() != key]
            if first is not None:
                line = (model[first][0], wire)  # the name keeps the case it was sent in
            model = [*rest, line] if first is None else [*rest[:first], line, *rest[first:]]
    assert headers.fields == model
    for raw_name, raw_value in headers.fields:
        assert not set(raw_name + raw_value) & set(b"\r\n\x00")
    for name in _NAMES:
        key = name.lower().encode("latin-1")
        expected = [v.decode("latin-1") for n, v in model if n.lower() == key]
        assert headers.get_all(name) == expected
        assert (name in headers) == bool(expected)
