"""What a proxy changes in a message on its way through (RFC 9110 §7.6.1, RFC 9112 §3.2.2, §9).

Theory of operation
-------------------
Hop-by-hop fields describe one connection, not the message: a proxy drops them, and drops every
field the sender named in Connection, before it forwards (RFC 9110 §7.6.1). Everything else
goes on unchanged, in its order and its case, because users read waylay's traffic to see what
their clients really send. The request's Host is set to the authority waylay connects to
(RFC 9112 §3.2.2), in place.

One exception to "named in Connection means dropped": Host, Content-Length and
Transfer-Encoding are never dropped that way. ``Connection: content-length`` is a known trick
to make a proxy strip a body's framing and desynchronise the server (hop-by-hop header abuse);
the framing of what waylay forwards is decided by ``body.py``, not by the sender's Connection.

Trailers are filtered the same way: a trailer section may not carry framing, routing or
connection fields (RFC 9110 §6.5.1), so those stay in the flow and do not go on.

Keep-alive is decided here too: whether the client and the server may send another message on
the same connection (RFC 9112 §9.3). Owns: those rules. Does not own: framing, IO.
"""

from __future__ import annotations

from waylay.http1.head import Fields, RequestHead, ResponseHead, header_value

# RFC 9110 §7.6.1: connection-specific fields, removed by a proxy before forwarding.
HOP_BY_HOP: frozenset[bytes] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"upgrade",
    }
)
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
# RFC 9110 §7.6.1 lets a sender name any field in Connection; these decide the framing and
# the target, which waylay sets itself (see the module docstring: hop-by-hop header abuse).
_NEVER_DROPPED = _FRAMING | {b"host"}
# RFC 9110 §6.5.1: fields that frame or route a message, or belong to the connection, are not
# allowed in a trailer section; a recipient that removes the chunked coding MAY discard trailer
# fields (RFC 9112 §7.1.2). A next hop that merges trailers into the header section would
# otherwise take a second Content-Length, Transfer-Encoding or Host from them.
_NOT_IN_TRAILERS = HOP_BY_HOP | _NEVER_DROPPED
_HOP_BY_HOP_BUT_UPGRADE = HOP_BY_HOP - {b"upgrade"}
_NO_TOKENS: frozenset[bytes] = frozenset()


def connection_tokens(headers: Fields) -> frozenset[bytes]:
    """The lowercased options of every Connection field (RFC 9110 §7.6.1)."""
    tokens: set[bytes] | None = None
    for name, value in headers:
        if len(name) == 10 and name.lower() == b"connection":
            if tokens is None:
                tokens = set()
            for item in value.split(b","):
                token = item.strip(b" \t").lower()
                if token:
                    tokens.add(token)
    return _NO_TOKENS if tokens is None else frozenset(tokens)


def is_upgrade_request(head: RequestHead) -> bool:
    """True if the client asks to switch protocols (RFC 9110 §7.8): Upgrade, named in Connection.

    Never for HTTP/1.0: a server must ignore Upgrade there (§7.8), and sent on as HTTP/1.1 it
    would be acted upon.
    """
    return (
        head.version == b"HTTP/1.1"
        and header_value(head.headers, b"upgrade") is not None
        and b"upgrade" in connection_tokens(head.headers)
    )


def authority(host: str, port: int, default_port: int) -> bytes:
    """``host[:port]`` for a Host field (RFC 9110 §7.2): IPv6 in brackets, default port left out."""
    name = f"[{host}]" if ":" in host else host
    if port == default_port:
        return name.encode("ascii")
    return f"{name}:{port}".encode("ascii")


def forward_request_headers(
    headers: Fields, authority: bytes, *, upgrade: bool = False, http10: bool = False
) -> Fields:
    """The request's fields as waylay forwards them, once its framing has been accepted.

    Host is replaced by ``authority`` in place (inserted first if absent); hop-by-hop fields
    and those named in Connection are dropped; the rest keep their case and order. With
    ``upgrade=True``, Upgrade is kept and a single ``Connection: Upgrade`` is sent.
    Transfer-Encoding stays (the body is forwarded chunked again); it and Content-Length are
    sent in canonical form (see ``_canonical_framing``). With ``http10=True`` (an HTTP/1.0
    request, forwarded as HTTP/1.1) Expect is dropped: a server ignores a 100-continue
    expectation from HTTP/1.0 (RFC 9110 §10.1.1), so it must not be passed on as HTTP/1.1's.
    """
    drop = _dropped(headers, keep_upgrade=upgrade)
    if http10:
        drop = drop | {b"expect"}
    forwarded: Fields = []
    host_seen = False
    framing = 0  # framing lines, or 2 once one is not in canonical form
    for name, value in headers:
        lower = name.lower()
        if lower == b"host":
            if not host_seen:
                forwarded.append((name, authority))
                host_seen = True
        elif lower not in drop:
            forwarded.append((name, value))
            if lower in _FRAMING:
                framing += 1 if _is_canonical(lower, value) else 2
    if not host_seen:
        # RFC 9112 §3.2: a client MUST send Host as the first field after the request line.
        forwarded.insert(0, (b"Host", authority))
    if framing > 1:
        forwarded = _canonical_framing(forwarded)
    if upgrade:
        forwarded.append((b"Connection", b"Upgrade"))
    return forwarded


def forward_response_headers(
    headers: Fields, *, upgrade: bool = False, close: bool = False, dechunk: bool = False
) -> Fields:
    """The response's fields as waylay forwards them, once its framing has been accepted.

    Hop-by-hop fields and those named in Connection are dropped, the rest kept in order and
    case; Content-Length and Transfer-Encoding in canonical form (see ``_canonical_framing``).
    ``upgrade`` keeps Upgrade and sends ``Connection: Upgrade`` (for a 101); ``close``
    appends ``Connection: close``; ``dechunk`` drops Transfer-Encoding, for an HTTP/1.0
    client that gets the body close-delimited (RFC 9112 §6.1: HTTP/1.0 has no chunked).
    """
    drop = _dropped(headers, keep_upgrade=upgrade)
    if dechunk:
        drop = drop | {b"transfer-encoding"}
    forwarded: Fields = []
    framing = 0  # framing lines, or 2 once one is not in canonical form
    for name, value in headers:
        lower = name.lower()
        if lower not in drop:
            forwarded.append((name, value))
            if lower in _FRAMING:
                framing += 1 if _is_canonical(lower, value) else 2
    if framing > 1:
        forwarded = _canonical_framing(forwarded)
    options = []
    if upgrade:
        options.append(b"Upgrade")
    if close:
        options.append(b"close")
    if options:
        forwarded.append((b"Connection", b", ".join(options)))
    return forwarded


def with_body_length(fields: Fields, length: int | None) -> Fields:
    """``fields`` framed anew for a body waylay sends itself: ``Content-Length: length``, or
    ``Transfer-Encoding: chunked`` when ``length`` is None; the old framing fields dropped.

    For a body an addon read whole (and may have changed) or transforms as it streams.
    """
    kept = [(n, v) for n, v in fields if n.lower() not in _FRAMING]
    if length is None:
        kept.append((b"Transfer-Encoding", b"chunked"))
    else:
        kept.append((b"Content-Length", b"%d" % length))
    return kept


def forward_trailers(trailers: Fields) -> Fields:
    """The trailer fields waylay sends on: all but those that frame or route a message or
    belong to the connection (RFC 9110 §6.5.1), in their order and case.

    The flow keeps every trailer as received; only the next hop does not get these.
    """
    return [(name, value) for name, value in trailers if name.lower() not in _NOT_IN_TRAILERS]


def client_keep_alive(head: RequestHead) -> bool:
    """May the client send another request on this connection (RFC 9112 §9.3)?

    HTTP/1.1 unless it said ``close``. HTTP/1.0 never: waylay closes an HTTP/1.0 client's
    connection after each response rather than speak HTTP/1.0's keep-alive extension.
    """
    if head.version != b"HTTP/1.1":
        return False
    return b"close" not in connection_tokens(head.headers)


def server_keep_alive(head: ResponseHead) -> bool:
    """May waylay send the server another request after this response (RFC 9112 §9.3)?

    HTTP/1.1 unless it said ``close``; HTTP/1.0 only with ``Connection: keep-alive``. A
    close-delimited body ends the connection whatever this says.
    """
    tokens = connection_tokens(head.headers)
    if b"close" in tokens:
        return False
    return head.version == b"HTTP/1.1" or b"keep-alive" in tokens


def _dropped(headers: Fields, *, keep_upgrade: bool) -> frozenset[bytes]:
    tokens = connection_tokens(headers)
    if not tokens:  # most messages: only the hop-by-hop fields themselves
        return _HOP_BY_HOP_BUT_UPGRADE if keep_upgrade else HOP_BY_HOP
    drop = (HOP_BY_HOP | tokens) - _NEVER_DROPPED
    if keep_upgrade:
        drop = drop - {b"upgrade"}
    return drop


def _is_canonical(lower: bytes, value: bytes) -> bool:
    """A lone framing line that may go on as it is: a plain length, or plain ``chunked``."""
    if lower == b"content-length":
        return value.isdigit()
    return value == b"chunked"


def _canonical_framing(headers: Fields) -> Fields:
    """One ``Content-Length: N`` and one lowercased ``Transfer-Encoding`` line, in place.

    body.py accepted values the RFC allows but a careless next hop may misread: "Chunked"
    (RFC 9112 §7: case-insensitive), a length repeated as "5, 5" or on two lines (RFC 9110
    §8.6), codings split over two lines (RFC 9110 §5.3). Forwarded as sent,
    such a hop could frame the body differently (no chunked, no length) and read the rest as a
    second request. So the framing fields go on in the one form every parser agrees on. The
    values were validated before this runs: all lengths are equal, the codings are tokens.
    """
    canonical: Fields = []
    codings: list[bytes] = []
    coding_at = -1
    length_seen = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            if not length_seen:
                canonical.append((name, value.split(b",", 1)[0].strip(b" \t")))
                length_seen = True
        elif lower == b"transfer-encoding":
            if coding_at == -1:
                coding_at = len(canonical)
                canonical.append((name, b""))
            codings += [coding.strip(b" \t").lower() for coding in value.split(b",")]
        else:
            canonical.append((name, value))
    if coding_at != -1:
        canonical[coding_at] = (canonical[coding_at][0], b", ".join(codings))
    return canonical
