"""The client's first TLS message, read from the bytes it sent (RFC 8446 §4.1.2, §5.1).

Theory of operation
-------------------
Before waylay can decide anything about a TLS connection (pass it through untouched, which
names to forge a certificate for, which ALPN to offer upstream) it must read the ClientHello
that the client sent in the clear. ``parse_client_hello`` takes the bytes received so far and
answers with a ``ClientHello``, with ``None`` (a valid start: wait for more), or with
``ClientHelloError`` (these bytes can never become one). It consumes nothing: the caller keeps
the bytes for the TLS engine, and ``ClientHello.record_bytes`` says where the records that
carried the ClientHello end.

Two layers. The record layer (RFC 8446 §5.1) walks the TLS records and gathers the handshake
message, which a client may fragment over many records, arriving in any TCP segmentation. Each
record header is checked as soon as its bytes are there, and so is the message header (type,
length), so that garbage is refused without waiting for a body that may never come. The message
layer reads the ClientHello body once it is whole, and with it the three extensions the proxy
decides on: server_name (RFC 6066 §3), ALPN (RFC 7301 §3.1), supported_versions (RFC 8446
§4.2.1). Each call starts afresh on the longer buffer; the work is linear in the input (the
fragments are joined once), so a hello cut into thousands of tiny records costs no more than
their bytes.

Every bounds-checked read goes through ``_Cursor``: a length that overruns its enclosing
structure is a ``ClientHelloError`` naming both; in the received bytes, running out means
"need more".

Strict where the grammar is: vector bounds (RFC 8446 §3.4), no duplicate extension (§4.2), the
ClientHello ends at a record boundary (§5.1), nothing after the extensions block. Lenient where
real clients differ and nothing can be misread: no extensions block at all (TLS 1.2), server
names of unknown type, the SNI kept exactly as sent. Does not own: what the names mean (ignore
lists, certificate names), TLS itself, IO of any kind.

Limits: ``max_size`` bounds the handshake message (64 KiB by default; a browser with a
post-quantum key share sends about 2 KiB); a record carries at most 2^14 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NoReturn


class ClientHelloError(ValueError):
    """Bytes that can never become a ClientHello; the message says why, fit for a log line."""


TLS_RECORD_PREFIX_LEN = 3
"""How many bytes ``looks_like_tls`` needs to decide: content type and record version."""

# RFC 8446 §5.1: a TLSPlaintext fragment MUST NOT exceed 2^14 bytes. The 2^14 + 256 allowed to
# TLSCiphertext is for protected records, and a ClientHello is never protected; OpenSSL answers
# a longer plaintext record with record_overflow, so accepting one here would only move the
# failure to the TLS engine.
MAX_RECORD_LEN = 2**14

_RECORD_HEADER_LEN = 5  # RFC 8446 §5.1: type(1) legacy_record_version(2) length(2)
_HANDSHAKE_HEADER_LEN = 4  # RFC 8446 §4: msg_type(1) length(3)
_HANDSHAKE = 22  # ContentType handshake (0x16)
_CLIENT_HELLO = 1  # HandshakeType client_hello
_CONTENT_TYPES = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}

_SERVER_NAME = 0  # RFC 6066 §3
_ALPN = 16  # RFC 7301 §3.1
_SUPPORTED_VERSIONS = 43  # RFC 8446 §4.2.1
_HOST_NAME = 0  # NameType host_name, RFC 6066 §3


@dataclass(frozen=True, slots=True)
class ClientHello:
    """What the client offered (RFC 8446 §4.1.2), and where the records carrying it end."""

    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: tuple[int, ...]
    compression_methods: bytes
    extensions: tuple[tuple[int, bytes], ...]  # (type, raw extension_data), in wire order
    sni: str | None  # server_name's host_name exactly as sent (ASCII; an A-label stays one)
    alpn: tuple[str, ...]  # the offered protocol names, in the client's order
    supported_versions: tuple[int, ...]  # extension 43; () when absent (TLS 1.2 and older)
    record_bytes: int  # input bytes of the records carrying this message, headers included

    @property
    def has_grease(self) -> bool:
        """Whether a cipher suite, extension type or supported version is GREASE (RFC 8701)."""
        return (
            any(map(_is_grease, self.cipher_suites))
            or any(_is_grease(ext_type) for ext_type, _ in self.extensions)
            or any(map(_is_grease, self.supported_versions))
        )


def _is_grease(value: int) -> bool:
    # RFC 8701 §2: 0x0A0A, 0x1A1A, ..., 0xFAFA.
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def looks_like_tls(prefix: bytes) -> bool | None:
    """Whether ``prefix`` starts like a TLS handshake record; None while too short to tell.

    A handshake record starts with content type 0x16 and a record version of 0x0300 to 0x0304
    (RFC 8446 §5.1, appendix D). A byte that rules TLS out decides as soon as it is there.
    """
    if _header_fault(prefix[:TLS_RECORD_PREFIX_LEN]) is not None:
        return False
    return True if len(prefix) >= TLS_RECORD_PREFIX_LEN else None


def parse_client_hello(
    data: bytes | bytearray | memoryview, *, max_size: int = 64 * 1024
) -> ClientHello | None:
    """The ClientHello at the start of ``data`` (raw bytes, record headers included).

    Returns None while ``data`` is a valid start and more bytes are needed; raises
    ClientHelloError when no continuation can make it a ClientHello, or when the handshake
    message announces more than ``max_size`` bytes. Bytes after the records that carry the
    ClientHello (a change_cipher_spec, early data) are not looked at.
    """
    if type(data) is not bytes:
        # One copy: nothing kept, not even a traceback's frames, pins the caller's buffer.
        data = bytes(data)
    try:
        message, record_bytes = _gather(data, max_size)
    except _NeedMore:
        return None
    return _parse_message(message, record_bytes)


# --- bounds-checked reading -------------------------------------------------------------------


class _NeedMore(Exception):
    """The received bytes end inside the first flight: wait for more."""


class _Cursor:
    """A read position inside one structure; the parser's bounds checks are all made here.

    Reading past the end of the structure raises ClientHelloError naming what was being read
    and the structure it overran.
    """

    __slots__ = ("_data", "_end", "_pos", "what")

    def __init__(self, data: bytes, what: str, start: int = 0, end: int | None = None) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else end
        self.what = what

    @property
    def pos(self) -> int:
        return self._pos

    @property
    def left(self) -> int:
        return self._end - self._pos

    def peek(self, n: int) -> bytes:
        """Up to ``n`` bytes from here, without moving."""
        return self._data[self._pos : min(self._pos + n, self._end)]

    def take(self, n: int, what: str) -> bytes:
        if n > self._end - self._pos:
            self._short(n, what)
        start = self._pos
        self._pos = start + n
        return self._data[start : self._pos]

    def take_up_to(self, n: int) -> bytes:
        """Up to ``n`` bytes: what has arrived of a structure still arriving."""
        start = self._pos
        self._pos = min(start + n, self._end)
        return self._data[start : self._pos]

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def vector(
        self,
        size: int,
        what: str,
        *,
        minimum: int = 0,
        maximum: int | None = None,
        multiple: int = 1,
    ) -> _Cursor:
        """A cursor over the vector here, whose length takes ``size`` bytes (RFC 8446 §3.4)."""
        length = self.uint(size, f"length of the {what}")
        top = (1 << 8 * size) - 1 if maximum is None else maximum
        if not minimum <= length <= top or length % multiple:
            unit = f" in steps of {multiple}" if multiple > 1 else ""
            raise ClientHelloError(
                f"{what} is {length} bytes long; it must be {minimum} to {top}{unit} "
                "(RFC 8446 §3.4)"
            )
        if length > self._end - self._pos:
            self._short(length, what)
        start = self._pos
        self._pos = start + length
        return _Cursor(self._data, what, start, self._pos)

    def rest(self) -> bytes:
        return self.take_up_to(self.left)

    def expect_end(self) -> None:
        if self._pos != self._end:
            raise ClientHelloError(f"{self.left} stray byte(s) at the end of the {self.what}")

    def _short(self, n: int, what: str) -> NoReturn:
        raise ClientHelloError(
            f"truncated {what}: {n} bytes needed, {self.left} left in the {self.what}"
        )


class _Input(_Cursor):
    """The bytes received so far: running short there means the rest has not arrived yet."""

    __slots__ = ()

    def _short(self, n: int, what: str) -> NoReturn:
        raise _NeedMore


# --- the record layer (RFC 8446 §5.1) -----------------------------------------------------------


def _header_fault(header: bytes) -> str | None:
    """Why a record header, maybe cut short, cannot be a handshake record's; None if it can."""
    if header[:1] and header[0] != _HANDSHAKE:
        name = _CONTENT_TYPES.get(header[0], "unknown")
        return f"content type {header[0]} ({name}) is not handshake (22)"
    if header[1:2] and header[1] != 3:
        return f"record version 0x{header[1]:02x}.. is not TLS (0x0300 to 0x0304)"
    if header[2:3] and header[2] > 4:
        return f"record version 0x03{header[2]:02x} is not TLS (0x0300 to 0x0304)"
    return None


def _check_record_header(header: bytes, number: int) -> None:
    """Refuse the ``number``-th record (from 1) as soon as its first bytes rule it out."""
    fault = _header_fault(header)
    if fault is None:
        return
    if number > 1:
        if header[0] != _HANDSHAKE:
            # RFC 8446 §5.1: handshake messages MUST NOT be interleaved with other record types.
            raise ClientHelloError(f"record {number} before the ClientHello's end: {fault}")
        raise ClientHelloError(f"record {number} is not a TLS record: {fault}")
    # RFC 5246 appendix E.2: an SSLv2-compatible CLIENT-HELLO has a two-byte header with the top
    # bit set, then msg_type 1 and a version of 3.x. RFC 8446 appendix D.5 advises against
    # accepting one, and no client of this century sends one.
    if header[0] & 0x80 and len(header) < 3:
        return  # which error it is (SSLv2 or not TLS) shows at the third byte: wait for it
    if header[0] & 0x80 and header[2] == _CLIENT_HELLO:
        raise ClientHelloError(
            "an SSLv2-compatible ClientHello, which is not supported (RFC 8446 appendix D.5)"
        )
    raise ClientHelloError(f"not a TLS handshake record: {fault}")


def _gather(data: bytes, max_size: int) -> tuple[bytes, int]:
    """The handshake message carried by the records at the start of ``data``, and their length.

    Raises _NeedMore if it is not all there yet.
    """
    received = _Input(data, "received bytes")
    fragments: list[bytes] = []
    gathered = 0  # handshake bytes in the complete records so far
    needed = -1  # the whole message's length, once its header has arrived
    while True:
        _check_record_header(received.peek(TLS_RECORD_PREFIX_LEN), len(fragments) + 1)
        header = received.take(_RECORD_HEADER_LEN, "record header")
        length = header[3] << 8 | header[4]
        if length > MAX_RECORD_LEN:
            raise ClientHelloError(
                f"record of {length} bytes, over the {MAX_RECORD_LEN} bytes of an unprotected "
                "record (RFC 8446 §5.1)"
            )
        if length == 0:
            # RFC 8446 §5.1: zero-length fragments of Handshake types MUST NOT be sent.
            raise ClientHelloError("empty handshake record (RFC 8446 §5.1)")
        fragment = received.take_up_to(length)
        fragments.append(fragment)
        if needed < 0:
            needed = _message_length(fragments, max_size)
        if 0 <= needed < gathered + length:
            # RFC 8446 §5.1: the ClientHello can precede a key change, so it MUST end at a
            # record boundary. A TLS 1.2 client sends nothing after it before the server answers.
            raise ClientHelloError(
                f"the ClientHello's last record goes on for {gathered + length - needed} "
                "byte(s) after it (RFC 8446 §5.1: it must end at a record boundary)"
            )
        if len(fragment) < length:
            raise _NeedMore
        gathered += length
        if gathered == needed:
            return b"".join(fragments), received.pos


def _message_length(fragments: list[bytes], max_size: int) -> int:
    """The handshake message's length with its header, or -1 while the header is incomplete.

    Empty records are refused, so the header lies in the first four fragments.
    """
    header = b"".join(fragments[:_HANDSHAKE_HEADER_LEN])[:_HANDSHAKE_HEADER_LEN]
    if header[:1] and header[0] != _CLIENT_HELLO:
        raise ClientHelloError(f"handshake message of type {header[0]}, not client_hello (1)")
    if len(header) < _HANDSHAKE_HEADER_LEN:
        return -1
    length = int.from_bytes(header[1:], "big")
    if length > max_size:
        raise ClientHelloError(f"ClientHello longer than {max_size} bytes ({length})")
    return _HANDSHAKE_HEADER_LEN + length


# --- the message (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 has the same layout) -----------------------


def _parse_message(message: bytes, record_bytes: int) -> ClientHello:
    body = _Cursor(message, "ClientHello", start=_HANDSHAKE_HEADER_LEN)
    legacy_version = body.uint(2, "legacy_version")
    random = body.take(32, "random")
    session_id = body.vector(1, "legacy_session_id", maximum=32).rest()
    suites = body.vector(2, "cipher_suites", minimum=2, maximum=2**16 - 2, multiple=2).rest()
    compression = body.vector(1, "legacy_compression_methods", minimum=1).rest()
    extensions: tuple[tuple[int, bytes], ...] = ()
    # Leniency: RFC 5246 §7.4.1.2 lets a TLS 1.2 ClientHello end here, without an extensions
    # block, and its bound is <0..2^16-1> where RFC 8446 has <8..2^16-1>. A TLS 1.3 server
    # refuses such a hello itself; that is the TLS engine's business, not the parser's.
    if body.left:
        extensions = _extensions(body.vector(2, "extensions block"))
        body.expect_end()
    found = dict(extensions)
    server_name = found.get(_SERVER_NAME)
    alpn = found.get(_ALPN)
    versions = found.get(_SUPPORTED_VERSIONS)
    return ClientHello(
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        cipher_suites=struct.unpack(f">{len(suites) // 2}H", suites),
        compression_methods=compression,
        extensions=extensions,
        sni=None if server_name is None else _server_name(server_name),
        alpn=() if alpn is None else _alpn(alpn),
        supported_versions=() if versions is None else _supported_versions(versions),
        record_bytes=record_bytes,
    )


def _extensions(block: _Cursor) -> tuple[tuple[int, bytes], ...]:
    extensions: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    while block.left:
        ext_type = block.uint(2, "extension type")
        data = block.vector(2, f"extension 0x{ext_type:04x}").rest()
        if ext_type in seen:
            # RFC 8446 §4.2: there MUST NOT be more than one extension of the same type.
            raise ClientHelloError(f"extension 0x{ext_type:04x} appears twice (RFC 8446 §4.2)")
        seen.add(ext_type)
        extensions.append((ext_type, data))
    return tuple(extensions)


def _server_name(data: bytes) -> str | None:
    """The host_name of a server_name extension, or None if it names no host (RFC 6066 §3)."""
    extension = _Cursor(data, "server_name extension")
    names = extension.vector(2, "server_name list", minimum=1)
    extension.expect_end()
    host: str | None = None
    while names.left:
        name_type = names.uint(1, "server name type")
        # Leniency: RFC 6066 §3 defines host_name only and leaves the layout of other types
        # open. Like RFC 3546 before it (and Go's crypto/tls), every entry is read as a name
        # with a two-byte length, and the types we do not know are skipped.
        minimum = 1 if name_type == _HOST_NAME else 0
        name = names.vector(2, f"server name of type {name_type}", minimum=minimum).rest()
        if name_type != _HOST_NAME:
            continue
        if host is not None:
            raise ClientHelloError("more than one host_name in server_name (RFC 6066 §3)")
        if not name.isascii():
            raise ClientHelloError("host_name in server_name is not ASCII (RFC 6066 §3)")
        # Kept as sent: not lowercased, a trailing dot kept, not checked as a DNS name. Which
        # names are acceptable (to connect to, to put in a certificate) is decided elsewhere.
        host = name.decode("ascii")
    return host


def _alpn(data: bytes) -> tuple[str, ...]:
    """The protocol names of an ALPN extension, in the client's order (RFC 7301 §3.1)."""
    extension = _Cursor(data, "ALPN extension")
    names = extension.vector(2, "ALPN protocol_name_list", minimum=2)
    extension.expect_end()
    protocols: list[str] = []
    while names.left:
        # RFC 7301 §3.1: ProtocolName is opaque<1..2^8-1>; empty names MUST NOT be included.
        name = names.vector(1, "ALPN protocol name", minimum=1).rest()
        if not name.isascii():
            # Registered names are ASCII; a proxy that cannot show or forward a name as text
            # refuses it rather than guessing an encoding.
            raise ClientHelloError(f"ALPN protocol name {name[:40]!r} is not ASCII")
        protocols.append(name.decode("ascii"))
    return tuple(protocols)


def _supported_versions(data: bytes) -> tuple[int, ...]:
    """The versions a client offers in supported_versions (RFC 8446 §4.2.1)."""
    extension = _Cursor(data, "supported_versions extension")
    versions = extension.vector(
        1, "supported_versions list", minimum=2, maximum=254, multiple=2
    ).rest()
    extension.expect_end()
    return struct.unpack(f">{len(versions) // 2}H", versions)
