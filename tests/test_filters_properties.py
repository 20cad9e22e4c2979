"""Property tests for the filter language.

1. On random flows (stored with their bodies cut into chunks of random sizes) and random
   expressions from the grammar, SQL selects exactly the flows ``matches`` accepts.
2. Random text parses or raises FilterError, nothing else; when it parses, its SQL runs and
   agrees with ``matches`` on the table tests' flows.
3. The SQL prefilter of a regex never turns away a text the regex matches.
4. Deep and long expressions parse within SQLite's limits or raise FilterError; an error's
   pointer stands under its column.
"""

from __future__ import annotations

import gzip
import re
import sqlite3
import warnings
import zlib
from functools import lru_cache

from hypothesis import given
from hypothesis import strategies as st

from tests.test_filters import FLOWS, make_flow, open_database, python_ids, sql_ids, store
from waylay.filters import FLAGS, FilterError, _ascii_lower, _required_literal, parse_filter
from waylay.flow import Error, Flow
from waylay.headers import Headers
from waylay.http1.head import Fields

# --- flows --------------------------------------------------------------------------------------

CONTENT_TYPES = [
    b"text/html; charset=utf-8",
    b"application/json",
    b"image/png",
    b"font/woff2",
    b"text/CSS",
    b"TEXT/JavaScript",
    b"application/x-font-ttf",
    b"x-image/y",
    b"caf\xe9/CAF\xc9",
]
NAMES = [b"Content-Type", b"content-type", b"Accept", b"X-Test", b"Content-Encoding", b"Server"]
VALUE_BYTES = list(b"abcABC019 /;=.-_%:\xe9\xc9")

values = st.one_of(
    st.sampled_from([*CONTENT_TYPES, b"gzip", b"deflate", b"br", b"identity", b"GZIP, br"]),
    st.lists(st.sampled_from(VALUE_BYTES), max_size=12).map(bytes),
)
headers = st.lists(st.tuples(st.sampled_from(NAMES), values), max_size=5)
payloads = st.lists(st.sampled_from([b"a", b"B", b"\xc3\xa9", b"\xe9", b"\n", b".", b"0"]))


@st.composite
def messages(draw: st.DrawFn) -> tuple[Fields, bytes | None]:
    """Headers and a body as captured: none, empty, plain, or under a Content-Encoding."""
    fields: Fields = draw(headers)
    if draw(st.booleans()):
        fields.insert(0, (b"Content-Type", draw(st.sampled_from(CONTENT_TYPES))))
    content = draw(st.none() | payloads.map(b"".join))
    if content is None:
        return fields, None
    coding = draw(st.sampled_from(["", "gzip", "deflate", "raw deflate", "br", "bad gzip"]))
    if coding == "gzip":
        content = gzip.compress(content)
    elif coding == "deflate":
        content = zlib.compress(content)
    elif coding == "raw deflate":
        content = zlib.compress(content)[2:-4]
    if coding:
        name = "deflate" if coding == "raw deflate" else coding.removeprefix("bad ")
        fields.insert(draw(st.integers(0, len(fields))), (b"Content-Encoding", name.encode()))
    if draw(st.booleans()):  # a second field: the first one is the one that counts
        where = draw(st.integers(0, len(fields)))
        fields.insert(where, (b"content-encoding", draw(st.sampled_from([b"gzip", b"identity"]))))
    return fields, content


addresses = st.tuples(
    st.sampled_from(["127.0.0.1", "::1", "10.1.2.3", "2001:db8::80"]),
    st.sampled_from([80, 443, 8080, 50000]),
)


@st.composite
def flows(draw: st.DrawFn, id: int) -> Flow:
    request_headers, request_content = draw(messages())
    path = "/" + "".join(draw(st.lists(st.sampled_from(list("abcAPIv019/._-%?=\xe9")))))
    status = draw(st.none() | st.sampled_from([200, 204, 304, 404, 500]))
    response_headers, response_content = draw(messages())
    error = draw(st.none() | st.just(Error("connection refused", "connect-failed")))
    flow = make_flow(
        draw(st.sampled_from(["GET", "POST", "put", "DELETE", "OPTIONS"])),
        (
            draw(st.sampled_from(["http", "https"])),
            draw(st.sampled_from(["example.com", "api.example.org", "CDN.test", "::1"])),
            draw(st.sampled_from([80, 443, 8080])),
            path,
        ),
        request_headers,
        request_content,
        status=status,
        response_headers=response_headers,
        response_content=response_content,
        error=error,
        client=draw(addresses),
        server=draw(st.none() | addresses),
        id=id,
    )
    # Trailers are stored with the headers, and no operator looks at them.
    flow.request.trailers = draw(st.none() | headers.map(Headers))
    if flow.response is not None:
        flow.response.trailers = draw(st.none() | headers.map(Headers))
    return flow


@st.composite
def flow_lists(draw: st.DrawFn) -> list[Flow]:
    return [draw(flows(id)) for id in range(1, draw(st.integers(1, 6)) + 1)]


# --- expressions --------------------------------------------------------------------------------


def compiles(regex: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "possible nested set": noise, not what is tested here
        try:
            re.compile(regex, FLAGS)
            re.compile(regex.encode(), FLAGS)
        except (re.error, FutureWarning):
            return False
    return True


# Words users search for, and regexes with each construct the prefilter has to get right.
WORDS = [
    *["example", "API", "json", "text", "png", "é", "É", "get", "/v1", ":", "%", "_", "1"],
    *[".", "^/", "gzip", "font", "^server", "a", "aB", "0.", "\xe9"],
]
REGEXES = [
    *["", "a.c", "^get$", "[0-9]+", "v[12]", "(json|html)", "x*", r"\.js$", "é|É", "ab?c"],
    *["^$", r"\[::1\]", ":80$", "caf[eé]", r"\d{2,}", "(?s)a.b", "a\nb", r"\n", "a'b", 'a"b'],
    "content-type: text",
]
regexes = st.one_of(
    st.sampled_from(WORDS + REGEXES),
    st.text(alphabet="abcAB019./:-_%éÉ *+?^$|()[]'\"", max_size=8).filter(compiles),
)


def quoted(regex: str, quote: str) -> str:
    return quote + regex.replace(quote, "\\" + quote) + quote


@st.composite
def arguments(draw: st.DrawFn) -> str:
    regex = draw(regexes)
    bare = regex and not re.search(r"[\s()&|'\"]", regex) and regex[0] not in "~!"
    if bare and draw(st.booleans()):
        return regex
    return quoted(regex, draw(st.sampled_from(["'", '"'])))


atoms = st.one_of(
    st.sampled_from(["~all", "~http", "~tcp", "~q", "~s", "~e", "~a"]),
    st.sampled_from([200, 201, 304, 404, 500]).map(lambda code: f"~c {code}"),
    st.builds(
        lambda op, argument: f"{op} {argument}",
        st.sampled_from(
            [
                "~d",
                "~u",
                "~m",
                "~h",
                "~hq",
                "~hs",
                "~b",
                "~bq",
                "~bs",
                "~t",
                "~tq",
                "~ts",
                "~src",
                "~dst",
            ]
        ),
        arguments(),
    ),
    arguments(),  # a bare argument is ~u
)
expressions = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"{a} & {b}", inner, inner),
        st.builds(lambda a, b: f"{a} | {b}", inner, inner),
        st.builds(lambda a, b: f"{a} {b}", inner, inner),
        inner.map(lambda a: f"!{a}"),
        inner.map(lambda a: f"({a})"),
    ),
    max_leaves=8,
)


# --- 1. SQL and Python agree --------------------------------------------------------------------


@given(
    flow_lists(),
    st.lists(expressions, min_size=1, max_size=4),
    st.lists(st.integers(1, 9), min_size=1, max_size=6),
)
def test_sql_selects_the_flows_that_match(
    flows: list[Flow], texts: list[str], chunk_sizes: list[int]
) -> None:
    assert_agreement(flows, texts, chunk_sizes)


def assert_agreement(flows: list[Flow], texts: list[str], chunk_sizes: list[int]) -> None:
    db = open_database()
    try:  # closed here, not left to the collector (an "unclosed database" warning otherwise)
        store(db, flows, chunk_sizes)
        for text in texts:
            assert sql_ids(db, text) == python_ids(flows, text), text
    finally:
        db.close()


# Bodies get a test of their own: in the grammar above they are 3 operators of 23.
body_regexes = st.one_of(
    st.sampled_from(["a", "é", r"\xe9", ".", "^a", "a$", "B.a", r"\x1f\x8b", "x*", "0\n"]),
    st.text(alphabet="aB.é*?^$\n0", max_size=4).filter(compiles),
)
body_filters = st.builds(
    lambda operator, regex: operator + " " + quoted(regex, "'"),
    st.sampled_from(["~b", "~bq", "~bs"]),
    body_regexes,
)


@given(
    flow_lists(),
    st.lists(body_filters, min_size=1, max_size=6),
    st.lists(st.integers(1, 9), min_size=1, max_size=6),
)
def test_sql_selects_the_flows_whose_bodies_match(
    flows: list[Flow], texts: list[str], chunk_sizes: list[int]
) -> None:
    assert_agreement(flows, texts, chunk_sizes)


# --- 2. random text: FilterError or a filter whose SQL runs ---------------------------------------

pieces = st.sampled_from(
    [
        *[
            "~d",
            "~c",
            "~b",
            "~bs",
            "~h",
            "~a",
            "~x",
            "~",
            "(",
            ")",
            "!",
            "&",
            "|",
            "'",
            '"',
            "\\",
            "x",
            "404",
            "[",
            "*",
            "(?i)",
            "é",
            "a{2,1}",
            "%",
            "_",
        ],
        " ",
        "\t",
        "\x00",
    ]
)
random_texts = st.one_of(st.text(max_size=30), st.lists(pieces, max_size=12).map("".join))


@lru_cache(maxsize=1)
def table_database() -> sqlite3.Connection:
    db = open_database()
    store(db, FLOWS)
    return db


@given(random_texts)
def test_random_text_parses_or_raises_filter_error_and_its_sql_runs(text: str) -> None:
    try:
        flt = parse_filter(text)
    except FilterError as exc:
        assert 1 <= exc.column <= len(text) + 1
        return
    assert flt.text == text
    assert sql_ids(table_database(), text) == python_ids(FLOWS, text)


# --- 3. the prefilter ---------------------------------------------------------------------------

regex_sources = st.text(alphabet="ab.|()[]*+?{}^$\\12,:A-éÉ", max_size=10).filter(
    lambda regex: "(?" not in regex and compiles(regex)
)


@given(regex_sources, st.data())
def test_the_prefilter_keeps_every_text_the_regex_matches(regex: str, data: st.DataObject) -> None:
    compiled = re.compile(regex, FLAGS)
    text = data.draw(st.from_regex(compiled))
    assert compiled.search(text)
    assert _required_literal(regex) in _ascii_lower(text)


# --- 4. the limits: deep and long expressions ----------------------------------------------------

terms = st.sampled_from(
    ["~s", "~q", "~d example", "~c 200", "~h Server", "page", "!~e", "~b World"]
)


@st.composite
def big_expressions(draw: st.DrawFn) -> str:
    """Nested ``!`` and parentheses around long chains, balanced or not, around the limits."""
    joiner = draw(st.sampled_from([" & ", " | ", " ", "&", "|"]))
    chain = joiner.join(draw(st.lists(terms, min_size=1, max_size=5)) * draw(st.integers(1, 250)))
    opened = draw(st.integers(0, 24))
    closed = draw(st.sampled_from([opened, opened, max(0, opened - 1), opened + 1]))
    negations = draw(st.integers(0, 12))
    return "!" * negations + "(" * opened + chain + ")" * closed


@given(big_expressions())
def test_deep_and_long_expressions_stay_within_sqlite(text: str) -> None:
    # parse_filter's limits exist so that SQLite accepts the SQL (its parser stack, its
    # expression depth): what parses must run, and agree with matches(); the rest is a
    # FilterError, never a RecursionError or an sqlite3 error.
    try:
        flt = parse_filter(text)
    except FilterError as exc:
        assert 1 <= exc.column <= len(text) + 1
        return
    assert sql_ids(table_database(), text) == python_ids(FLOWS, text)
    assert flt.text == text


@given(random_texts)
def test_the_error_pointer_is_under_its_column(text: str) -> None:
    try:
        parse_filter(text)
    except FilterError as exc:
        caret_line = exc.pointer().rsplit("\n", 1)[1]
        assert caret_line.endswith("^")
        assert len(caret_line) == exc.column
