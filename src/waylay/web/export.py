"""A stored request as a command to send it again: a curl command line, or httpx in Python.

Theory of operation
-------------------
The goal is the same bytes the server got, not a look-alike: the method, the request target
as it was (no dot segments removed, no globbing), every header field in its case and order —
but the hop-by-hop ones, dropped as the proxy drops them (Proxy-Authorization holds the
proxy's credentials, never the server's) — and the body byte for byte. What each client
would add on its own is taken away, and what it would change is pinned.

curl: every word is quoted for POSIX sh with `shlex.quote`, so nothing in a URL, a header or
a body is ever read by the shell as syntax (`$(...)`, backticks, quotes, newlines). curl's own
readings are turned off too: `--globoff` (braces and brackets in the URL), `--path-as-is`
(dot segments), a header's empty value is written `Name;` (curl removes a header written
`Name:`), and the headers curl adds by itself (User-Agent, Accept, a form Content-Type with a
body) are removed when the original had none. A body goes as `--data-binary` when it is text
curl will not read as `@file`; otherwise — NUL bytes, bytes that are not UTF-8, control
characters, a leading `@` — it is piped in from `printf`, its bytes as octal escapes, and
curl reads it from stdin (`--data-binary @-`). A header field that is not UTF-8 text (Latin-1
bytes) is made the same way, by a `printf` inside its word: the command is text, and only
printf can put those bytes back.

httpx: Python literals are `repr`s, which are exact and quote themselves; the request is built,
its headers replaced by exactly the stored fields (httpx would add its own), and its target
given as it was (`extensions={"target": ...}`: httpx would normalize the path).

Limits: the request line and fields must be what HTTP/1 allows (the store's are): a field
name that is not a token is refused (ValueError) rather than guessed at, as is a request whose
body was not stored whole, or a tunnel. HTTP/2 is not spoken by either command: the stored
flows are HTTP/1.
"""

from __future__ import annotations

import re
import shlex

from waylay.flow import Flow
from waylay.http1.forwarding import authority, forward_request_headers
from waylay.store.schema import REQUEST_DROPPED, REQUEST_TRUNCATED

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Fields curl adds when the request has none of them; and those it adds to a body.
_CURL_DEFAULTS = (b"user-agent", b"accept")
_CURL_BODY_DEFAULTS = (b"content-type", b"expect")
_PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def _fields(flow: Flow, body: bytes) -> list[tuple[bytes, bytes]]:
    """The request's fields, once it is known to be a request that can be sent as stored."""
    if flow.kind != "http" or flow.request.method == "CONNECT":
        raise ValueError("only an HTTP request can be sent again (not a tunnel or TCP flow)")
    stored_whole = not flow.capture_flags & (REQUEST_TRUNCATED | REQUEST_DROPPED)
    if not stored_whole or len(body) < flow.request_body_size:
        raise ValueError("the request's body was not stored whole: it cannot be sent again")
    request = flow.request
    default_port = 443 if request.scheme == "https" else 80
    # What the server got: the fields for the proxy (Proxy-Authorization: its credentials,
    # Proxy-Connection) and the other hop-by-hop ones are not the request's own.
    fields = forward_request_headers(
        request.headers.fields,
        authority(request.host, request.port, default_port),
        http10=request.http_version == "HTTP/1.0",
    )
    for name, value in fields:
        if not _TOKEN.fullmatch(name) or b"\r" in value or b"\n" in value or b"\0" in value:
            raise ValueError(f"the header field {name!r} cannot be sent as it is")
    return fields


def _has(fields: list[tuple[bytes, bytes]], name: bytes) -> bool:
    return any(field_name.lower() == name for field_name, _ in fields)


def _is_plain_text(body: bytes) -> bool:
    """Bytes that are UTF-8 text a terminal shows as it is, and curl sends as it is."""
    if body.startswith(b"@") or not all(b in _PRINTABLE or b >= 0x80 for b in body):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _word(data: bytes) -> str:
    """A shell word that is exactly ``data`` (bytes without NUL or line breaks)."""
    if _is_plain_text(data) and b"\n" not in data and b"\r" not in data:
        return shlex.quote(data.decode("utf-8"))
    # Bytes that are not UTF-8 text: printf makes them, and the quotes keep them one word.
    return f'"$(printf {shlex.quote(_printf_format(data))})"'


def _printf_format(body: bytes) -> str:
    """A printf format that prints exactly ``body``: octal escapes for all but plain ASCII."""
    out = []
    for index, byte in enumerate(body):
        if index == 0 and byte == 0x2D:
            out.append("\\055")  # a leading - would be an option to printf
        elif byte in (0x25, 0x5C):  # % and \\ mean something to printf
            out.append("%%" if byte == 0x25 else "\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def curl_command(flow: Flow, body: bytes) -> str:
    """``flow``'s request as a POSIX sh command running curl; ``body`` is its stored body."""
    request = flow.request
    fields = _fields(flow, body)
    words = ["curl", "--globoff", "--path-as-is"]
    words.append("--http1.0" if request.http_version == "HTTP/1.0" else "--http1.1")
    if request.method == "HEAD":
        words.append("--head")
    elif request.method != "GET" or body:
        words += ["--request", request.method]
    shell = [shlex.quote(word) for word in words]
    for name, value in fields:
        shell += ["--header", _word(name + b": " + value if value else name + b";")]
    defaults = _CURL_DEFAULTS + (_CURL_BODY_DEFAULTS if body else ())
    shell += [
        f"--header {default.decode().title()}:" for default in defaults if not _has(fields, default)
    ]
    pipe = ""
    if body and _is_plain_text(body):
        shell += ["--data-binary", shlex.quote(body.decode("utf-8"))]
    elif body:
        pipe = f"printf {shlex.quote(_printf_format(body))} | "
        shell += ["--data-binary", "@-"]
    shell += ["--url", shlex.quote(request.url)]
    return pipe + " ".join(shell)


def httpx_code(flow: Flow, body: bytes) -> str:
    """``flow``'s request as a Python script using httpx; ``body`` is its stored body."""
    request = flow.request
    fields = _fields(flow, body)
    target = request.path.encode("ascii", "replace")
    headers = "".join(f"        ({name!r}, {value!r}),\n" for name, value in fields)
    return (
        "import httpx\n"
        "\n"
        "# Exactly the stored request: its header fields replace httpx's own, and its target\n"
        "# is sent as it was.\n"
        "with httpx.Client() as client:\n"
        "    request = client.build_request(\n"
        f"        {request.method!r},\n"
        f"        {request.url!r},\n"
        f"        content={body!r},\n"
        f"        extensions={{'target': {target!r}}},\n"
        "    )\n"
        "    request.headers = httpx.Headers([\n"
        f"{headers}"
        "    ])\n"
        "    response = client.send(request)\n"
        "\n"
        "print(response.status_code, response.reason_phrase)\n"
        "print(response.text)\n"
    )
