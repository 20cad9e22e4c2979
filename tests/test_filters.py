"""The filter language: every operator on hand-built flows, evaluated in Python and in SQL.

Each row of OPERATORS and GRAMMAR is an expression and the ids of the flows it must match;
both evaluations are held to the same answer, on the same flows stored with their bodies cut
into small chunks (a match across a chunk boundary must still be found).
"""

from __future__ import annotations

import gzip
import itertools
import sqlite3
import zlib
from collections.abc import Iterable, Iterator

import pytest

from waylay.filters import (
    MAX_LIKE_PATTERN,
    FilterError,
    _required_literal,
    decoded_body,
    parse_filter,
    register_functions,
)
from waylay.flow import Error, Flow, Request, Response
from waylay.headers import Headers
from waylay.http1.head import Fields
from waylay.store.rows import INSERT_BODY, INSERT_FLOW, INSERT_HEAD, flow_row, head_rows
from waylay.store.schema import REQUEST_BODY, RESPONSE_BODY, prepare

LONG = "z" * (MAX_LIKE_PATTERN + 10)


def make_flow(
    method: str,
    url: tuple[str, str, int, str],
    request_headers: Fields | None = None,
    request_content: bytes | None = None,
    *,
    status: int | None = None,
    response_headers: Fields | None = None,
    response_content: bytes | None = None,
    response_trailers: Fields | None = None,
    error: Error | None = None,
    client: tuple[str, int] = ("127.0.0.1", 50000),
    server: tuple[str, int] | None = None,
    id: int = 0,
) -> Flow:
    scheme, host, port, path = url
    request = Request(
        method,
        scheme,
        host,
        port,
        path,
        "HTTP/1.1",
        Headers(request_headers or []),
        request_content,
    )
    response = None
    if status is not None:
        response = Response(
            status,
            "",
            "HTTP/1.1",
            Headers(response_headers or []),
            response_content,
            Headers(response_trailers) if response_trailers is not None else None,
        )
    return Flow(client, request, server, response, error, id=id)


def store(db: sqlite3.Connection, flows: Iterable[Flow], chunk_sizes: Iterable[int] = (3,)) -> None:
    """Insert ``flows`` as the writer would, bodies in chunks of ``chunk_sizes`` bytes in turn."""
    sizes = itertools.cycle(chunk_sizes)
    with db:
        for flow in flows:
            db.execute(INSERT_FLOW, flow_row(flow, flow.id))
            db.executemany(INSERT_HEAD, head_rows(flow, flow.id))
            bodies = [(REQUEST_BODY, flow.request.raw_content)]
            if flow.response is not None:
                bodies.append((RESPONSE_BODY, flow.response.raw_content))
            for part, content in bodies:
                start, seq = 0, 0
                while start < len(content or b""):
                    end = start + next(sizes)
                    db.execute(INSERT_BODY, (flow.id, part, seq, (content or b"")[start:end]))
                    start, seq = end, seq + 1


def open_database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    prepare(db, ":memory:")
    register_functions(db)
    return db


def sql_ids(db: sqlite3.Connection, expression: str) -> set[int]:
    sql, params = parse_filter(expression).to_sql()
    return {row[0] for row in db.execute(f"SELECT f.id FROM flows AS f WHERE {sql}", params)}


def python_ids(flows: Iterable[Flow], expression: str) -> set[int]:
    flt = parse_filter(expression)
    return {flow.id for flow in flows if flt.matches(flow)}


FLOWS = [
    make_flow(
        "GET",
        ("http", "example.com", 80, "/index.html?q=Search"),
        [(b"Host", b"example.com"), (b"Accept", b"text/html"), (b"User-Agent", b"curl/8.5")],
        b"",  # captured, and empty: never matches ~b
        status=200,
        response_headers=[(b"Content-Type", b"text/html; charset=utf-8"), (b"Server", b"nginx")],
        response_content=b"<html>Hello World</html>",
        server=("93.184.216.34", 80),
        id=1,
    ),
    make_flow(
        "POST",
        ("https", "api.example.org", 443, "/api/v1/users"),
        [(b"Content-Type", b"application/json"), (b"Authorization", b"Bearer SECRET")],
        '{"name": "Zoë"}'.encode(),
        status=201,
        response_headers=[
            (b"Content-Type", b"application/json"),
            (b"content-encoding", b"GZIP"),
            (b"X-Trace", b"abc"),
        ],
        response_content=gzip.compress('{"id": 42, "name": "Zoë"}'.encode()),
        response_trailers=[(b"X-Checksum", b"trailer-only")],
        client=("::1", 50001),
        server=("2001:db8::1", 443),
        id=2,
    ),
    make_flow(
        "GET",
        ("http", "cdn.test", 80, "/static/app.js"),
        status=404,
        response_headers=[(b"Content-Type", b"application/javascript")],
        client=("10.0.0.2", 40000),
        server=("10.0.0.9", 80),
        id=3,
    ),
    make_flow(
        "GET",
        ("http", "cdn.test", 80, "/img/logo.png"),
        [(b"X-Quote", b'say "hi", it\'s'), (b"X-Path", b"C:\\temp")],
        status=304,
        response_headers=[(b"Content-Type", b"image/png")],
        response_content=b"\x89PNG\r\n\x1a\n",
        server=("10.0.0.9", 80),
        id=4,
    ),
    make_flow(
        "PUT",
        ("http", "upload.test", 80, "/file"),
        [(b"Content-Type", b"text/plain")],
        b"upload data",
        error=Error("connection refused", "connect-failed"),
        id=5,
    ),
    make_flow(
        "GET",
        ("http", "slow.test", 8080, "/slow?done=100%_of"),
        server=("10.0.0.7", 8080),
        id=6,
    ),
    make_flow(
        "GET",
        ("https", "fonts.test", 443, "/a.woff2"),
        [(b"X-Long", LONG.encode())],
        status=200,
        response_headers=[(b"Content-Type", b"font/woff2"), (b"Content-Encoding", b"deflate")],
        response_content=zlib.compress(b"wOF2 font bytes"),
        server=("10.0.0.8", 443),
        id=7,
    ),
    make_flow(
        "DELETE",
        ("http", "example.com", 80, "/api/v2/items/7"),
        [(b"X-Name", "CAFÉ".encode("latin-1"))],
        status=500,
        response_headers=[(b"Content-Type", b"text/CSS"), (b"Content-Encoding", b"br")],
        response_content=b"raw brotli-ish Needle bytes",
        server=("93.184.216.34", 80),
        id=8,
    ),
]
ALL = {flow.id for flow in FLOWS}


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    db = open_database()
    store(db, FLOWS)
    yield db
    db.close()


def case(expression: str, ids: Iterable[int]) -> object:
    return pytest.param(expression, set(ids), id=expression[:60])


OPERATORS = [
    case("~all", ALL),
    case("~http", ALL),
    case("~tcp", []),
    case("~q", [5, 6]),
    case("~s", [1, 2, 3, 4, 7, 8]),
    case("~e", [5]),
    # mitmproxy's asset types, anywhere in the response's Content-Type, in any case
    case("~a", [3, 4, 7, 8]),
    case("~c 404", [3]),
    case("~c 200", [1, 7]),
    case("~c 999", []),
    case("~d example", [1, 2, 8]),
    case(r"~d ^example\.com$", [1, 8]),
    case("~d EXAMPLE.COM", [1, 8]),
    case("~u /api/v[0-9]+/", [2, 8]),
    case("~u https://", [2, 7]),
    case("~u ''", ALL),
    case("~u :8080/", [6]),
    case("~m post", [2]),
    case('~m "^(GET|PUT)$"', [1, 3, 4, 5, 6, 7]),
    case("~h 'user-agent: curl'", [1]),
    case("~h ^server:", [1]),
    case("~h 'content-type: application/json'", [2]),
    case("~hq authorization", [2]),
    case("~hs authorization", []),
    case("~hs x-trace", [2]),
    case("~hq x-trace", []),
    case("~h trailer-only", []),  # trailers are not the head
    case("~t json", [2]),
    case("~tq json", [2]),
    case("~ts json", [2]),
    case("~tq text/plain", [5]),
    case("~ts text/plain", []),
    case("~t text", [1, 5, 8]),
    case("~tq text", [5]),  # Accept: text/html is not a content type
    case("~t ''", [1, 2, 3, 4, 5, 7, 8]),
    case("~b hello", [1]),
    case("~b Zoë", [2]),  # UTF-8 in the request, and in the gzip-decoded response
    case("~bq '\"id\": 42'", []),
    case("~bs '\"id\": 42'", [2]),
    case("~bs 'id.: 4'", [2]),
    case("~b font", [7]),  # deflate, decoded
    case("~b needle", [8]),  # br: not decoded here, the raw bytes are searched
    case("~bq upload", [5]),
    case("~b 'x*'", [1, 2, 4, 5, 7, 8]),  # any captured body that is not empty
    case("~bq .", [2, 5]),
    case("~bs ^.PNG..", [4]),  # DOTALL: `.` matches the \r and \n
    case("~src 127.0.0.1", [1, 4, 5, 6, 7, 8]),
    case(r"~src '^\[::1\]:50001$'", [2]),
    case("~src :40000", [3]),
    case("~dst 93.184", [1, 8]),
    case(r"~dst '^\[2001:db8::1\]:443$'", [2]),
    case("!~dst ''", [5]),  # no server address
]

GRAMMAR = [
    # precedence: ! binds tighter than &, & tighter than |
    case("~s & ~c 200 | ~e", [1, 5, 7]),
    case("~e | ~s & ~c 200", [1, 5, 7]),
    case("!~s & ~e", [5]),
    case("!(~s | ~e)", [6]),
    case("! ~q", [1, 2, 3, 4, 7, 8]),
    case("!!~q", [5, 6]),
    case("~c 200 | ~c 404 ~d cdn", [1, 3, 7]),
    # two filters side by side mean &
    case("~d example ~m post", [2]),
    case("~d example & ~m post | ~c 404", [2, 3]),
    case("~d example (~m post | ~c 404)", [2]),
    case("((~d example))&(~c 500)", [8]),
    case("~q ~e", [5]),
    case("~s !~e", [1, 2, 3, 4, 7, 8]),
    # a bare word or string is ~u
    case("app.js", [3]),
    case("'example.com'", [1, 8]),
    case('"~s"', []),
    case("api ~c 500", [8]),
    # quoting: \" and \' inside strings; other escapes reach the regex as written
    case(r'~h "say \"hi\""', [4]),
    case(r"~h 'it\'s'", [4]),
    case(r'~h "it\'s"', [4]),
    case(r"~u 'index\.html\?q=search'", [1]),
    case(r'~h "C:\\temp"', [4]),
    case(r"~h C:\\temp", [4]),
    case(r"~h 'C:\\t'", [4]),
    case(r"~u '/\d+$'", [8]),
    # LIKE's wildcards are only literal characters here
    case("~u 100%_", [6]),
    case("~u 1_0", []),
    case("~u 0%", [6]),
    # ASCII case folding only, as SQLite's lower() and LIKE
    case("~h 'x-name: café'", []),
    case("~h 'x-name: cafÉ'", [8]),
    case("~h 'X-NAME: CAF[É]'", [8]),
    case("~h 'caf[é]'", []),
    # longer than a LIKE pattern may be
    case(f"~h {LONG}", [7]),
    case(f"~h {LONG}z", []),
]


@pytest.mark.parametrize(("expression", "expected"), OPERATORS + GRAMMAR)
def test_python_and_sql_match_the_expected_flows(
    db: sqlite3.Connection, expression: str, expected: set[int]
) -> None:
    assert python_ids(FLOWS, expression) == expected
    assert sql_ids(db, expression) == expected


def test_tcp_rows_match_tcp_and_nothing_made_for_http(db: sqlite3.Connection) -> None:
    tcp = open_database()
    tcp.execute(
        "INSERT INTO flows (id, kind, started, client_host, client_port, server_host, "
        "server_port) VALUES (1, 'tcp', 0, '127.0.0.1', 5000, '10.0.0.1', 22)"
    )
    assert sql_ids(tcp, "~tcp") == {1}
    for expression in ["~http", "~q", "~s", "~a", "~c 200", "~u ''", "~h ''", "~b ''"]:
        assert sql_ids(tcp, expression) == set(), expression
    assert sql_ids(tcp, "~dst :22 & ~src 127") == {1}


SQL_SHAPES = [
    # (expression, text the SQL must contain, text it must not)
    ("~c 404", "f.status IS ?", "waylay_"),
    ("~d example", "f.host LIKE ?", "waylay_"),
    ("!~s | ~e", "f.status IS NOT NULL", "waylay_"),
    ("~q", "f.status IS NULL", "waylay_"),
    ("~h server", "EXISTS (SELECT 1 FROM heads", "waylay_"),
    ("~a", "f.response_content_type LIKE", "waylay_"),
    ("~u '/api/v[0-9]+'", "f.url LIKE ? ESCAPE '\\' AND waylay_regexp(?, f.url)", "body"),
    ("~u 'a|b'", "waylay_regexp(?, f.url)", "LIKE"),
    ("~bs x", "waylay_body_search", "waylay_regexp"),
]


@pytest.mark.parametrize(("expression", "present", "absent"), SQL_SHAPES)
def test_common_filters_compile_to_plain_sql(expression: str, present: str, absent: str) -> None:
    sql, _ = parse_filter(expression).to_sql()
    assert present in sql
    assert absent not in sql


def test_the_parameters_follow_the_placeholders() -> None:
    sql, params = parse_filter("~c 404 | ~u 'v[0-9]' !~d ex_ample").to_sql()
    assert sql.count("?") == len(params)
    assert params == [404, "%v%", "v[0-9]", "%ex\\_ample%"]


@pytest.mark.parametrize(
    ("expression", "uses_bodies"),
    [("~b x", True), ("~s | !(~bq x)", True), ("~bs x ~c 200", True), ("~h x | ~u y", False)],
)
def test_uses_bodies_says_whether_bodies_are_read(expression: str, uses_bodies: bool) -> None:
    assert parse_filter(expression).uses_bodies is uses_bodies


def test_a_filter_keeps_its_text_and_is_frozen() -> None:
    flt = parse_filter("~d example")
    assert flt.text == "~d example"
    with pytest.raises(AttributeError):
        flt.text = "~all"  # type: ignore[misc]


ERRORS = [
    # (expression, reason, column)
    ("", "empty filter expression", 1),
    ("   ", "empty filter expression", 1),
    ("~x foo", "unknown operator '~x'", 1),
    ("~s & ~zz", "unknown operator '~zz'", 6),
    ("~", "unknown operator '~'", 1),
    ("~c404", "unknown operator '~c404'", 1),
    ("~s!~e", "unknown operator '~s!~e'", 1),  # as in mitmproxy: an operator ends at a space
    ("~d", "'~d' needs a regex", 3),
    ("~d  ", "'~d' needs a regex", 3),
    ("(~d)", "'~d' needs a regex", 4),
    ("~d ~s", "'~d' needs a regex", 4),
    ("~c", "'~c' needs a status code", 3),
    ("~c abc", "'~c' needs a status code (up to 3 digits), not 'abc'", 4),
    ("~c 1000", "'~c' needs a status code (up to 3 digits), not '1000'", 4),
    ("~c -1", "'~c' needs a status code (up to 3 digits), not '-1'", 4),
    ("~c ٤٠٤", "'~c' needs a status code", 4),  # Arabic-Indic digits are not a status
    ("(~s", "unclosed '('", 1),
    ("((~s) | ~e", "unclosed '('", 1),
    ("~s)", "unmatched ')'", 3),
    (")", "unmatched ')'", 1),
    ("()", "expected a filter before ')'", 2),
    ("~s &", "expected a filter at the end", 5),
    ("~s | | ~e", "expected a filter before '|'", 6),
    ("& ~s", "expected a filter before '&'", 1),
    ("!", "expected a filter at the end", 2),
    ('~u "abc', 'unterminated string: no closing "', 4),
    ("~u 'ab\\'", "unterminated string: no closing '", 4),
    ("~u [a-", "bad regex: unterminated character set", 4),
    ("~u 'ab(c'", "bad regex: missing ), unterminated subpattern", 7),
    ('~u "a\\"(b"', "bad regex: missing ), unterminated subpattern", 8),
    ("~d a{2,1}", "bad regex: min repeat greater than max repeat", 6),
    ("~u '(?u)x'", "bad regex: ASCII and UNICODE flags are incompatible", 4),
    ("~u x*?+*", "bad regex: multiple repeat", 7),
    ("~u a{99999999999}", "bad regex: the repetition number is too large", 4),
    ("~u '" + "(" * 1000 + ")" * 1000 + "'", "bad regex: nested too deeply", 4),
    ("!" * 17 + "~s", "nested more than 16 deep", 17),
    ("(" * 16 + "!~s" + ")" * 16, "nested more than 16 deep", 17),
    ("~s " * 1001, "more than 1000 filters", 3001),
    ("~b '\\u00e9'", "bad regex for bytes (bodies): bad escape \\u", 5),
    ("~u '\ud800'", "not valid Unicode", 5),
]


@pytest.mark.parametrize(("expression", "reason", "column"), ERRORS)
def test_errors_name_the_reason_and_the_column(expression: str, reason: str, column: int) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(expression)
    error = caught.value
    assert error.reason.startswith(reason)
    assert (error.expression, error.column) == (expression, column)
    assert isinstance(error, ValueError)


def test_an_error_reads_as_one_line_and_points_with_a_caret() -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter("~x foo")
    assert str(caught.value) == "~x foo: unknown operator '~x' at column 1"
    with pytest.raises(FilterError) as caught:
        parse_filter("~s &\t~zz")
    assert caught.value.pointer() == "~s &\t~zz\n    \t^"


@pytest.mark.parametrize(
    ("regex", "needle"),
    [
        ("/api/v[0-9]+", "/api/v"),
        ("a|b", ""),
        ("(foo)bar", "bar"),
        ("(?:ab|cd)Ef", "ef"),
        ("(?i)abc", ""),
        ("x(?s:abc)", ""),  # inline flags: no prefilter at all
        (r"\.JS$", ".js"),
        (r"[abc\]]def", "def"),
        ("[]x]yz", "yz"),
        ("a{2}bc", "bc"),
        ("a{,3}xyz", "xyz"),
        ("ab{x}", "a"),
        (r"\d+xx", "xx"),
        ("abc*def", "def"),
        ("ab?", "a"),
        ("ab+", "ab"),
        ("ab+c", "ab"),
        ("ab+?cd", "ab"),
        ("ÉCOLE|x", ""),
        ("ÉCOLE.x", "École"),
        (r"a\tb", "a"),
        ("^$", ""),
    ],
)
def test_the_prefilter_takes_a_literal_every_match_contains(regex: str, needle: str) -> None:
    assert _required_literal(regex) == needle


@pytest.mark.parametrize(
    ("raw", "encoding", "decoded"),
    [
        (gzip.compress(b"abc"), "gzip", b"abc"),
        (gzip.compress(b"abc"), " X-GZIP ", b"abc"),
        (gzip.compress(b"ab") + gzip.compress(b"c"), "gzip", b"abc"),  # two members
        (gzip.compress(b"abc")[:-8], "gzip", b"abc"),  # stored truncated: what there is
        (gzip.compress(b"abc") + b"junk", "gzip", b"abc"),
        (zlib.compress(b"abc"), "deflate", b"abc"),
        (zlib.compress(b"abc")[2:], "deflate", b"abc"),  # raw deflate, as some servers send
        (gzip.compress(zlib.compress(b"abc")), "deflate, gzip", b"abc"),
        (b"abc", "identity", b"abc"),
        (b"abc", None, b"abc"),
        (b"abc", "gzip", b"abc"),  # not gzip after all: the raw bytes
        (b"abc", "deflate", b"abc"),
        (gzip.compress(b"abc"), "br, gzip", gzip.compress(b"abc")),  # br unknown: raw
    ],
)
def test_bodies_are_decoded_when_the_coding_is_known(
    raw: bytes, encoding: str | None, decoded: bytes
) -> None:
    assert decoded_body(raw, encoding) == decoded


def test_decoding_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 100_000)
    assert decoded_body(bomb, "gzip", limit=1000) == b"\0" * 1000
    assert decoded_body(zlib.compress(b"\0" * 100_000), "deflate", limit=10) == b"\0" * 10


def test_a_body_match_spans_chunk_boundaries() -> None:
    body = b"0123456789" * 10
    flow = make_flow(
        "POST", ("http", "a.test", 80, "/"), [], body, status=204, response_content=b"", id=1
    )
    for size in (1, 3, 7, 64, 1000):
        db = open_database()
        store(db, [flow], [size])
        assert sql_ids(db, "~bq 89012345678") == {1}
        assert sql_ids(db, "~bq '^0123.*6789$'") == {1}
        assert sql_ids(db, "~bs .") == set()


@pytest.mark.parametrize(
    "expression",
    [
        "!" * 15 + "(" + " ".join(["~b x"] * 999) + ")",
        "(" * 14 + "!" + "(~bs x | ~a ~hs y)" * 333 + ")" * 14,
        "(" * 8 + "!(" * 4 + " | ".join(["~b x & ~hs y"] * 500) + ")" * 12,
    ],
    ids=["nots", "groups", "ors"],
)
def test_filters_at_the_limits_still_run_in_sqlite(db: sqlite3.Connection, expression: str) -> None:
    flt = parse_filter(expression)
    sql, params = flt.to_sql()
    db.execute(f"SELECT count(*) FROM flows AS f WHERE {sql}", params).fetchone()


def _tcp_flow() -> Flow:
    request = Request("", "tcp", "198.18.2.2", 22, "", "", Headers())
    return Flow(("198.18.1.2", 40000), request, server_address=("198.18.2.2", 22), kind="tcp")


@pytest.mark.parametrize(
    ("expression", "matches"),
    [("~tcp", True), ("~http", False), ("~q", False), ("~s", False), ("~all", True),
     ("~d 198.18.2.2", True), ("~u ^tcp://", True), ("~dst :22", True), ("!~tcp", False)],
)  # fmt: skip
def test_a_live_tcp_flow_and_its_stored_row_agree(expression: str, matches: bool) -> None:
    flow = _tcp_flow()
    assert parse_filter(expression).matches(flow) is matches
    db = open_database()
    db.execute(INSERT_FLOW, flow_row(flow, 1))
    assert sql_ids(db, expression) == ({1} if matches else set())
