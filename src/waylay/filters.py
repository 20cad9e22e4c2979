"""The filter language: `~d example.com & !~c 200`, run on live flows or compiled to SQL.

Theory of operation
-------------------
The operators are mitmproxy's, so its users need not learn new ones. An expression is
tokenized and parsed by hand (recursive descent, precedence ``!`` > ``&`` > ``|``, two filters
side by side meaning ``&``) into a tree of frozen nodes, built once. Each node answers twice:
``matches`` on a live ``Flow``, and ``sql`` as a boolean expression over the flow store's
``flows AS f`` row (store/schema.py). The two must agree on every flow, which a property test
checks; that is why both sides read the same things. The content types are the first
Content-Type field of each head (the ``*_content_type`` columns), header and text values are
Latin-1 decoded as rows.py stores them, and the body matcher is one function both call.

Regexes are Python's, with IGNORECASE | ASCII: ASCII so that case folding is exactly that of
SQLite's LIKE and ``lower()``, which only fold A-Z. That is what makes the fast paths correct:
a plain literal becomes ``col LIKE '%literal%'``, which SQLite runs in C, and a real regex is
tried in Python (``waylay_regexp``) only on rows that contain its longest required literal.
Only the body operators read bodies, in Python, a flow at a time. Every SQL atom is 0 or 1,
never NULL, so ``NOT`` means what it says.

Errors are ``FilterError`` with the column they point at. Owns: the language, its two
evaluations, the SQL functions they need. Does not own: opening databases, choosing flows to
show, IO of any kind.

Limits: a compressed body is decoded up to ``MAX_DECODED_BODY`` bytes and searched that far;
``parse_filter`` bounds nesting and length so that SQLite's parser accepts the SQL.
"""

from __future__ import annotations

import re
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from waylay.flow import Flow
from waylay.http1.head import Fields, header_value
from waylay.store.schema import REQUEST_BODY, REQUEST_HEADERS, RESPONSE_BODY, RESPONSE_HEADERS

if TYPE_CHECKING:
    import sqlite3

FLAGS = re.IGNORECASE | re.ASCII
# Bodies span lines: `.` crosses them, as in mitmproxy's ~b.
BODY_FLAGS = FLAGS | re.DOTALL
MAX_DECODED_BODY = 64 * 1024 * 1024
# SQLite refuses LIKE patterns over SQLITE_LIMIT_LIKE_PATTERN_LENGTH (50,000 bytes by default).
MAX_LIKE_PATTERN = 10_000


class FilterError(ValueError):
    """An expression that is not a filter: why, and the 1-based column it went wrong at."""

    def __init__(self, reason: str, expression: str, column: int) -> None:
        super().__init__(f"{expression}: {reason} at column {column}")
        self.reason = reason
        self.expression = expression
        self.column = column

    def pointer(self) -> str:
        """The expression and, on the line below, a caret under the column."""
        # Tabs stay tabs so the caret lines up whatever the terminal's tab width.
        pad = "".join("\t" if ch == "\t" else " " for ch in self.expression[: self.column - 1])
        return f"{self.expression}\n{pad}^"


# --- regexes ------------------------------------------------------------------------------------

_METACHARACTERS = frozenset(".^$*+?{}[]\\|()")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    """SQLite's lower(): A-Z only (str.lower would fold É too, and disagree with SQL)."""
    return text.translate(_ASCII_LOWER)


@lru_cache(maxsize=256)
def _text_regex(source: str) -> re.Pattern[str]:
    with warnings.catch_warnings():
        # re's FutureWarnings ("possible nested set") are about the user's pattern, which
        # still compiles: they must not reach the CLI's stderr as Python warnings.
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(source, FLAGS)


@lru_cache(maxsize=64)
def _body_regex(source: str) -> re.Pattern[bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return re.compile(source.encode("utf-8"), BODY_FLAGS)


def _required_literal(source: str) -> str:
    """The longest run of characters that every match of ``source`` contains ('' if unsure).

    Conservative by construction: a top-level ``|`` or an inline flag gives up, groups and
    classes end a run, a quantifier other than + takes back the character it applies to, and
    only escaped punctuation counts as a character. What is returned is ASCII-lowercased, as
    SQLite's LIKE and lower() compare.
    """
    runs: list[str] = []
    run: list[str] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "\\":
            escaped = source[i + 1 : i + 2]
            i += 2
            if escaped and escaped.isascii() and not escaped.isalnum() and escaped.isprintable():
                run.append(escaped)
                continue
        elif ch in "*+?{":
            if run and ch != "+":  # x+ still needs one x, but not two: the run ends after it
                run.pop()
            i += 1
            if ch == "{":
                end = source.find("}", i)
                if end != -1 and re.fullmatch(r"[0-9]*,?[0-9]*", source[i:end]):
                    i = end + 1
        elif ch == "|" or (source.startswith("(?", i) and source[i + 2 : i + 3] not in ":=!<P"):
            return ""
        elif ch == "[":
            i = _skip_class(source, i)
        elif ch == "(":
            i = _skip_group(source, i)
            if i < 0:
                return ""
        elif ch in _METACHARACTERS or not ch.isprintable():
            i += 1
        else:
            run.append(ch)
            i += 1
            continue
        runs.append("".join(run))
        run = []
    runs.append("".join(run))
    return _ascii_lower(max(runs, key=len))


def _skip_class(source: str, i: int) -> int:
    """The index after the character class that opens at ``i``."""
    i += 1
    if source.startswith("^", i):
        i += 1
    if source.startswith("]", i):
        i += 1
    while i < len(source) and source[i] != "]":
        i += 2 if source[i] == "\\" else 1
    return i + 1


def _skip_group(source: str, i: int) -> int:
    """The index after the group that opens at ``i``; -1 if it holds an inline flag."""
    depth = 0
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _skip_class(source, i)
            continue
        if ch == "(":
            if source.startswith("(?", i) and source[i + 2 : i + 3] not in ":=!<P":
                return -1
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


@dataclass(frozen=True, slots=True)
class _Regex:
    """A regex argument: its source, compiled, and what SQL can test without Python."""

    source: str
    compiled: re.Pattern[str] = field(repr=False)
    literal: bool  # no metacharacters: LIKE alone decides
    needle: str  # ASCII-lowercased; every match contains it

    def search(self, value: str | None) -> bool:
        return value is not None and self.compiled.search(value) is not None

    def sql(self, value: str, params: list[object], *, nullable: bool = True) -> str:
        """A 0/1 test of the SQL text expression ``value``."""
        tests = []
        if nullable:
            tests.append(f"{value} IS NOT NULL")
        if self.needle:
            tests.append(_contains(value, self.needle, params))
        if not self.literal:
            params.append(self.source)
            tests.append(f"waylay_regexp(?, {value})")
        return f"({' AND '.join(tests or ['1'])})"


def _contains(value: str, needle: str, params: list[object]) -> str:
    """SQL for: the text ``value`` contains ``needle``, ASCII letters in either case.

    LIKE folds exactly A-Z (unless a connection sets the deprecated case_sensitive_like) and
    runs twice as fast as instr(lower()); a pattern too long for LIKE's limit gets instr.
    """
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if len(pattern.encode("utf-8")) > MAX_LIKE_PATTERN:
        params.append(_ascii_lower(needle))
        return f"instr(lower({value}), ?) > 0"
    params.append(pattern)
    return f"{value} LIKE ? ESCAPE '\\'"


def _regex(token: _Token, expression: str, *, body: bool) -> _Regex:
    source, offsets = token.text, token.offsets
    surrogate = next((i for i, ch in enumerate(source) if "\ud800" <= ch <= "\udfff"), None)
    if surrogate is not None:  # half a UTF-16 pair (undecodable bytes in argv): no text has it
        raise FilterError("not valid Unicode", expression, offsets[surrogate])
    for compile_, what in ((_text_regex, "regex"), (_body_regex, "regex for bytes (bodies)")):
        if compile_ is _body_regex and not body:
            break
        try:
            compile_(source)
        except re.error as exc:
            position = len(source) if exc.pos is None else min(exc.pos, len(source))
            column = offsets[position] if position < len(offsets) else token.end
            raise FilterError(f"bad {what}: {exc.msg}", expression, column) from None
        # re says some things without a position: flags that clash, numbers too large, and
        # groups nested deeper than its parser's recursion.
        except (ValueError, OverflowError) as exc:
            raise FilterError(f"bad {what}: {exc}", expression, token.column) from None
        except RecursionError:
            raise FilterError(f"bad {what}: nested too deeply", expression, token.column) from None
    literal = not any(ch in _METACHARACTERS for ch in source) and source.isprintable()
    needle = _ascii_lower(source) if literal else _required_literal(source)
    return _Regex(source, _text_regex(source), literal, needle)


# --- what the operators look at -----------------------------------------------------------------


def _header_text(headers: Fields, name: bytes) -> str | None:
    value = header_value(headers, name)
    return None if value is None else value.decode("latin-1")


def _address(address: tuple[str, int] | None) -> str | None:
    if address is None:
        return None
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _address_sql(host: str, port: str) -> str:
    # NULL when there is no address: NULL || anything is NULL.
    bracketed = f"CASE WHEN instr({host}, ':') > 0 THEN '[' || {host} || ']' ELSE {host} END"
    return f"({bracketed} || ':' || {port})"


@dataclass(frozen=True, slots=True)
class _Field:
    """A text a regex operator searches: from a live flow, and as an SQL expression over f."""

    value: Callable[[Flow], str | None]
    sql: str
    nullable: bool = True


_HOST = _Field(lambda flow: flow.request.host, "f.host")
_URL = _Field(lambda flow: flow.request.url, "f.url")
_METHOD = _Field(lambda flow: flow.request.method, "f.method")
_REQUEST_TYPE = _Field(
    lambda flow: _header_text(flow.request.headers.fields, b"content-type"),
    "f.request_content_type",
)
_RESPONSE_TYPE = _Field(
    lambda flow: (
        _header_text(flow.response.headers.fields, b"content-type") if flow.response else None
    ),
    "f.response_content_type",
)
_CLIENT = _Field(
    lambda flow: _address(flow.client_address),
    _address_sql("f.client_host", "f.client_port"),
    nullable=False,
)
_SERVER = _Field(
    lambda flow: _address(flow.server_address), _address_sql("f.server_host", "f.server_port")
)


# --- bodies -------------------------------------------------------------------------------------


def _gunzip(data: bytes, limit: int) -> bytes:
    # RFC 1952 §2.2: a gzip file is members one after another; what follows them is ignored.
    if data[:2] != _GZIP_MAGIC:
        raise zlib.error("not gzip")
    out: list[bytes] = []
    size = 0
    while data[:2] == _GZIP_MAGIC and size < limit:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        piece = decoder.decompress(data, limit - size)
        out.append(piece)
        size += len(piece)
        data = decoder.unused_data
    return b"".join(out)


def _inflate(data: bytes, limit: int) -> bytes:
    # RFC 9110 §8.4.1.2 says zlib-wrapped; some servers send raw deflate, so try both.
    try:
        return zlib.decompressobj(zlib.MAX_WBITS).decompress(data, limit)
    except zlib.error:
        decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        out = decoder.decompress(data, limit)
    # Raw deflate has no header to check: bytes that decode to nothing were not deflate.
    if not out and not decoder.eof:
        raise zlib.error("not deflate")
    return out


_GZIP_MAGIC = b"\x1f\x8b"
_DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "identity": lambda data, limit: data,
    "gzip": _gunzip,
    "x-gzip": _gunzip,  # RFC 9110 §8.4.1.3
    "deflate": _inflate,
}


def decoded_body(raw: bytes, encoding: str | None, *, limit: int = MAX_DECODED_BODY) -> bytes:
    """``raw`` with its Content-Encoding undone, or as it is when that cannot be done.

    Codings are undone last first (RFC 9110 §8.4). A coding other than gzip, deflate and
    identity, or data that does not decode, leaves the raw bytes; a body cut short (stored
    truncated) gives what it decodes to so far; output stops at ``limit`` bytes.
    """
    codings = [c for c in (_ascii_lower(c.strip()) for c in (encoding or "").split(",")) if c]
    if not all(coding in _DECODERS for coding in codings):
        return raw
    data = raw
    try:
        for coding in reversed(codings):
            data = _DECODERS[coding](data, limit)
    except zlib.error:
        return raw
    return data


def _body_matches(regex: re.Pattern[bytes], raw: bytes | None, encoding: str | None) -> bool:
    # An empty body never matches, as in mitmproxy: the store keeps no chunk for it, so SQL
    # cannot tell it from a body that was not captured.
    return bool(raw) and regex.search(decoded_body(raw or b"", encoding)) is not None


class _BodySearch:
    """SQL aggregate waylay_body_search(pattern, content_encoding, seq, data) -> 0/1.

    Sees one body's chunks, in any order: they are put in seq order and joined, so a match
    across a chunk boundary is found. A regex needs the whole text, so the body is held.
    """

    def __init__(self) -> None:
        self.pattern = ""
        self.encoding: str | None = None
        self.chunks: list[tuple[int, bytes]] = []

    def step(self, pattern: str, encoding: str | None, seq: int, data: bytes) -> None:
        self.pattern, self.encoding = pattern, encoding
        self.chunks.append((seq, data))

    def finalize(self) -> int:
        self.chunks.sort(key=lambda chunk: chunk[0])
        raw = b"".join(data for _, data in self.chunks)
        return int(_body_matches(_body_regex(self.pattern), raw, self.encoding))


def _sql_regexp(pattern: str, value: str | None) -> int:
    return int(value is not None and _text_regex(pattern).search(value) is not None)


def register_functions(db: sqlite3.Connection) -> None:
    """Define on ``db`` the SQL functions that ``Filter.to_sql`` expressions call."""
    db.create_function("waylay_regexp", 2, _sql_regexp, deterministic=True)
    # typeshed knows only one-argument aggregates.
    db.create_aggregate("waylay_body_search", 4, cast("type[Any]", _BodySearch))


# --- the tree -----------------------------------------------------------------------------------


class _Node(Protocol):
    def matches(self, flow: Flow) -> bool: ...

    def sql(self, params: list[object]) -> str: ...

    @property
    def uses_bodies(self) -> bool: ...


def _balanced(operator: str, terms: list[str]) -> str:
    """``terms`` joined by ``operator`` as a balanced tree: SQLite parses `a AND b AND c ...`
    into a chain as deep as it is long, and refuses expressions deeper than 1000."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({_balanced(operator, terms[:half])} {operator} {_balanced(operator, terms[half:])})"


@dataclass(frozen=True, slots=True)
class _Not:
    node: _Node

    def matches(self, flow: Flow) -> bool:
        return not self.node.matches(flow)

    def sql(self, params: list[object]) -> str:
        return f"(NOT {self.node.sql(params)})"

    @property
    def uses_bodies(self) -> bool:
        return self.node.uses_bodies


@dataclass(frozen=True, slots=True)
class _All:
    nodes: tuple[_Node, ...]

    def matches(self, flow: Flow) -> bool:
        return all(node.matches(flow) for node in self.nodes)

    def sql(self, params: list[object]) -> str:
        return _balanced("AND", [node.sql(params) for node in self.nodes])

    @property
    def uses_bodies(self) -> bool:
        return any(node.uses_bodies for node in self.nodes)


@dataclass(frozen=True, slots=True)
class _Any:
    nodes: tuple[_Node, ...]

    def matches(self, flow: Flow) -> bool:
        return any(node.matches(flow) for node in self.nodes)

    def sql(self, params: list[object]) -> str:
        return _balanced("OR", [node.sql(params) for node in self.nodes])

    @property
    def uses_bodies(self) -> bool:
        return any(node.uses_bodies for node in self.nodes)


@dataclass(frozen=True, slots=True)
class _Test:
    """A test of one flow's own columns: ~q, ~s, ~e, ~http, ~tcp, ~all."""

    test: Callable[[Flow], bool]
    condition: str
    uses_bodies = False

    def matches(self, flow: Flow) -> bool:
        return self.test(flow)

    def sql(self, params: list[object]) -> str:
        return f"({self.condition})"


@dataclass(frozen=True, slots=True)
class _Status:
    code: int
    uses_bodies = False

    def matches(self, flow: Flow) -> bool:
        return flow.response is not None and flow.response.status_code == self.code

    def sql(self, params: list[object]) -> str:
        params.append(self.code)
        return "(f.status IS ?)"  # IS, not =: false rather than NULL without a response


@dataclass(frozen=True, slots=True)
class _Search:
    """A regex over one or more texts of the flow (~d, ~u, ~m, ~t, ~src, ~dst)."""

    fields: tuple[_Field, ...]
    regex: _Regex
    uses_bodies = False

    def matches(self, flow: Flow) -> bool:
        return any(self.regex.search(field.value(flow)) for field in self.fields)

    def sql(self, params: list[object]) -> str:
        tests = [self.regex.sql(f.sql, params, nullable=f.nullable) for f in self.fields]
        return tests[0] if len(tests) == 1 else f"({' OR '.join(tests)})"


# mitmproxy's asset types, searched in the response's Content-Type (so `image/` is any image).
ASSET_TYPES = (
    "text/javascript",
    "application/x-javascript",
    "application/javascript",
    "text/css",
    "image/",
    "font/",
    "application/font",
)


@dataclass(frozen=True, slots=True)
class _Asset:
    uses_bodies = False

    def matches(self, flow: Flow) -> bool:
        value = _RESPONSE_TYPE.value(flow)
        return value is not None and any(t in _ascii_lower(value) for t in ASSET_TYPES)

    def sql(self, params: list[object]) -> str:
        column = "f.response_content_type"
        tests = " OR ".join(_contains(column, asset, params) for asset in ASSET_TYPES)
        return f"(f.response_content_type IS NOT NULL AND ({tests}))"


@dataclass(frozen=True, slots=True)
class _HeaderSearch:
    """A regex over `name: value` lines of the request's or the response's head (not trailers)."""

    parts: tuple[int, ...]
    regex: _Regex
    uses_bodies = False

    def matches(self, flow: Flow) -> bool:
        heads = {REQUEST_HEADERS: flow.request.headers.fields}
        if flow.response is not None:
            heads[RESPONSE_HEADERS] = flow.response.headers.fields
        return any(
            self.regex.search(f"{name.decode('latin-1')}: {value.decode('latin-1')}")
            for part in self.parts
            for name, value in heads.get(part, ())
        )

    def sql(self, params: list[object]) -> str:
        parts = ", ".join(str(part) for part in self.parts)
        line = "(json_extract(j.value, '$[0]') || ': ' || json_extract(j.value, '$[1]'))"
        test = self.regex.sql(line, params, nullable=False)
        return (
            f"EXISTS (SELECT 1 FROM heads AS h, json_each(h.fields) AS j "
            f"WHERE h.flow = f.id AND h.part IN ({parts}) AND {test})"
        )


@dataclass(frozen=True, slots=True)
class _BodyPart:
    body: int  # the `bodies.part`
    head: int  # the `heads.part` its Content-Encoding is in


_REQUEST = _BodyPart(REQUEST_BODY, REQUEST_HEADERS)
_RESPONSE = _BodyPart(RESPONSE_BODY, RESPONSE_HEADERS)


@dataclass(frozen=True, slots=True)
class _BodyRegexSearch:
    """A regex over the request's or the response's body as captured, decoded (~b, ~bq, ~bs)."""

    parts: tuple[_BodyPart, ...]
    regex: _Regex
    uses_bodies = True

    def matches(self, flow: Flow) -> bool:
        compiled = _body_regex(self.regex.source)
        messages = {REQUEST_BODY: flow.request, RESPONSE_BODY: flow.response}
        for part in self.parts:
            message = messages[part.body]
            if message is not None and _body_matches(
                compiled,
                message.raw_content,
                _header_text(message.headers.fields, b"content-encoding"),
            ):
                return True
        return False

    def sql(self, params: list[object]) -> str:
        tests = []
        for part in self.parts:
            params.append(self.regex.source)
            encoding = (
                "(SELECT json_extract(j.value, '$[1]') FROM heads AS h, json_each(h.fields) AS j "
                f"WHERE h.flow = f.id AND h.part = {part.head} "
                "AND lower(json_extract(j.value, '$[0]')) = 'content-encoding' "
                "ORDER BY j.key LIMIT 1)"
            )
            tests.append(
                f"coalesce((SELECT waylay_body_search(?, {encoding}, b.seq, b.data) "
                f"FROM bodies AS b WHERE b.flow = f.id AND b.part = {part.body}), 0)"
            )
        return f"({' OR '.join(tests)})"


# --- operators ----------------------------------------------------------------------------------

_Argument = Literal["none", "regex", "code"]


@dataclass(frozen=True, slots=True)
class _Operator:
    argument: _Argument
    build: Callable[..., _Node]
    body: bool = False  # the regex is also used on bytes: it must encode


def _search(*fields: _Field) -> Callable[[_Regex], _Node]:
    return lambda regex: _Search(fields, regex)


def _headers(*parts: int) -> Callable[[_Regex], _Node]:
    return lambda regex: _HeaderSearch(parts, regex)


def _bodies(*parts: _BodyPart) -> Callable[[_Regex], _Node]:
    return lambda regex: _BodyRegexSearch(parts, regex)


def _test(test: Callable[[Flow], bool], condition: str) -> Callable[[], _Node]:
    return lambda: _Test(test, condition)


_OPERATORS: dict[str, _Operator] = {
    "~all": _Operator("none", _test(lambda flow: True, "1")),
    "~http": _Operator("none", _test(lambda flow: flow.kind == "http", "f.kind = 'http'")),
    "~tcp": _Operator("none", _test(lambda flow: flow.kind == "tcp", "f.kind = 'tcp'")),
    "~q": _Operator(
        "none",
        _test(
            lambda flow: flow.kind == "http" and flow.response is None,
            "f.kind = 'http' AND f.status IS NULL",
        ),
    ),
    "~s": _Operator("none", _test(lambda flow: flow.response is not None, "f.status IS NOT NULL")),
    "~e": _Operator("none", _test(lambda flow: flow.error is not None, "f.error IS NOT NULL")),
    "~a": _Operator("none", _Asset),
    "~c": _Operator("code", _Status),
    "~d": _Operator("regex", _search(_HOST)),
    "~u": _Operator("regex", _search(_URL)),
    "~m": _Operator("regex", _search(_METHOD)),
    "~t": _Operator("regex", _search(_REQUEST_TYPE, _RESPONSE_TYPE)),
    "~tq": _Operator("regex", _search(_REQUEST_TYPE)),
    "~ts": _Operator("regex", _search(_RESPONSE_TYPE)),
    "~src": _Operator("regex", _search(_CLIENT)),
    "~dst": _Operator("regex", _search(_SERVER)),
    "~h": _Operator("regex", _headers(REQUEST_HEADERS, RESPONSE_HEADERS)),
    "~hq": _Operator("regex", _headers(REQUEST_HEADERS)),
    "~hs": _Operator("regex", _headers(RESPONSE_HEADERS)),
    "~b": _Operator("regex", _bodies(_REQUEST, _RESPONSE), body=True),
    "~bq": _Operator("regex", _bodies(_REQUEST), body=True),
    "~bs": _Operator("regex", _bodies(_RESPONSE), body=True),
}


# --- tokens -------------------------------------------------------------------------------------

_TokenKind = Literal["(", ")", "!", "&", "|", "operator", "word"]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _TokenKind
    text: str  # a quoted string without its quotes and escapes
    column: int
    offsets: tuple[int, ...] = ()  # the column each character of text came from
    end: int = 0  # the column after the token


_PUNCTUATION: dict[str, _TokenKind] = {"(": "(", ")": ")", "!": "!", "&": "&", "|": "|"}
# A word runs to the next space, parenthesis, & or |; a quote opens a string only at its start.
_WORD_END = frozenset("()&|")


def _tokens(text: str) -> list[_Token]:
    tokens = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _PUNCTUATION:
            tokens.append(_Token(_PUNCTUATION[ch], ch, i + 1, end=i + 2))
            i += 1
        elif ch in "'\"":
            token, i = _quoted(text, i)
            tokens.append(token)
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _WORD_END:
                i += 1
            word = text[start:i]
            kind: _TokenKind = "operator" if word.startswith("~") else "word"
            tokens.append(_Token(kind, word, start + 1, tuple(range(start + 1, i + 1)), i + 1))
    return tokens


def _quoted(text: str, start: int) -> tuple[_Token, int]:
    """The string whose quote is at ``start``. Inside, a backslash before the quote stands for
    the quote; any other backslash stays, with the character after it, so regex escapes
    arrive as written."""
    quote = text[start]
    chars: list[str] = []
    offsets: list[int] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return _Token("word", "".join(chars), start + 1, tuple(offsets), i + 1), i + 1
        if ch == "\\" and i + 1 < len(text):
            if text[i + 1] == quote:
                chars.append(quote)
                offsets.append(i + 1)
                i += 2
                continue
            chars += [ch, text[i + 1]]
            offsets += [i + 1, i + 2]
            i += 2
            continue
        chars.append(ch)
        offsets.append(i + 1)
        i += 1
    raise FilterError(f"unterminated string: no closing {quote}", text, start + 1)


# --- the parser ---------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over:

    or    = and *( "|" and )
    and   = not *( [ "&" ] not )        ; two filters side by side mean "&"
    not   = "!" not / "(" or ")" / operator [ argument ] / argument
    """

    def __init__(self, text: str, *, max_depth: int, max_filters: int) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0
        self.depth = 0  # open parentheses
        self.nesting = 0  # open parentheses and !
        self.filters = 0
        self.max_depth = max_depth
        self.max_filters = max_filters

    def error(self, reason: str, column: int) -> FilterError:
        return FilterError(reason, self.text, column)

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def end_column(self) -> int:
        return len(self.text.rstrip()) + 1

    def parse(self) -> _Node:
        if not self.tokens:
            raise self.error("empty filter expression", 1)
        node = self.any()
        token = self.peek()
        if token is not None:  # only a ")" can be left: every other token continues an "and"
            raise self.error(f"unmatched '{token.text}'", token.column)
        return node

    def any(self) -> _Node:
        nodes = [self.all()]
        while (token := self.peek()) is not None and token.kind == "|":
            self.position += 1
            nodes.append(self.all())
        return nodes[0] if len(nodes) == 1 else _Any(tuple(nodes))

    def all(self) -> _Node:
        nodes = [self.unary()]
        while (token := self.peek()) is not None and token.kind not in ("|", ")"):
            if token.kind == "&":
                self.position += 1
            nodes.append(self.unary())
        return nodes[0] if len(nodes) == 1 else _All(tuple(nodes))

    def unary(self) -> _Node:
        token = self.peek()
        if token is None:
            raise self.error("expected a filter at the end", self.end_column())
        self.position += 1
        if token.kind in ("!", "("):
            self.nesting += 1
            if self.nesting > self.max_depth:
                raise self.error(f"nested more than {self.max_depth} deep", token.column)
            node = self.not_(token) if token.kind == "!" else self.group(token)
            self.nesting -= 1
            return node
        if token.kind in ("operator", "word"):
            self.filters += 1
            if self.filters > self.max_filters:
                raise self.error(f"more than {self.max_filters} filters", token.column)
            if token.kind == "operator":
                return self.operator(token)
            return _Search((_URL,), _regex(token, self.text, body=False))
        if token.kind == ")" and self.depth == 0:
            raise self.error("unmatched ')'", token.column)
        raise self.error(f"expected a filter before '{token.text}'", token.column)

    def not_(self, token: _Token) -> _Node:
        return _Not(self.unary())

    def group(self, token: _Token) -> _Node:
        self.depth += 1
        node = self.any()
        if self.peek() is None:
            raise self.error("unclosed '('", token.column)
        self.position += 1
        self.depth -= 1
        return node

    def operator(self, token: _Token) -> _Node:
        operator = _OPERATORS.get(token.text)
        if operator is None:
            raise self.error(f"unknown operator '{token.text}'", token.column)
        if operator.argument == "none":
            return operator.build()
        argument = self.peek()
        if argument is None or argument.kind != "word":
            what = "a regex" if operator.argument == "regex" else "a status code"
            column = argument.column if argument else self.end_column()
            raise self.error(f"'{token.text}' needs {what}", column)
        self.position += 1
        if operator.argument == "code":
            if not re.fullmatch(r"[0-9]{1,3}", argument.text):
                raise self.error(
                    f"'{token.text}' needs a status code (up to 3 digits), not {argument.text!r}",
                    argument.column,
                )
            return operator.build(int(argument.text))
        return operator.build(_regex(argument, self.text, body=operator.body))


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed filter expression: matches live flows, compiles to SQL for stored ones."""

    text: str
    tree: _Node = field(repr=False, compare=False)

    @property
    def uses_bodies(self) -> bool:
        """Whether evaluating it reads bodies: the one case SQL evaluates row by row."""
        return self.tree.uses_bodies

    def matches(self, flow: Flow) -> bool:
        return self.tree.matches(flow)

    def to_sql(self) -> tuple[str, list[object]]:
        """A 0/1 SQL expression over `flows AS f`, and its parameters.

        The connection must have had ``register_functions`` called on it.
        """
        params: list[object] = []
        return self.tree.sql(params), params


def parse_filter(text: str, *, max_depth: int = 16, max_filters: int = 1000) -> Filter:
    """Parse ``text``; raises FilterError pointing at the column where it went wrong.

    The limits keep the SQL within what SQLite parses: parentheses and ! nested at most
    ``max_depth`` deep (its parser's stack), at most ``max_filters`` operators and regexes.
    """
    return Filter(text, _Parser(text, max_depth=max_depth, max_filters=max_filters).parse())
