"""HTTP/1 message heads: where a head ends, and what it says (RFC 9112 §2-§5).

Theory of operation
-------------------
A proxy stands between two parsers it does not control. Any byte sequence that waylay and the
next hop could read differently is a request-smuggling or response-splitting hole, so this module
accepts what RFC 9112 defines and rejects the rest with a typed error instead of guessing. Every
leniency is named where it is made, and none of them can move the end of a message.

The parser is on the hot path (tens of thousands of heads a second), so each rule that can be
checked on the whole head at once is: control bytes, bare CR and bare LF together with one
``bytes.translate`` (what is left must be exactly the CRLFs the head was split at), the Host
count on the lowered head. What is left per header line is a ``partition`` and a ``strip``; the
names of all lines are checked together in one call (obs-fold and whitespace before the colon
fail it too), and only a head that fails a check is walked again to say what is wrong.

Owns: head boundaries, the request line, the status line, field lines (also for trailers), the
Host rule, the request-target forms. Does not own: body framing (``body.py``), what a proxy
changes on the way (``forwarding.py``), IO of any kind.

Limits: ``max_head_size`` (``find_head_end``) and ``max_headers`` are parameters; going over
either raises ``HeadTooLarge`` (431, or 502 when the head is a response).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Literal

from waylay.errors import HeadTooLarge, ProtocolError

Fields = list[tuple[bytes, bytes]]
"""(name exactly as sent, value with OWS stripped), in wire order."""

# --- the grammar's character classes (RFC 9110 §5.6.2, RFC 5234 appendix B.1) -------------------
_DIGIT = b"0123456789"
_HEXDIG = _DIGIT + b"abcdefABCDEF"
_ALPHA = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TCHAR = b"!#$%&'*+-.^_`|~" + _DIGIT + _ALPHA  # RFC 9110 §5.6.2
_VCHAR = bytes(range(0x21, 0x7F))
_OBS_TEXT = bytes(range(0x80, 0x100))  # RFC 9110 §5.5: allowed in field values
# Every byte a head may hold somewhere. Deleting these leaves the forbidden ones: NUL, DEL and
# the other controls (RFC 9110 §5.5, RFC 9112 §2.2). CR and LF are checked by counting.
_HEAD_BYTES = b"\t\r\n " + _VCHAR + _OBS_TEXT
_LINE_BYTES = b"\t " + _VCHAR + _OBS_TEXT  # the same without CR and LF
# RFC 3986 §3.2.2 reg-name without pct-encoded and sub-delims: what DNS names are made of.
_REG_NAME = _ALPHA + _DIGIT + b"-._"

_UPSTREAM_CODE = "upstream-protocol-error"


def protocol_error(reason: str, *, response: bool = False) -> ProtocolError:
    """A ProtocolError for the side that sent the bytes: 400 from a client, 502 from a server."""
    if response:
        return ProtocolError(reason, status=502, code=_UPSTREAM_CODE)
    return ProtocolError(reason)


def too_large(reason: str, *, response: bool = False) -> HeadTooLarge:
    """A HeadTooLarge for the side that sent the head: 431 from a client, 502 from a server."""
    if response:
        return HeadTooLarge(reason, status=502, code=_UPSTREAM_CODE)
    return HeadTooLarge(reason)


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: bytes
    target: bytes
    version: bytes  # b"HTTP/1.1" or b"HTTP/1.0"
    headers: Fields


@dataclass(frozen=True, slots=True)
class ResponseHead:
    version: bytes  # b"HTTP/1.1" or b"HTTP/1.0"
    status: int
    reason: bytes
    headers: Fields


def find_head_end(
    buf: bytes | bytearray, max_head_size: int = 64 * 1024, *, response: bool = False
) -> int:
    """Index just past the blank line ending the head, or -1 if more bytes are needed.

    Raises HeadTooLarge if no end is found within ``max_head_size`` bytes (431; 502 with
    ``response=True``). A head ended by bare LFs (``b"\\n\\n"``) also gets an end, so that the
    parser can refuse it with 400 instead of waiting for a CRLF that will never come.
    """
    start = 0
    if buf.startswith((b"\r", b"\n")):
        # RFC 9112 §2.2: empty lines before the request-line are skipped. They are not searched
        # for the end here; the parser checks that they were proper CRLFs.
        start = len(buf) - len(buf.lstrip(b"\r\n"))
    # b"\n\r\n" also finds b"\r\n\r\n"; b"\n\n" finds bare-LF endings.
    crlf = buf.find(b"\n\r\n", start, max_head_size)
    lf = buf.find(b"\n\n", start, max_head_size)
    if crlf != -1 and (lf == -1 or crlf + 3 <= lf + 2):
        return crlf + 3
    if lf != -1:
        return lf + 2
    if len(buf) >= max_head_size:
        # RFC 9110 §5.4: a server MUST answer a head larger than it wishes to process with a
        # 4xx; RFC 6585 §5 names it 431.
        raise too_large(
            f"message head longer than {max_head_size} bytes (RFC 9110 §5.4)", response=response
        )
    return -1


def parse_request_head(data: bytes | bytearray, *, max_headers: int = 100) -> RequestHead:
    """Parse a complete request head (up to and including the empty line), strictly."""
    if type(data) is not bytes:
        data = bytes(data)  # the head's parts must be immutable and hashable
    if data.startswith((b"\r", b"\n")):
        # RFC 9112 §2.2: a server SHOULD ignore at least one empty line (CRLF) received before
        # the request-line. Only whole CRLFs: a bare CR or LF there is as bad as anywhere.
        stripped = data.lstrip(b"\r\n")
        skipped = len(data) - len(stripped)
        if data.count(b"\r\n", 0, skipped) * 2 != skipped:
            raise protocol_error("bare CR or LF before the request line (RFC 9112 §2.2)")
        data = stripped
    lines = _head_lines(data, response=False)

    # RFC 9112 §3: request-line = method SP request-target SP HTTP-version
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise protocol_error(
            "request line is not 'method SP target SP version' with single spaces (RFC 9112 §3)"
        )
    method, target, version = parts
    if not method or method.translate(None, _TCHAR):
        raise protocol_error("request method is not a token (RFC 9112 §3.1, RFC 9110 §9.1)")
    if not target or target.translate(None, _VCHAR):
        raise protocol_error("request target is empty or not visible ASCII (RFC 9112 §3.2)")
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        raise _bad_version(version)

    headers = _fields(lines[1:], response=False, max_fields=max_headers)

    # RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, for any request with more than
    # one Host line, and for a Host with an invalid value. A request's names cannot end in
    # whitespace (refused in _fields), so this pattern counts every Host line.
    hosts = data.lower().count(b"\r\nhost:")
    if hosts > 1:
        raise protocol_error("more than one Host header (RFC 9112 §3.2)")
    if hosts == 0:
        if version == b"HTTP/1.1":
            raise protocol_error("HTTP/1.1 request without a Host header (RFC 9112 §3.2)")
    else:
        host = header_value(headers, b"host")
        # RFC 9112 §3.2: an empty Host is what a client sends when the target has no authority.
        if host:
            parse_host(host, 80)
    return RequestHead(method, target, version, headers)


def parse_response_head(data: bytes | bytearray, *, max_headers: int = 100) -> ResponseHead:
    """Parse a complete response head (up to and including the empty line), strictly.

    No empty lines are skipped before the status line: RFC 9112 §2.2 allows that only to a
    server, and stray CRLFs after a response body mean the body's framing was not what the
    server thought it was.
    """
    if type(data) is not bytes:
        data = bytes(data)
    lines = _head_lines(data, response=True)

    # RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    version, _, rest = lines[0].partition(b" ")
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        raise protocol_error(
            "status line does not start with HTTP/1.1 or HTTP/1.0 (RFC 9112 §4)", response=True
        )
    # Leniency: ``HTTP/1.1 200`` with neither the SP nor a reason is accepted as an empty
    # reason. Real servers send it, the reason means nothing to HTTP (RFC 9112 §4), and the
    # status line still ends at its CRLF, so the message's framing cannot change.
    code, _, reason = rest.partition(b" ")
    if len(code) != 3 or not code.isdigit() or code[0] == 0x30:
        raise protocol_error(
            "status code is not three digits from 100 to 999 (RFC 9112 §4)", response=True
        )
    # reason-phrase = *( HTAB / SP / VCHAR / obs-text ): the whole-head byte check covered it.
    headers = _fields(lines[1:], response=True, max_fields=max_headers)
    return ResponseHead(version, int(code), reason, headers)


def parse_fields(block: bytes, *, response: bool = False, max_fields: int = 100) -> Fields:
    """Parse field lines that each end with CRLF, as in a trailer section (RFC 9112 §7.1.2).

    ``block`` holds the lines without the empty line that ends the section. The rules are
    those of header fields: ``response`` picks 502 over 400, and whitespace before a colon is
    removed from a response and refused in a request (RFC 9112 §5.1).
    """
    if not block:
        return []
    if not block.endswith(b"\r\n"):
        _check_bytes(block, block.count(b"\r\n"), response=response)
        raise protocol_error("field line does not end with CRLF (RFC 9112 §2.2)", response=response)
    lines = block[:-2].split(b"\r\n")
    _check_bytes(block, len(lines), response=response)
    return _fields(lines, response=response, max_fields=max_fields)


def header_value(headers: Fields, name: bytes) -> bytes | None:
    """The value of the first field called ``name`` (given in lowercase), or None."""
    size = len(name)
    for field, value in headers:
        if len(field) == size and field.lower() == name:
            return value
    return None


def header_values(headers: Fields, name: bytes) -> list[bytes]:
    """The values of every field called ``name`` (given in lowercase), in wire order."""
    size = len(name)
    return [value for field, value in headers if len(field) == size and field.lower() == name]


def _head_lines(data: bytes, *, response: bool) -> list[bytes]:
    """The lines of a head, start line first, after the checks made on the whole head."""
    if not data.endswith(b"\r\n\r\n"):
        _check_bytes(data, data.count(b"\r\n"), response=response)
        raise protocol_error(
            "message head does not end with an empty line (RFC 9112 §2.1)", response=response
        )
    lines = data[:-4].split(b"\r\n")
    _check_bytes(data, len(lines) + 1, response=response)
    return lines


def _check_bytes(data: bytes, crlfs: int, *, response: bool) -> None:
    """``data`` holds no control bytes, and its only CRs and LFs are its ``crlfs`` CRLF pairs.

    One C call: deleting every allowed byte but CR and LF leaves exactly the pairs' bytes.
    """
    if len(data.translate(None, _LINE_BYTES)) == 2 * crlfs:
        return
    forbidden = data.translate(None, _HEAD_BYTES)
    if forbidden:
        raise protocol_error(
            f"control character 0x{forbidden[0]:02x} in the head or trailers (RFC 9110 §5.5)",
            response=response,
        )
    # RFC 9112 §2.2: a recipient MAY accept a bare LF as a line terminator. We do not: a bare
    # LF that the next hop reads differently splits one message into two. Bare CR is refused
    # as the RFC requires.
    if data.count(b"\n") != data.count(b"\r\n"):
        raise protocol_error("bare LF in the head or trailers (RFC 9112 §2.2)", response=response)
    raise protocol_error("bare CR in the head or trailers (RFC 9112 §2.2)", response=response)


def _fields(lines: list[bytes], *, response: bool, max_fields: int) -> Fields:
    """Field lines (RFC 9112 §5), from a byte-checked head split at its CRLFs."""
    if len(lines) > max_fields:
        raise too_large(f"more than {max_fields} header fields (RFC 6585 §5)", response=response)
    headers: Fields = []
    names: list[bytes] = []
    for line in lines:
        # RFC 9112 §5: field-line = field-name ":" OWS field-value OWS
        name, colon, value = line.partition(b":")
        if not colon or not name:
            return _fields_slowly(lines, response=response)
        headers.append((name, value.strip(b" \t")))
        names.append(name)
    # One check for all names: each is a token. A folded line or whitespace before a colon
    # fails it too, since SP and HTAB are not tchar.
    if b"".join(names).translate(None, _TCHAR):
        return _fields_slowly(lines, response=response)
    return headers


def _fields_slowly(lines: list[bytes], *, response: bool) -> Fields:
    """The path for lines that failed the one check: fix what may be fixed, or name the fault."""
    fixed: Fields = []
    for line in lines:
        if line.startswith((b" ", b"\t")):
            # RFC 9112 §5.2: obs-fold is refused (a proxy MAY reject it: 400, or 502 for a
            # response). RFC 9112 §2.2: so is whitespace before the first field line.
            raise protocol_error(
                "obsolete line folding in a header field (RFC 9112 §5.2)", response=response
            )
        name, colon, value = line.partition(b":")
        if not colon:
            raise protocol_error(
                "header line without a colon, or an empty line inside the head (RFC 9112 §5)",
                response=response,
            )
        bare = name.rstrip(b" \t")
        if bare != name:
            if not response:
                raise protocol_error(
                    "whitespace between a header field name and the colon (RFC 9112 §5.1)"
                )
            # RFC 9112 §5.1: a proxy MUST remove such whitespace from a response before
            # forwarding it; the name is kept without it.
            name = bare
        if not name:
            raise protocol_error("empty header field name (RFC 9112 §5)", response=response)
        if name.translate(None, _TCHAR):
            raise protocol_error(
                f"header field name {name[:40]!r} is not a token (RFC 9110 §5.1)",
                response=response,
            )
        fixed.append((name, value.strip(b" \t")))
    return fixed


def _bad_version(version: bytes) -> ProtocolError:
    # RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT
    well_formed = (
        len(version) == 8
        and version.startswith(b"HTTP/")
        and version[5:6].isdigit()
        and version[6:7] == b"."
        and version[7:8].isdigit()
    )
    if well_formed:
        # RFC 9110 §15.6.6: 505 for a major version the server does not speak. We answer 505
        # for every version but 1.0 and 1.1 rather than read 1.2 as 1.1 (RFC 9112 §2.3):
        # no such version exists, and a client sending it is not one we understand.
        return ProtocolError(
            f"HTTP version {version.decode('ascii')} is not supported; use HTTP/1.1",
            status=505,
            code="http-version-not-supported",
        )
    return protocol_error("request line does not end with HTTP/1.1 or HTTP/1.0 (RFC 9112 §2.3)")


# --- request targets (RFC 9112 §3.2) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    form: Literal["origin", "absolute", "authority", "asterisk"]
    scheme: str  # "http"/"https" for absolute-form, "" otherwise
    host: str  # lowercased; IPv6 without brackets; "" for origin/asterisk
    port: int  # explicit or the scheme's default; 0 for origin/asterisk
    path: bytes  # origin-form to send upstream; b"" for authority; b"*" for asterisk


_DEFAULT_PORTS = {b"http": 80, b"https": 443}


def parse_target(method: bytes, target: bytes) -> Target:
    """Classify and check a request-target against its method (RFC 9112 §3.2)."""
    if not target or target.translate(None, _VCHAR):
        raise protocol_error("request target is empty or not visible ASCII (RFC 9112 §3.2)")
    if b"#" in target:
        # RFC 9112 §3.2: no form of request-target has a fragment; clients strip it.
        raise protocol_error("request target has a fragment ('#') (RFC 9112 §3.2)")
    if method == b"CONNECT":
        # RFC 9112 §3.2.3: CONNECT takes authority-form, host and port, and nothing else.
        host, port = parse_host(target, 0)
        return Target("authority", "", host, port, b"")
    if target.startswith(b"/"):
        return Target("origin", "", "", 0, target)  # RFC 9112 §3.2.1
    if target == b"*":
        # RFC 9112 §3.2.4: asterisk-form is only for a server-wide OPTIONS.
        if method != b"OPTIONS":
            raise protocol_error(
                "request target '*' is only allowed with OPTIONS (RFC 9112 §3.2.4)"
            )
        return Target("asterisk", "", "", 0, b"*")
    scheme, sep, rest = target.partition(b"://")
    if not sep:
        raise protocol_error(
            "request target is not origin-form ('/path'), absolute-form ('http://host/path'), "
            "or '*'; authority-form ('host:port') is only for CONNECT (RFC 9112 §3.2)"
        )
    # RFC 9112 §3.2.2: absolute-form; RFC 9110 §4.2.1-§4.2.2: only http and https (schemes are
    # case-insensitive, RFC 3986 §3.1).
    scheme = scheme.lower()
    default_port = _DEFAULT_PORTS.get(scheme)
    if default_port is None:
        raise protocol_error("only http:// and https:// targets can be proxied (RFC 9110 §4.2)")
    end = len(rest)  # the authority ends at the first "/" or "?", if any
    slash = rest.find(b"/")
    if slash != -1:
        end = slash
    query = rest.find(b"?", 0, end)
    if query != -1:
        end = query
    authority, path = rest[:end], rest[end:]
    if b"@" in authority:
        # RFC 9110 §4.2.4: userinfo is deprecated in http(s) URIs and a recipient SHOULD treat
        # it as an error: it hides the real host from a reader ("http://bank@evil/").
        raise protocol_error("request target has userinfo ('user@host') (RFC 9110 §4.2.4)")
    host, port = parse_host(authority, default_port)
    if not path:
        # RFC 9112 §3.2.4: the last proxy sends OPTIONS with an empty path as "*".
        path = b"*" if method == b"OPTIONS" else b"/"
    elif path.startswith(b"?"):
        path = b"/" + path  # RFC 9112 §3.2.1: origin-form always starts with the path
    return Target("absolute", scheme.decode("ascii"), host, port, path)


@functools.lru_cache(maxsize=1024)
def parse_host(authority: bytes, default_port: int) -> tuple[str, int]:
    """``host[:port]`` as in authority-form and Host (RFC 9112 §3.2.3, RFC 9110 §7.2).

    Returns the lowercased host (IPv6 without brackets, compressed) and the port. With
    ``default_port=0`` the port is required. Raises ProtocolError (400).

    Cached: a proxy sees the same few hosts on every request, and the answer depends on the
    arguments only. Refusals raise, so they are not cached.
    """
    if authority.startswith(b"["):
        close = authority.find(b"]")
        if close == -1:
            raise protocol_error("IPv6 literal without ']' in the target or Host (RFC 3986 §3.2.2)")
        literal, rest = authority[1:close], authority[close + 1 :]
        if rest and not rest.startswith(b":"):
            raise protocol_error(
                "junk after the IPv6 literal in the target or Host (RFC 3986 §3.2)"
            )
        host = _ipv6(literal)
        has_port, port = bool(rest), rest[1:]
    else:
        name, colon, port = authority.partition(b":")
        host = _reg_name_or_ipv4(name)
        has_port = bool(colon)
    if not has_port:
        if not default_port:
            raise protocol_error("CONNECT target must be 'host:port' (RFC 9112 §3.2.3)")
        return host, default_port
    # RFC 3986 §3.2.3: port = *DIGIT. We also refuse an empty port and 0.
    if not port.isdigit() or len(port) > 5 or not 0 < int(port) < 65536:
        raise protocol_error("port is not a number from 1 to 65535 (RFC 3986 §3.2.3)")
    return host, int(port)


def _ipv6(literal: bytes) -> str:
    # RFC 3986 §3.2.2: IP-literal; no IPvFuture and no zone identifier ("%25", RFC 6874): a
    # zone names an interface of the client's machine, which means nothing to a proxy.
    if b"%" in literal:
        raise protocol_error(
            "IPv6 zone identifiers are not accepted in a target or Host (RFC 3986 §3.2.2)"
        )
    try:
        return ipaddress.IPv6Address(literal.decode("ascii")).compressed
    except ValueError:
        raise protocol_error(
            "invalid IPv6 literal in the target or Host (RFC 3986 §3.2.2)"
        ) from None


def _reg_name_or_ipv4(name: bytes) -> str:
    if not name:
        raise protocol_error("empty host in the target or Host (RFC 9110 §4.2.1)")
    # RFC 1035 §2.3.4: a name is at most 255 octets.
    if len(name) > 255 or name.translate(None, _REG_NAME):
        raise protocol_error(
            "host is not a DNS name (letters, digits, '-', '.', '_') or an IP address "
            "(RFC 3986 §3.2.2)"
        )
    # A name whose last label is a number is an IPv4 address to resolvers (inet_aton reads
    # "127.1", "0x7f.1" and "2130706433" as 127.0.0.1), and to the WHATWG URL standard. Only
    # the dotted-quad form is let through, so that the host waylay checks (ignore lists, loop
    # refusal) is the host it connects to.
    last = name.rstrip(b".").rpartition(b".")[2]
    if last[:1].isdigit() and (
        last.isdigit() or (last[:2] in (b"0x", b"0X") and not last[2:].translate(None, _HEXDIG))
    ):
        try:
            ipaddress.IPv4Address(name.decode("ascii"))
        except ValueError:
            raise protocol_error(
                "host looks like an IPv4 address but is not a dotted quad (RFC 3986 §3.2.2)"
            ) from None
    return name.decode("ascii").lower()
