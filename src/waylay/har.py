"""HAR 1.2 in and out: stored flows as HTTP Archive entries, and entries as flows to store.

Theory of operation
-------------------
HAR (http://www.softwareishard.com/blog/har-12-spec/) is what browsers, Charles, Insomnia and
mitmproxy export, so it is how flows travel between tools. The conversions here are pure —
`flow_to_entry` and `entry_to_flow` turn one flow (with its bodies) into one entry and back —
and two small helpers do the IO: `export_file` streams a flow database into a HAR file written
atomically, `import_file` reads a HAR file whole and appends its flows in one transaction.

A flow keeps what was on the wire; a HAR entry keeps what a browser shows. Where the two
differ a decision is made, and docs/flows.md (section HAR) lists them for users:

- HAR bodies are decoded. Exported, a body is undone from its Content-Encoding (gzip, deflate;
  a coding waylay cannot undo, or a body cut short, goes out as it was stored, marked
  ``_waylay_encoded``). Imported, the decoded body is what is stored, so the response's
  Content-Encoding field, which would no longer be true of it, is dropped.
- A body is ``text`` when it decodes (in the charset its type declares, else UTF-8) and
  encodes back to the same bytes; otherwise base64 with ``encoding: "base64"``. Imported text
  is encoded the same way back, so bytes survive a round trip exactly.
- HTTP/2 and HTTP/3 exports carry pseudo-header fields (``:method``, ``:path``...), which are
  not fields at all: they are dropped, except ``:authority``, which becomes the Host field
  HTTP/1 says it is (RFC 9113 §8.3.1) when the request has none, so the flow can be replayed.
- Timings: waylay knows when a request started, was sent upstream, saw its first response
  byte and ended; HAR's blocked/dns/connect/ssl are therefore -1 and send/wait/receive
  span those four points. The flow store keeps only the start and the end.
- An entry without a response is HAR's status 0 entry (as Chrome writes failed requests); a
  flow's error, client address, server address and capture flags travel as the `_`-prefixed
  custom fields HAR allows (``_waylay_error``, ``_waylay_client``, ``_waylay_server``,
  ``_waylay_flags``); Chrome's ``response._error`` is read as an error too.

Bad input raises ConfigError naming the file, the entry and what is wrong. Header fields and
reasons that could split a message (CR, LF, NUL) are refused, since replay sends them as
stored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import math
import os
import sqlite3
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from waylay import __version__
from waylay.errors import ConfigError
from waylay.filters import Filter, register_functions
from waylay.flow import Error, Flow, Request, Response, Timestamps
from waylay.headers import Headers
from waylay.http1.head import Fields, header_value, header_values
from waylay.store.bulk import append_flows
from waylay.store.reader import body, iter_flows, open_readonly
from waylay.store.schema import REQUEST_BODY, RESPONSE_BODY

HAR_VERSION = "1.2"
CREATOR = {"name": "waylay", "version": __version__}

# HAR versions as exports write them -> as waylay's flows hold them.
_HTTP_VERSIONS = {
    "http/1.0": "HTTP/1.0",
    "http/1.1": "HTTP/1.1",
    "h2": "HTTP/2.0",
    "http/2": "HTTP/2.0",
    "http/2.0": "HTTP/2.0",
    "h3": "HTTP/3",
    "http/3": "HTTP/3",
    "http/3.0": "HTTP/3",
}
# The HTTP request behind a WebSocket URL is the http(s) one (RFC 6455 §3).
_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
# The client address of an imported flow, unless the entry names one: the HAR file.
IMPORT_CLIENT = ("har", 0)
# RFC 9110 §5.6.2: what a method or a field name is made of.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_FORBIDDEN_IN_FIELDS = frozenset("\r\n\0")
# Everything visible in ASCII stays as it is in a path; the rest is percent-encoded (UTF-8).
_PATH_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


# --- flows -> entries ---------------------------------------------------------------------------


def export_har(
    flows_with_bodies: Iterable[tuple[Flow, bytes | None, bytes | None]],
) -> dict[str, Any]:
    """A HAR 1.2 document of ``flows_with_bodies`` (each flow with its request and response body,
    None when not captured)."""
    entries = [flow_to_entry(flow, req, resp) for flow, req, resp in flows_with_bodies]
    return {"log": {**_log_head(), "entries": entries}}


def _log_head() -> dict[str, Any]:
    return {"version": HAR_VERSION, "creator": dict(CREATOR), "pages": []}


def flow_to_entry(
    flow: Flow,
    request_body: bytes | None,
    response_body: bytes | None,
    *,
    max_decoded_size: int = 256 * 1024 * 1024,
) -> dict[str, Any]:
    """One HAR entry for ``flow``; a body is None when it was not captured.

    A response body is decoded from its Content-Encoding for ``text`` up to
    ``max_decoded_size`` bytes; past that (or undecodable) it is exported as stored.
    """
    total, timings = _timings(flow.timestamps)
    entry: dict[str, Any] = {
        "startedDateTime": _iso(flow.timestamps.start),
        "time": total,
        "request": _request_entry(flow, request_body),
        "response": _response_entry(flow, response_body, max_decoded_size),
        "cache": {},
        "timings": timings,
    }
    if flow.server_address is not None:
        entry["serverIPAddress"] = flow.server_address[0]
        entry["_waylay_server"] = list(flow.server_address)
    if flow.client_address != IMPORT_CLIENT:
        entry["_waylay_client"] = list(flow.client_address)
    if flow.error is not None:
        entry["_waylay_error"] = {"reason": flow.error.reason, "code": flow.error.code}
    if flow.capture_flags:
        entry["_waylay_flags"] = flow.capture_flags
    return entry


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _timings(ts: Timestamps) -> tuple[float, dict[str, float]]:
    """HAR's `time` and `timings` from a flow's four moments; an unknown one takes no time."""
    start = ts.start
    end = max(ts.end, ts.request_sent, ts.first_response_byte, start)
    sent = min(max(ts.request_sent or start, start), end)
    first = min(max(ts.first_response_byte or end, sent), end)
    timings = {
        "blocked": -1.0,
        "dns": -1.0,
        "connect": -1.0,
        "ssl": -1.0,
        "send": _ms(sent - start),
        "wait": _ms(first - sent),
        "receive": _ms(end - first),
    }
    return _ms(end - start), timings


def _fields(headers: Fields) -> list[dict[str, str]]:
    return [{"name": n.decode("latin-1"), "value": v.decode("latin-1")} for n, v in headers]


def _request_entry(flow: Flow, request_body: bytes | None) -> dict[str, Any]:
    request = flow.request
    path = request.path
    query = path.partition("?")[2]
    entry: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "httpVersion": request.http_version,
        "cookies": _request_cookies(request.headers.fields),
        "headers": _fields(request.headers.fields),
        "queryString": [
            {"name": name, "value": value}
            for name, value in parse_qsl(query, keep_blank_values=True, errors="replace")
        ],
        "headersSize": -1,
        "bodySize": flow.request_body_size,
    }
    if request_body:
        mime_type = _text(header_value(request.headers.fields, b"content-type")) or ""
        post: dict[str, Any] = {"mimeType": mime_type}
        post.update(_body_text(request_body, mime_type))
        entry["postData"] = post
    return entry


def _response_entry(flow: Flow, response_body: bytes | None, limit: int) -> dict[str, Any]:
    response = flow.response
    if response is None:
        # Chrome's form for a request that got no response.
        return {
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        }
    mime_type = _text(header_value(response.headers.fields, b"content-type")) or "x-unknown"
    content: dict[str, Any] = {"size": flow.response_body_size, "mimeType": mime_type}
    if response_body is not None:
        encoding = _text(header_value(response.headers.fields, b"content-encoding"))
        decoded = decode_content(response_body, encoding, limit=limit)
        if decoded is None:
            content["_waylay_encoded"] = True
            decoded = response_body
        elif len(decoded) != len(response_body):
            content["compression"] = len(decoded) - len(response_body)
        content["size"] = len(decoded)
        content.update(_body_text(decoded, mime_type))
    return {
        "status": response.status_code,
        "statusText": response.reason,
        "httpVersion": response.http_version,
        "cookies": _response_cookies(response.headers.fields),
        "headers": _fields(response.headers.fields),
        "content": content,
        "redirectURL": _text(header_value(response.headers.fields, b"location")) or "",
        "headersSize": -1,
        "bodySize": flow.response_body_size,
    }


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _charset(mime_type: str) -> str:
    """The text encoding ``mime_type`` declares, if Python knows it; else UTF-8."""
    for parameter in mime_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"')
            try:
                "".encode(charset)  # a text encoding, not base64_codec and the like
            except LookupError:
                return "utf-8"
            return charset
    return "utf-8"


def _body_text(data: bytes, mime_type: str) -> dict[str, str]:
    """``text`` if ``data`` decodes in its charset and encodes back the same; else base64."""
    charset = _charset(mime_type)
    with contextlib.suppress(UnicodeError):
        text = data.decode(charset)
        if text.encode(charset) == data:
            return {"text": text}
    return {"text": base64.b64encode(data).decode("ascii"), "encoding": "base64"}


def decode_content(raw: bytes, encoding: str | None, *, limit: int) -> bytes | None:
    """``raw`` with its Content-Encoding undone, last coding first (RFC 9110 §8.4); None when
    a coding is not gzip, deflate or identity, the data does not decode to its end (a body
    stored truncated), or it decodes to more than ``limit`` bytes."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    data: bytes | None = raw
    for coding in reversed(codings):
        if data is None:
            return None
        if coding in ("gzip", "x-gzip"):  # x-gzip: RFC 9110 §8.4.1.3
            data = _gunzip(data, limit)
        elif coding == "deflate":
            # RFC 9110 §8.4.1.2 says zlib-wrapped; some servers send raw deflate.
            data = _inflate(data, zlib.MAX_WBITS, limit) or _inflate(data, -zlib.MAX_WBITS, limit)
        elif coding != "identity":
            return None
    return data


def _inflate(data: bytes, wbits: int, limit: int) -> bytes | None:
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(data, limit + 1)
    except zlib.error:
        return None
    if not decoder.eof or len(out) > limit:
        return None
    return out


def _gunzip(data: bytes, limit: int) -> bytes | None:
    # RFC 1952 §2.2: a gzip file is members one after another.
    out: list[bytes] = []
    size = 0
    while True:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            piece = decoder.decompress(data, limit - size + 1)
        except zlib.error:
            return None
        size += len(piece)
        if not decoder.eof or size > limit:
            return None
        out.append(piece)
        data = decoder.unused_data
        if data[:2] != b"\x1f\x8b":
            return b"".join(out)


def _request_cookies(headers: Fields) -> list[dict[str, str]]:
    cookies = []
    for value in header_values(headers, b"cookie"):
        for pair in value.decode("latin-1").split(";"):
            name, eq, cookie = pair.strip().partition("=")
            if eq:
                cookies.append({"name": name.strip(), "value": cookie.strip()})
    return cookies


def _response_cookies(headers: Fields) -> list[dict[str, Any]]:
    cookies = []
    for value in header_values(headers, b"set-cookie"):
        pair, *attributes = value.decode("latin-1").split(";")
        name, eq, cookie_value = pair.partition("=")
        if not eq:
            continue
        cookie: dict[str, Any] = {"name": name.strip(), "value": cookie_value.strip()}
        for attribute in attributes:
            key, _, argument = attribute.strip().partition("=")
            key = key.strip().lower()
            if key in ("path", "domain"):
                cookie[key] = argument.strip()
            elif key == "expires":
                with contextlib.suppress(TypeError, ValueError, IndexError):
                    cookie["expires"] = parsedate_to_datetime(argument.strip()).isoformat()
            elif key == "httponly":
                cookie["httpOnly"] = True
            elif key == "secure":
                cookie["secure"] = True
            elif key == "samesite":
                cookie["sameSite"] = argument.strip()
        cookies.append(cookie)
    return cookies


# --- entries -> flows ---------------------------------------------------------------------------


def entry_to_flow(entry: dict[str, Any]) -> tuple[Flow, bytes | None, bytes | None]:
    """The flow an entry describes, with its request and response bodies (None: not in the
    entry). ConfigError (its reason naming the field) for an entry that cannot be one."""
    request_entry = _object(entry, "request", required=True)
    method = _string(request_entry, "request.method", required=True)
    if not method or not set(method) <= _TCHAR:
        raise ConfigError(f"request.method {method!r} is not an HTTP method")
    url = _string(request_entry, "request.url", required=True)
    scheme, host, port, path = _split_url(url, connect=method == "CONNECT")
    headers = _header_fields(request_entry, "request.headers", request=True)
    request = Request(
        method=method,
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        http_version=_http_version(request_entry, "request.httpVersion"),
        headers=Headers.wrap(headers),
    )
    request_body = _post_data(request_entry)
    flow = Flow(client_address=IMPORT_CLIENT, request=request)
    flow.request_body_size = (
        len(request_body) if request_body is not None else _size(request_entry, "bodySize")
    )

    response_body = None
    response_entry = _object(entry, "response")
    status = response_entry.get("status", 0)
    if not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= 999:
        raise ConfigError(f"response.status {status!r} is not a status code")
    if status:
        flow.response, response_body, flow.response_body_size = _response(response_entry)
    flow.timestamps = _timestamps(entry, has_response=flow.response is not None)
    flow.error = _error(entry, response_entry.get("_error"))
    flow.client_address = _address(entry, "_waylay_client") or IMPORT_CLIENT
    flow.server_address = _address(entry, "_waylay_server") or _server_ip(entry, port)
    flags = entry.get("_waylay_flags", 0)
    if not isinstance(flags, int) or isinstance(flags, bool) or flags < 0:
        raise ConfigError(f"_waylay_flags {flags!r} is not a set of flags")
    flow.capture_flags = flags
    return flow, request_body, response_body


def _object(parent: dict[str, Any], where: str, *, required: bool = False) -> dict[str, Any]:
    value = parent.get(where.rpartition(".")[2])
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"no {where} object" if value is None else f"{where} is not an object")
    return value


def _string(parent: dict[str, Any], where: str, *, required: bool = False) -> str:
    value = parent.get(where.rpartition(".")[2])
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ConfigError(f"no {where}" if value is None else f"{where} is not a string")
    return _unicode(value, where)


def _unicode(value: str, where: str) -> str:
    # JSON can escape half a surrogate pair ("\ud800"); no text column can store that.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{where} is not valid Unicode (a lone surrogate)") from None
    return value


def _size(parent: dict[str, Any], key: str) -> int:
    value = parent.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0  # -1, absent or nonsense: HAR's "not known"


def _split_url(url: str, *, connect: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, origin-form path with query) of an absolute http(s) URL."""
    if connect and "://" not in url:
        url = f"https://{url}"  # a CONNECT's target is host:port; waylay writes it so too
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"request.url {url!r} is not a URL ({exc})") from None
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ConfigError(f"request.url {url!r} is not an http or https URL")
    # urlsplit lowercases the host and takes the brackets off an IPv6 literal, as the store
    # keeps hosts; the fragment is the client's and never sent.
    _, _, rest = url.partition("://")
    rest = rest.partition("#")[0]
    slash = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    path = rest[slash:]
    if not path or path.startswith("?"):
        path = "/" + path
    if connect:
        path = ""
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], quote(path, safe=_PATH_SAFE)


def _http_version(parent: dict[str, Any], where: str) -> str:
    version = _string(parent, where)
    return _HTTP_VERSIONS.get(version.lower(), version)


def _field_bytes(value: str, where: str) -> bytes:
    if not _FORBIDDEN_IN_FIELDS.isdisjoint(value):
        raise ConfigError(f"{where} holds CR, LF or NUL, which would split the message")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _header_fields(parent: dict[str, Any], where: str, *, request: bool) -> Fields:
    fields = parent.get(where.rpartition(".")[2]) or []
    if not isinstance(fields, list):
        raise ConfigError(f"{where} is not a list")
    headers: Fields = []
    authority: bytes | None = None
    for index, field in enumerate(fields):
        here = f"{where}[{index}]"
        if not isinstance(field, dict):
            raise ConfigError(f"{here} is not an object")
        name, value = _string(field, f"{here}.name", required=True), _string(field, f"{here}.value")
        if name.startswith(":"):
            # HTTP/2 and HTTP/3 pseudo-header fields are not fields (RFC 9113 §8.3).
            if request and name == ":authority":
                authority = _field_bytes(value, f"{here}.value")
            continue
        if not name or not set(name) <= _TCHAR:
            raise ConfigError(f"{here}.name {name!r} is not a field name")
        headers.append((name.encode("ascii"), _field_bytes(value, f"{here}.value")))
    if authority is not None and header_value(headers, b"host") is None:
        headers.insert(0, (b"Host", authority))  # RFC 9113 §8.3.1: :authority is Host
    return headers


def _content_bytes(content: dict[str, Any], where: str) -> bytes | None:
    """A HAR body: base64 decoded, or text encoded in the charset its mimeType declares."""
    text = content.get("text")
    if text is None:
        return None
    if not isinstance(text, str):
        raise ConfigError(f"{where}.text is not a string")
    encoding = content.get("encoding")
    if encoding in (None, ""):
        charset = _charset(_string(content, f"{where}.mimeType"))
        try:
            return text.encode(charset)
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")
    if encoding != "base64":
        raise ConfigError(f"{where}.encoding {encoding!r} is not base64")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{where}.text is not valid base64 ({exc})") from None


def _post_data(request_entry: dict[str, Any]) -> bytes | None:
    post = _object(request_entry, "request.postData")
    if not post:
        return None
    data = _content_bytes(post, "request.postData")
    if data is None and post.get("params"):
        # HAR allows form fields instead of text; a urlencoded form is rebuilt from them.
        params = post["params"]
        mime_type = _string(post, "request.postData.mimeType")
        if isinstance(params, list) and mime_type.startswith("application/x-www-form-urlencoded"):
            fields = [
                (str(p.get("name", "")), str(p.get("value", "")))
                for p in params
                if isinstance(p, dict)
            ]
            data = urlencode(fields).encode("ascii")
    return data


def _response(response_entry: dict[str, Any]) -> tuple[Response, bytes | None, int]:
    headers = _header_fields(response_entry, "response.headers", request=False)
    content = _object(response_entry, "response.content")
    data = _content_bytes(content, "response.content")
    if data is not None and not content.get("_waylay_encoded"):
        # HAR bodies are decoded: the stored body is the decoded one, and a Content-Encoding
        # field kept with it would be false (a replay would send it with plain bytes).
        headers = [(n, v) for n, v in headers if n.lower() != b"content-encoding"]
    reason = _field_bytes(_string(response_entry, "response.statusText"), "response.statusText")
    response = Response(
        status_code=response_entry["status"],
        reason=reason.decode("latin-1"),
        http_version=_http_version(response_entry, "response.httpVersion"),
        headers=Headers.wrap(headers),
    )
    size = len(data) if data is not None else _size(content, "size")
    return response, data, size


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# HAR 1.2's phases in order; ssl is not among them, being part of connect.
_TIMINGS = ("blocked", "dns", "connect", "send", "wait", "receive")


def _timestamps(entry: dict[str, Any], *, has_response: bool) -> Timestamps:
    started = _string(entry, "startedDateTime", required=True)
    try:
        moment = datetime.fromisoformat(started)
    except ValueError:
        raise ConfigError(f"startedDateTime {started!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # HAR requires a zone; UTC is the sane guess
    start = moment.timestamp()
    timings = _object(entry, "timings")
    spans = {key: _number(timings.get(key)) for key in _TIMINGS}
    total = _number(entry.get("time"))
    if total is None or total < 0:
        total = sum(value for value in spans.values() if value is not None and value > 0)
    timestamps = Timestamps(start=start, end=start + total / 1000)
    if spans["send"] is not None and spans["wait"] is not None:
        before = sum(max(spans[key] or 0.0, 0.0) for key in ("blocked", "dns", "connect", "send"))
        timestamps.request_sent = start + before / 1000
        if has_response:
            timestamps.first_response_byte = timestamps.request_sent + max(spans["wait"], 0) / 1000
    return timestamps


def _error(entry: dict[str, Any], chrome_error: Any) -> Error | None:
    ours = entry.get("_waylay_error")
    if isinstance(ours, dict) and isinstance(ours.get("reason"), str):
        code = ours.get("code")
        code = _unicode(code, "_waylay_error.code") if isinstance(code, str) else ""
        return Error(_unicode(ours["reason"], "_waylay_error.reason"), code)
    if isinstance(chrome_error, str) and chrome_error:
        return Error(_unicode(chrome_error, "response._error"), "")
    return None


def _address(entry: dict[str, Any], key: str) -> tuple[str, int] | None:
    value = entry.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], str)
        or not isinstance(value[1], int)
        or isinstance(value[1], bool)
    ):
        raise ConfigError(f"{key} {value!r} is not [host, port]")
    return _unicode(value[0], key), value[1]


def _server_ip(entry: dict[str, Any], port: int) -> tuple[str, int] | None:
    address = _string(entry, "serverIPAddress").strip()
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]  # Chrome writes IPv6 in brackets
    return (address, port) if address else None


# --- files --------------------------------------------------------------------------------------


def read_har(data: bytes, source: str) -> list[dict[str, Any]]:
    """The entries of the HAR document ``data`` (read from ``source``), each checked to be a
    flow; a UTF-8 byte order mark is allowed. ConfigError naming ``source`` and what is wrong."""
    entries = _entries(data, source)
    for number, entry in enumerate(entries, 1):
        _convert(entry, source, number)
    return entries


def _entries(data: bytes, source: str) -> list[dict[str, Any]]:
    try:
        text = data.decode(json.detect_encoding(data))  # UTF-8, with or without a BOM (or 16/32)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not a HAR file: not UTF-8 text (byte {exc.start})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}: not a HAR file: invalid JSON ({exc.msg} at line {exc.lineno} "
            f"column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number; [[[[... nested deep
        raise ConfigError(f"{source}: not a HAR file: unreadable JSON ({exc})") from None
    log = document.get("log") if isinstance(document, dict) else None
    if not isinstance(log, dict):
        raise ConfigError(f'{source}: not a HAR file: no "log" object at the top')
    entries = log.get("entries")
    if not isinstance(entries, list):
        what = "missing" if entries is None else "not a list"
        raise ConfigError(f"{source}: not a HAR file: log.entries is {what}")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: entry {number}: not an object")
    return entries


def _convert(
    entry: dict[str, Any], source: str, number: int
) -> tuple[Flow, bytes | None, bytes | None]:
    try:
        return entry_to_flow(entry)
    except (ConfigError, UnicodeError) as exc:
        reason = exc.reason if isinstance(exc, ConfigError) else "text that is not valid Unicode"
        request = entry.get("request")
        what = ""
        if isinstance(request, dict) and isinstance(request.get("url"), str):
            method = request.get("method")
            if isinstance(method, str):
                what = f" ({_printable(method[:20])} {_printable(request['url'][:80])})"
        raise ConfigError(f"{source}: entry {number}{what}: {reason}") from None


def _printable(text: str) -> str:
    """``text`` for a one-line message: control characters escaped."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def import_file(har_path: Path, db_path: Path) -> list[int]:
    """Append the flows of the HAR file ``har_path`` to the flow database ``db_path`` (created
    if absent) in one transaction: all of them, or — on any error — none."""
    try:
        data = har_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {har_path}: {exc.strerror or exc}") from None
    source = str(har_path)
    flows = [_convert(entry, source, n) for n, entry in enumerate(_entries(data, source), 1)]
    return append_flows(db_path, flows)


def export_file(db_path: Path, out_path: Path, *, only: Filter | None = None) -> int:
    """Write the flows of ``db_path`` (those ``only`` matches, when given) to the HAR file
    ``out_path``; the number written. The file appears whole or not at all (0600: it holds
    cookies and bodies), and memory holds one flow's bodies at a time."""
    db = open_readonly(db_path)
    try:
        register_functions(db)
        return _write_atomically(out_path, lambda out: write_har(db, out, only=only))
    except sqlite3.DatabaseError as exc:  # damaged past the pages open_readonly checks
        raise ConfigError(f"{db_path}: cannot read its flows ({exc})") from None
    finally:
        db.close()


def write_har(db: sqlite3.Connection, out: TextIO, *, only: Filter | None = None) -> int:
    """Write the HTTP flows of ``db`` (those ``only`` matches, when given) to ``out`` as one
    HAR document; the number written. ``db`` needs `register_functions` for a filter."""
    where, params = only.to_sql() if only is not None else ("", [])
    return _write_har(out, _stored(db, where, params))


def _stored(
    db: sqlite3.Connection, where: str, params: Sequence[object]
) -> Iterator[tuple[Flow, bytes | None, bytes | None]]:
    # HAR holds HTTP exchanges only: raw TCP flows are left out.
    http_only = f"f.kind = 'http' AND ({where})" if where else "f.kind = 'http'"
    for flow in iter_flows(db, http_only, params):
        assert flow.store_id is not None
        request_body = body(db, flow.store_id, REQUEST_BODY)
        response_body = body(db, flow.store_id, RESPONSE_BODY)
        # The store keeps no row for an empty body: bytes that went by with none stored were
        # not captured (--body-limit 0), which HAR says by leaving the text out.
        yield (
            flow,
            None if not request_body and flow.request_body_size else request_body,
            None if not response_body and flow.response_body_size else response_body,
        )


def _write_har(out: TextIO, flows: Iterable[tuple[Flow, bytes | None, bytes | None]]) -> int:
    # One entry per line: the document streams out flow by flow, and stays greppable.
    head = json.dumps(_log_head(), ensure_ascii=False)
    out.write(f'{{"log": {head[:-1]}, "entries": [\n')
    count = 0
    for flow, request_body, response_body in flows:
        entry = flow_to_entry(flow, request_body, response_body)
        out.write(("," if count else "") + json.dumps(entry, ensure_ascii=False) + "\n")
        count += 1
    out.write("]}}\n")
    return count


def _write_atomically(path: Path, write: Callable[[TextIO], int]) -> int:
    directory = path.parent
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            count = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return count
