"""The ClientHello parser: real captures, reassembly over records and segments, and each rule.

The captures in the shared test data come from real clients; the tables are built with the
small builder below (``hello(...)`` and its pieces), so that each bad input differs from a good
one in the one place its rule is about. ``test_clienthello_properties.py`` holds the hypothesis
properties and reuses the helpers here.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from tests.testdata import CLIENTHELLOS
from waylay.tls.clienthello import (
    MAX_RECORD_LEN,
    TLS_RECORD_PREFIX_LEN,
    ClientHello,
    ClientHelloError,
    looks_like_tls,
    parse_client_hello,
)

# --- the captures -----------------------------------------------------------------------------

CAPTURES = CLIENTHELLOS


def capture_names() -> list[str]:
    """The capture files, for parametrize. Never empty: an empty parameter set would be a skip,
    and a missing directory must fail."""
    names = sorted(path.name for path in CAPTURES.glob("*.bin"))
    return names or ["missing-testdata.bin"]


def capture(name: str) -> bytes:
    assert CAPTURES.is_dir(), f"the ClientHello captures are missing: {CAPTURES}"
    return (CAPTURES / name).read_bytes()


def expectations() -> dict[str, dict[str, Any]]:
    assert CAPTURES.is_dir(), f"the ClientHello captures are missing: {CAPTURES}"
    expected: dict[str, dict[str, Any]] = json.loads((CAPTURES / "expected.json").read_text())
    return expected


# --- the builder ------------------------------------------------------------------------------


def vec(size: int, data: bytes) -> bytes:
    """A vector with its length in ``size`` bytes (RFC 8446 §3.4)."""
    return len(data).to_bytes(size, "big") + data


def u16s(values: Iterable[int]) -> bytes:
    return b"".join(value.to_bytes(2, "big") for value in values)


def server_name(*names: bytes, name_type: int = 0) -> tuple[int, bytes]:
    return 0, vec(2, b"".join(bytes([name_type]) + vec(2, name) for name in names))


def alpn(*names: bytes) -> tuple[int, bytes]:
    return 16, vec(2, b"".join(vec(1, name) for name in names))


def supported_versions(*versions: int) -> tuple[int, bytes]:
    return 43, vec(1, u16s(versions))


RANDOM = bytes(range(32))
SNI = server_name(b"www.example.test")
ALPN = alpn(b"h2", b"http/1.1")
VERSIONS = supported_versions(0x0304, 0x0303)


def body(
    *,
    version: int = 0x0303,
    random: bytes = RANDOM,
    session_id: bytes = b"",
    suites: Sequence[int] = (0x1301, 0x1302, 0xC02F),
    compression: bytes = b"\x00",
    extensions: Sequence[tuple[int, bytes]] | None = (SNI, ALPN, VERSIONS),
) -> bytes:
    """A ClientHello body (RFC 8446 §4.1.2); ``extensions=None`` leaves out the block."""
    out = version.to_bytes(2, "big") + random + vec(1, session_id)
    out += vec(2, u16s(suites)) + vec(1, compression)
    if extensions is not None:
        out += vec(2, b"".join(t.to_bytes(2, "big") + vec(2, data) for t, data in extensions))
    return out


def handshake(message_body: bytes, msg_type: int = 1) -> bytes:
    """A handshake message (RFC 8446 §4): type, 3-byte length, body."""
    return bytes([msg_type]) + len(message_body).to_bytes(3, "big") + message_body


def records(
    message: bytes,
    sizes: int | Sequence[int] = MAX_RECORD_LEN,
    *,
    content_type: int = 0x16,
    version: int = 0x0301,
) -> bytes:
    """``message`` cut into records of ``sizes`` bytes (one size, or a cycle of sizes)."""
    cycle = itertools.cycle([sizes] if isinstance(sizes, int) else sizes)
    out = bytearray()
    start = 0
    while start < len(message):
        fragment = message[start : start + next(cycle)]
        out += bytes([content_type]) + version.to_bytes(2, "big") + vec(2, fragment)
        start += len(fragment)
    return bytes(out)


def hello(**fields: Any) -> bytes:
    """The wire bytes of a ClientHello in one record, built from ``body``'s fields."""
    return records(handshake(body(**fields)))


def handshake_message(wire: bytes) -> bytes:
    """The handshake payload of records: the inverse of ``records``."""
    payload = bytearray()
    start = 0
    while start < len(wire):
        length = int.from_bytes(wire[start + 3 : start + 5], "big")
        payload += wire[start + 5 : start + 5 + length]
        start += 5 + length
    return bytes(payload)


def refragment(wire: bytes, sizes: int | Sequence[int]) -> bytes:
    return records(handshake_message(wire), sizes)


def segments(data: bytes, size: int) -> list[bytes]:
    """What a reader has received after each TCP segment of ``size`` bytes."""
    return [data[:end] for end in range(size, len(data) + size, size)]


# --- real clients -----------------------------------------------------------------------------


def test_captures_are_all_described() -> None:
    assert CAPTURES.is_dir(), f"the ClientHello captures are missing: {CAPTURES}"
    assert set(expectations()) == set(capture_names())


@pytest.mark.parametrize("name", capture_names())
def test_capture(name: str) -> None:
    data = capture(name)
    expected = expectations()[name]
    parsed = parse_client_hello(data)
    assert parsed is not None
    assert parsed.sni == expected["sni"]
    assert parsed.alpn == tuple(expected["alpn"])
    assert parsed.supported_versions == tuple(int(v, 16) for v in expected["versions"])
    assert len(parsed.extensions) == expected["n_ext"]
    assert parsed.legacy_version == int(expected["legacy_version"], 16)
    assert parsed.has_grease is expected["grease"]
    assert parsed.record_bytes == len(data)
    assert looks_like_tls(data) is True
    assert len(parsed.random) == 32
    assert parsed.compression_methods == b"\x00"


@pytest.mark.parametrize("name", capture_names())
def test_capture_every_prefix_needs_more(name: str) -> None:
    data = capture(name)
    assert all(parse_client_hello(data[:end]) is None for end in range(len(data)))


@pytest.mark.parametrize("name", capture_names())
def test_capture_input_types(name: str) -> None:
    data = capture(name)
    parsed = parse_client_hello(data)
    assert parse_client_hello(bytearray(data)) == parsed
    assert parse_client_hello(memoryview(data)) == parsed
    assert parse_client_hello(memoryview(b"xx" + data)[2:]) == parsed


@pytest.mark.parametrize("name", capture_names())
def test_capture_with_the_rest_of_the_flight(name: str) -> None:
    # A TLS 1.3 client in compatibility mode sends change_cipher_spec, maybe early data.
    data = capture(name)
    rest = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x05early" + b"\xff" * 20
    parsed = parse_client_hello(data + rest)
    assert parsed == parse_client_hello(data)
    assert parsed is not None
    assert parsed.record_bytes == len(data)


# --- reassembly: any records, any segments (RFC 8446 §5.1) --------------------------------------

RECORD_SIZES: list[object] = [
    pytest.param(1, id="records-1"),
    pytest.param(7, id="records-7"),
    pytest.param(100, id="records-100"),
    pytest.param(512, id="records-512"),
    pytest.param((1, 7, 100, 512), id="records-mixed"),
]


@pytest.mark.parametrize("sizes", RECORD_SIZES)
@pytest.mark.parametrize("segment", [1, 5, 1460])
@pytest.mark.parametrize("name", capture_names())
def test_refragmented_capture(name: str, sizes: int | tuple[int, ...], segment: int) -> None:
    original = capture(name)
    whole = parse_client_hello(original)
    assert whole is not None
    data = refragment(original, sizes)
    if len(data) > 4000:
        # Every prefix of Chromium's hello in 1-byte records is 12M record reads. Segments of
        # a prime size still cut at every offset of the 6-byte records, at a fraction of it.
        segment = {1: 31, 5: 37}.get(segment, segment)
    received = segments(data, segment)
    assert [parse_client_hello(part) for part in received[:-1]] == [None] * (len(received) - 1)
    parsed = parse_client_hello(received[-1])
    assert parsed is not None
    assert parsed.record_bytes == len(data)
    assert dataclasses.replace(parsed, record_bytes=whole.record_bytes) == whole


def test_largest_clienthello_in_one_byte_records() -> None:
    # 65 536 records, one call: linear, or this test would not finish.
    padding = (21, bytes(64 * 1024 - len(body(extensions=[SNI])) - 4))  # RFC 7685 padding
    message = handshake(body(extensions=(SNI, padding)))
    assert len(message) == 4 + 64 * 1024
    data = records(message, 1)
    parsed = parse_client_hello(data)
    assert parsed is not None
    assert parsed.sni == "www.example.test"
    assert parsed.record_bytes == len(data)


# --- what a good ClientHello gives -------------------------------------------------------------


def test_built_hello_every_field() -> None:
    data = hello(session_id=b"\x07" * 32, suites=(0x1301, 0x00FF), compression=b"\x01\x00")
    assert parse_client_hello(data) == ClientHello(
        legacy_version=0x0303,
        random=RANDOM,
        session_id=b"\x07" * 32,
        cipher_suites=(0x1301, 0x00FF),
        compression_methods=b"\x01\x00",
        extensions=(SNI, ALPN, VERSIONS),
        sni="www.example.test",
        alpn=("h2", "http/1.1"),
        supported_versions=(0x0304, 0x0303),
        record_bytes=len(data),
    )


GOOD: list[object] = [
    # RFC 5246 §7.4.1.2: a TLS 1.2 hello may end after the compression methods.
    pytest.param(dict(extensions=None), dict(extensions=(), sni=None), id="no-extensions-block"),
    pytest.param(dict(extensions=()), dict(extensions=(), alpn=()), id="empty-extensions-block"),
    pytest.param(
        dict(extensions=[server_name(b"WWW.Example.TEST.")]),
        dict(sni="WWW.Example.TEST."),
        id="sni-kept-as-sent",
    ),
    pytest.param(
        dict(extensions=[server_name(b"xn--bcher-kva.example")]),
        dict(sni="xn--bcher-kva.example"),
        id="sni-a-label-kept",
    ),
    # RFC 6066 §3: other name types are skipped, read with a two-byte length.
    pytest.param(
        dict(extensions=[server_name(b"opaque", name_type=7)]),
        dict(sni=None),
        id="sni-unknown-type-only",
    ),
    pytest.param(
        dict(extensions=[(0, vec(2, b"\x07" + vec(2, b"x") + b"\x00" + vec(2, b"a.test")))]),
        dict(sni="a.test"),
        id="sni-after-unknown-type",
    ),
    pytest.param(
        dict(extensions=[alpn(b"http/1.1", b"h2", b"\x0a\x0a")]),
        dict(alpn=("http/1.1", "h2", "\n\n")),
        id="alpn-order-and-grease-name",
    ),
    pytest.param(
        dict(extensions=[supported_versions(0x0304)]),
        dict(supported_versions=(0x0304,)),
        id="one-supported-version",
    ),
    pytest.param(dict(version=0x0301), dict(legacy_version=0x0301), id="legacy-version-1.0"),
    pytest.param(dict(session_id=b"\x01" * 32), dict(session_id=b"\x01" * 32), id="session-32"),
    pytest.param(
        dict(extensions=[(0xFF01, b"\x00"), (0x0017, b"")]),
        dict(extensions=((0xFF01, b"\x00"), (0x0017, b""))),
        id="unknown-extensions-kept-in-order",
    ),
]


@pytest.mark.parametrize(("fields", "expected"), GOOD)
def test_good(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    parsed = parse_client_hello(hello(**fields))
    assert parsed is not None
    assert {name: getattr(parsed, name) for name in expected} == expected


GREASE: list[object] = [
    pytest.param(dict(suites=(0x0A0A, 0x1301)), True, id="suite-0a0a"),
    pytest.param(dict(suites=(0x1301, 0xFAFA)), True, id="suite-fafa"),
    pytest.param(dict(extensions=[(0x1A1A, b""), SNI]), True, id="extension-1a1a"),
    pytest.param(dict(extensions=[(0xAAAA, b"\x00")]), True, id="extension-aaaa"),
    pytest.param(dict(extensions=[supported_versions(0x7A7A, 0x0304)]), True, id="version-7a7a"),
    pytest.param(dict(suites=(0x0A1A,), extensions=[(0x1A0A, b"")]), False, id="mixed-nibbles"),
    pytest.param(dict(suites=(0x0B0B, 0xA0A0)), False, id="not-grease"),
    # GREASE only counts where RFC 8701 puts it for us: not in ALPN names or other data.
    pytest.param(dict(extensions=[alpn(b"\x0a\x0a"), (21, b"\x0a\x0a")]), False, id="elsewhere"),
    pytest.param(dict(), False, id="plain"),
]


@pytest.mark.parametrize(("fields", "grease"), GREASE)
def test_grease(fields: dict[str, Any], grease: bool) -> None:
    parsed = parse_client_hello(hello(**fields))
    assert parsed is not None
    assert parsed.has_grease is grease


# --- looks_like_tls and "need more" -----------------------------------------------------------

LOOKS_LIKE_TLS: list[object] = [
    pytest.param(b"", None, id="empty"),
    pytest.param(b"\x16", None, id="type-only"),
    pytest.param(b"\x16\x03", None, id="major-only"),
    pytest.param(b"\x16\x03\x00", True, id="ssl3-record"),
    pytest.param(b"\x16\x03\x01", True, id="tls10-record"),
    pytest.param(b"\x16\x03\x04", True, id="tls13-record"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01", True, id="longer"),
    pytest.param(b"G", False, id="http"),
    pytest.param(b"CONNECT example.test:443", False, id="connect"),
    pytest.param(b"\x17\x03\x03", False, id="application-data"),
    pytest.param(b"\x16\x02", False, id="major-2"),
    pytest.param(b"\x16\x04", False, id="major-4"),
    pytest.param(b"\x16\x03\x05", False, id="minor-5"),
    pytest.param(b"\x80\x2e\x01", False, id="sslv2-hello"),
]


@pytest.mark.parametrize(("prefix", "verdict"), LOOKS_LIKE_TLS)
def test_looks_like_tls(prefix: bytes, verdict: bool | None) -> None:
    assert looks_like_tls(prefix) is verdict
    if len(prefix) <= TLS_RECORD_PREFIX_LEN:
        # The parser agrees: what cannot be TLS is refused, what may be TLS waits.
        if verdict is False:
            with pytest.raises(ClientHelloError):
                parse_client_hello(prefix)
        else:
            assert parse_client_hello(prefix) is None


MESSAGE = handshake(body())
TWO_RECORDS = records(MESSAGE, 40)

NEED_MORE: list[object] = [
    pytest.param(b"", id="nothing"),
    pytest.param(b"\x16\x03\x01", id="record-prefix"),
    pytest.param(b"\x16\x03\x01\x00", id="half-a-length"),
    pytest.param(b"\x16\x03\x01\x40\x00", id="record-header-only"),
    pytest.param(b"\x16\x03\x01\x40\x00\x01", id="message-type-only"),
    pytest.param(b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc", id="message-header-only"),
    pytest.param(TWO_RECORDS[:45], id="first-of-two-records"),
    pytest.param(TWO_RECORDS[:46], id="second-record-type"),
    pytest.param(TWO_RECORDS[:50], id="second-record-header"),
    pytest.param(TWO_RECORDS[:-1], id="all-but-last-byte"),
    # Header split over 1-byte records: the type and length are known only at the fourth.
    pytest.param(records(MESSAGE, 1)[:18], id="message-header-in-3-records"),
    pytest.param(records(b"\x01\x01\x00\x00" + bytes(10), 1)[:24], id="max-size-header"),
]


@pytest.mark.parametrize("data", NEED_MORE)
def test_need_more(data: bytes) -> None:
    assert parse_client_hello(data) is None


# --- what can never be a ClientHello ----------------------------------------------------------

V = b"\x03\x03"
SID = vec(1, b"")
SUITES = vec(2, b"\x13\x01")
COMP = vec(1, b"\x00")
START = V + RANDOM + SID + SUITES + COMP  # a body up to its extensions block


def raw(message_body: bytes) -> bytes:
    """A body built by hand, in a well-framed record."""
    return records(handshake(message_body))


def with_extensions(*extensions: tuple[int, bytes]) -> bytes:
    return hello(extensions=extensions)


def cut_after(data: bytes, n: int) -> bytes:
    return data[: 5 + n]


RECORD_ERRORS: list[object] = [
    pytest.param(b"GET / HTTP/1.1\r\n", "not a TLS handshake record: content type 71", id="http"),
    pytest.param(b"\x17\x03\x03\x00\x05hello", "application_data", id="application-data"),
    pytest.param(b"\x15\x03\x01\x00\x02\x02\x28", r"content type 21 \(alert\)", id="alert"),
    pytest.param(b"\x16\x02", "record version 0x02.. is not TLS", id="record-version-2"),
    pytest.param(b"\x16\x03\x05", "record version 0x0305 is not TLS", id="record-version-3.5"),
    # RFC 5246 appendix E.2, RFC 8446 appendix D.5
    pytest.param(b"\x80\x2e\x01\x03\x01\x00\x15", "SSLv2-compatible", id="sslv2-hello"),
    # RFC 8446 §5.1: at most 2^14 bytes in an unprotected record.
    pytest.param(b"\x16\x03\x01\x40\x01", "record of 16385 bytes", id="record-over-2^14"),
    pytest.param(b"\x16\x03\x01\xff\xff", "record of 65535 bytes", id="record-max-length"),
    pytest.param(
        records(MESSAGE[:10]) + b"\x16\x03\x01\x40\x01", "record of 16385", id="second-over-2^14"
    ),
    # RFC 8446 §5.1: no zero-length handshake fragments.
    pytest.param(b"\x16\x03\x01\x00\x00", "empty handshake record", id="empty-record"),
    pytest.param(
        records(MESSAGE[:10]) + b"\x16\x03\x01\x00\x00" + records(MESSAGE[10:]),
        "empty handshake record",
        id="empty-record-inside",
    ),
    # RFC 8446 §5.1: handshake messages are not interleaved with other record types.
    pytest.param(
        records(MESSAGE[:10]) + b"\x15\x03\x03\x00\x02\x02\x28" + records(MESSAGE[10:]),
        r"record 2 before the ClientHello's end: content type 21 \(alert\)",
        id="alert-inside",
    ),
    pytest.param(
        records(MESSAGE[:10]) + b"\x14", "record 2 before the ClientHello's end", id="ccs-inside"
    ),
    pytest.param(
        records(MESSAGE[:10]) + b"\x16\x02\x00", "record 2 is not a TLS record", id="bad-second"
    ),
    pytest.param(
        records(MESSAGE, 1)[:30] + b"\x17", "record 6 before", id="application-data-inside"
    ),
    # RFC 8446 §5.1: the ClientHello ends at a record boundary.
    pytest.param(records(MESSAGE + b"\x00"), r"goes on for 1 byte\(s\)", id="bytes-after-hello"),
    pytest.param(
        records(MESSAGE[:10]) + records(MESSAGE[10:] + handshake(b"", 2)),
        r"goes on for 4 byte\(s\)",
        id="message-after-hello",
    ),
    pytest.param(cut_after(records(MESSAGE + bytes(100)), 10), "goes on for 100", id="seen-early"),
]

MESSAGE_ERRORS: list[object] = [
    pytest.param(records(handshake(body(), 2)), "type 2, not client_hello", id="server-hello"),
    pytest.param(b"\x16\x03\x01\x00\x40\x0b", "type 11, not client_hello", id="type-seen-early"),
    pytest.param(
        records(b"\x01\x01\x00\x01", 1), r"ClientHello longer than 65536 bytes \(65537\)", id="max"
    ),
    pytest.param(b"\x16\x03\x01\x00\x04\x01\xff\xff\xff", "longer than 65536", id="max-24-bit"),
    pytest.param(raw(b""), "truncated legacy_version: 2 bytes needed, 0 left", id="empty-body"),
    pytest.param(raw(V + RANDOM[:10]), "truncated random: 32 bytes needed, 10 left", id="random"),
    pytest.param(raw(V + RANDOM), "truncated length of the legacy_session_id", id="no-session"),
    pytest.param(
        raw(V + RANDOM + vec(1, bytes(33)) + SUITES + COMP),
        "legacy_session_id is 33 bytes long; it must be 0 to 32",
        id="session-id-33",
    ),
    pytest.param(
        raw(V + RANDOM + b"\x20\x01\x02"),
        "truncated legacy_session_id: 32 bytes needed, 2 left in the ClientHello",
        id="session-id-overrun",
    ),
    pytest.param(
        raw(V + RANDOM + SID + vec(2, b"\x13\x01\x13") + COMP),
        "cipher_suites is 3 bytes long; it must be 2 to 65534 in steps of 2",
        id="suites-odd",
    ),
    pytest.param(
        raw(V + RANDOM + SID + vec(2, b"") + COMP), "cipher_suites is 0 bytes", id="suites-empty"
    ),
    pytest.param(
        raw(V + RANDOM + SID + b"\x00\x10\x13\x01"), "truncated cipher_suites", id="suites-overrun"
    ),
    pytest.param(
        raw(V + RANDOM + SID + b"\x00"), "truncated length of the cipher_suites", id="suites-len"
    ),
    pytest.param(
        raw(V + RANDOM + SID + SUITES),
        "truncated length of the legacy_compression_methods",
        id="no-compression",
    ),
    pytest.param(
        raw(V + RANDOM + SID + SUITES + vec(1, b"")),
        "legacy_compression_methods is 0 bytes long",
        id="compression-empty",
    ),
    pytest.param(
        raw(V + RANDOM + SID + SUITES + b"\x02\x00"),
        "truncated legacy_compression_methods",
        id="compression-overrun",
    ),
    pytest.param(
        raw(START + b"\x00"), "truncated length of the extensions block", id="block-length"
    ),
    pytest.param(
        raw(START + b"\x00\x10" + b"\x00\x17\x00\x00"),
        "truncated extensions block: 16 bytes needed, 4 left in the ClientHello",
        id="block-overrun",
    ),
    pytest.param(
        raw(START + vec(2, b"") + b"\x00"),
        r"1 stray byte\(s\) at the end of the ClientHello",
        id="after-block",
    ),
    pytest.param(
        raw(START + vec(2, b"\x00\x17\x00\x00") + b"\x00\x17\x00\x00"),
        "stray",
        id="extension-after-block",
    ),
    pytest.param(raw(START + vec(2, b"\x00")), "truncated extension type", id="extension-type"),
    pytest.param(
        raw(START + vec(2, b"\x00\x10\x00")),
        "truncated length of the extension 0x0010",
        id="extension-length",
    ),
    pytest.param(
        raw(START + vec(2, b"\x00\x10\x00\x14" + bytes(10))),
        "truncated extension 0x0010: 20 bytes needed, 10 left in the extensions block",
        id="extension-overrun",
    ),
    # RFC 8446 §4.2
    pytest.param(
        with_extensions((0x17, b""), SNI, (0x17, b"")),
        r"extension 0x0017 appears twice \(RFC 8446 §4.2\)",
        id="duplicate-extension",
    ),
    pytest.param(with_extensions(SNI, ALPN, SNI), "0x0000 appears twice", id="duplicate-sni"),
]

EXTENSION_ERRORS: list[object] = [
    # server_name, RFC 6066 §3
    pytest.param((0, b""), "truncated length of the server_name list", id="sni-no-list"),
    pytest.param((0, vec(2, b"")), "server_name list is 0 bytes long", id="sni-empty-list"),
    pytest.param(
        (0, b"\x00\x10\x00\x00\x01a"),
        "truncated server_name list: 16 bytes needed, 4 left in the server_name extension",
        id="sni-list-overrun",
    ),
    pytest.param(
        (0, server_name(b"a.test")[1] + b"\x00"),
        r"1 stray byte\(s\) at the end of the server_name extension",
        id="sni-after-list",
    ),
    pytest.param(
        (0, vec(2, b"\x00")), "truncated length of the server name of type 0", id="sni-type-only"
    ),
    pytest.param(
        (0, vec(2, b"\x00\x00\x10abc")),
        "truncated server name of type 0: 16 bytes needed, 3 left in the server_name list",
        id="sni-name-overrun",
    ),
    pytest.param(
        (0, vec(2, b"\x07\x00\x10abc")), "truncated server name of type 7", id="sni-other-overrun"
    ),
    pytest.param(server_name(b""), "server name of type 0 is 0 bytes long", id="sni-empty-name"),
    pytest.param(
        server_name(b"a.test", b"b.test"), "more than one host_name", id="sni-two-host-names"
    ),
    pytest.param(server_name("bücher.test".encode()), "not ASCII", id="sni-utf8"),
    # ALPN, RFC 7301 §3.1
    pytest.param((16, b""), "truncated length of the ALPN protocol_name_list", id="alpn-no-list"),
    pytest.param(
        (16, vec(2, b"")), "ALPN protocol_name_list is 0 bytes long", id="alpn-empty-list"
    ),
    pytest.param(
        (16, vec(2, b"\x00")), "protocol_name_list is 1 bytes long; it must be 2", id="alpn-1-byte"
    ),
    pytest.param(alpn(b"", b"h2"), "ALPN protocol name is 0 bytes long", id="alpn-empty-name"),
    pytest.param(
        (16, vec(2, b"\x05h2")),
        "truncated ALPN protocol name: 5 bytes needed, 2 left in the ALPN protocol_name_list",
        id="alpn-name-overrun",
    ),
    pytest.param((16, ALPN[1] + b"x"), "stray byte", id="alpn-after-list"),
    pytest.param(alpn("hé".encode()), "is not ASCII", id="alpn-utf8"),
    # supported_versions, RFC 8446 §4.2.1
    pytest.param((43, b""), "truncated length of the supported_versions list", id="versions-none"),
    pytest.param(
        supported_versions(), "supported_versions list is 0 bytes long", id="versions-empty"
    ),
    pytest.param((43, vec(1, b"\x03\x04\x03")), "in steps of 2", id="versions-odd"),
    pytest.param((43, b"\x04\x03\x04"), "truncated supported_versions list", id="versions-overrun"),
    pytest.param((43, VERSIONS[1] + b"\x00"), "stray byte", id="versions-after-list"),
]


@pytest.mark.parametrize(("data", "reason"), RECORD_ERRORS + MESSAGE_ERRORS)
def test_error(data: bytes, reason: str) -> None:
    with pytest.raises(ClientHelloError, match=reason):
        parse_client_hello(data)


@pytest.mark.parametrize(("extension", "reason"), EXTENSION_ERRORS)
def test_extension_error(extension: tuple[int, bytes], reason: str) -> None:
    data = with_extensions((23, b""), extension)
    with pytest.raises(ClientHelloError, match=reason):
        parse_client_hello(data)
    with pytest.raises(ClientHelloError, match=reason):
        parse_client_hello(refragment(data, 3))


@pytest.mark.parametrize(("data", "reason"), MESSAGE_ERRORS)
def test_message_error_in_one_byte_records(data: bytes, reason: str) -> None:
    # A refusal from inside the message does not depend on how the message was cut.
    with pytest.raises(ClientHelloError, match=reason):
        parse_client_hello(records(handshake_message(data), 1))


def test_error_is_a_value_error() -> None:
    assert issubclass(ClientHelloError, ValueError)


# --- limits -----------------------------------------------------------------------------------


def test_record_of_exactly_2_to_the_14() -> None:
    padding = (21, bytes(MAX_RECORD_LEN - len(body()) - 4 - 4))
    data = hello(extensions=(SNI, ALPN, VERSIONS, padding))
    assert len(data) == 5 + MAX_RECORD_LEN
    parsed = parse_client_hello(data)
    assert parsed is not None
    assert parsed.record_bytes == len(data)


@pytest.mark.parametrize("max_size", [200, 1000, 64 * 1024])
def test_max_size(max_size: int) -> None:
    padding = (21, bytes(max_size - len(body()) - 4))
    message = handshake(body(extensions=(SNI, ALPN, VERSIONS, padding)))
    assert len(message) == 4 + max_size
    parsed = parse_client_hello(records(message), max_size=max_size)
    assert parsed is not None
    with pytest.raises(ClientHelloError, match=f"longer than {max_size - 1} bytes"):
        parse_client_hello(records(message), max_size=max_size - 1)
    # The message header is enough to refuse it.
    with pytest.raises(ClientHelloError):
        parse_client_hello(records(message)[:9], max_size=max_size - 1)


def test_caller_buffer_is_never_pinned() -> None:
    # A bytearray the caller keeps receiving into must stay resizable, even while the caller
    # holds the parser's exception (whose traceback holds the parser's frames).
    buffer = bytearray(records(MESSAGE + b"\x00"))
    with pytest.raises(ClientHelloError) as error:
        parse_client_hello(buffer)
    buffer += b"more"
    assert error.value.__traceback__ is not None
    buffer.clear()


def test_a_high_bit_first_byte_waits_for_the_third_to_name_its_error() -> None:
    # Found by hypothesis: b"\x80" alone was "not a TLS record", b"\x80\x03\x01" "SSLv2".
    assert parse_client_hello(b"\x80") is None
    assert parse_client_hello(b"\x80\x03") is None
    with pytest.raises(ClientHelloError, match="SSLv2"):
        parse_client_hello(b"\x80\x03\x01")
    with pytest.raises(ClientHelloError, match="not a TLS handshake record"):
        parse_client_hello(b"\x80\x03\x02")
