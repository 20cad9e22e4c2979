"""Property tests for the ClientHello parser: "need more", a ClientHello, or ClientHelloError.

1. Any strict prefix of a real capture, whole or cut into other records, needs more.
2. A prefix of a capture with a random tail: None, a ClientHello or ClientHelloError, nothing
   else; the whole capture with any tail is the capture's ClientHello.
3. Random bytes, alone or framed as records or as extensions: the same three answers.
4. Answers are final: what a prefix of some bytes is refused for, or parsed as, the whole is too.
5. ClientHellos built from random fields parse back to those fields, however they are cut.
6. ``looks_like_tls`` decides once, and never calls TLS what the parser refuses.
7. ``max_size`` refuses exactly the messages longer than it.
8. A parsed ClientHello is consistent: no extension twice, ASCII names, its own records.
"""

from __future__ import annotations

import functools
import string
from typing import Any, TypeAlias

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waylay.tls.clienthello import (
    MAX_RECORD_LEN,
    TLS_RECORD_PREFIX_LEN,
    ClientHello,
    ClientHelloError,
    looks_like_tls,
    parse_client_hello,
)

from .test_clienthello import (
    alpn,
    body,
    capture,
    capture_names,
    handshake,
    hello,
    records,
    refragment,
    server_name,
    supported_versions,
)

Outcome: TypeAlias = ClientHello | ClientHelloError | None


def outcome(data: bytes) -> Outcome:
    """The parser's answer; any exception but ClientHelloError fails the test."""
    try:
        return parse_client_hello(data)
    except ClientHelloError as error:
        assert str(error)
        return error


@functools.cache
def real(name: str) -> bytes:
    return capture(name)


record_sizes = (
    st.sampled_from([1, 7, 100, 512, MAX_RECORD_LEN])
    | st.integers(1, MAX_RECORD_LEN)
    | st.lists(st.integers(1, 600), min_size=1, max_size=5)
)


@st.composite
def wires(draw: st.DrawFn) -> bytes:
    """A real capture, as sent or cut into records of other sizes."""
    data = real(draw(st.sampled_from(capture_names())))
    if draw(st.booleans()):
        data = refragment(data, draw(record_sizes))
    return data


near_tls = st.lists(
    st.sampled_from([b"\x16\x03\x01", b"\x16\x03\x03\x00", b"\x14\x03\x03\x00\x01\x01", b"\x00"])
    | st.binary(max_size=6),
    max_size=10,
).map(b"".join)


# --- 1. prefixes ------------------------------------------------------------------------------


@given(wires(), st.data())
def test_strict_prefix_needs_more(wire: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(wire) - 1))
    assert parse_client_hello(wire[:cut]) is None


# --- 2. prefixes with a random tail -----------------------------------------------------------


@given(wires(), st.data(), st.binary(max_size=64) | near_tls)
def test_prefix_with_tail(wire: bytes, data: st.DataObject, tail: bytes) -> None:
    cut = data.draw(st.integers(0, len(wire)))
    answer = outcome(wire[:cut] + tail)
    if cut == len(wire):
        whole = parse_client_hello(wire)
        assert answer == whole
        assert whole is not None
        assert whole.record_bytes == len(wire)


# --- 3. random bytes --------------------------------------------------------------------------


@given(st.binary(max_size=300) | near_tls)
def test_random_bytes(data: bytes) -> None:
    outcome(data)


@given(st.binary(max_size=300), st.integers(1, 300))
def test_random_message_bodies(message_body: bytes, size: int) -> None:
    outcome(records(handshake(message_body), size))


@given(st.sampled_from([0, 16, 43, 0x1A1A, 21]), st.binary(max_size=40) | near_tls)
def test_random_extension_data(ext_type: int, data: bytes) -> None:
    outcome(hello(extensions=[(ext_type, data)]))


# --- 4. answers are final ---------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A capture with a few bytes changed, dropped or added."""
    data = bytearray(draw(wires()))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "delete", "insert"]))
        if action == "set":
            data[at] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[at]
        else:
            data.insert(at, draw(st.integers(0, 255)))
    return bytes(data)


@given(mutated(), st.data())
def test_answers_are_final(wire: bytes, data: st.DataObject) -> None:
    whole = outcome(wire)
    early = outcome(wire[: data.draw(st.integers(0, len(wire)))])
    if isinstance(early, ClientHelloError):
        assert isinstance(whole, ClientHelloError)
        assert str(whole) == str(early)
    elif early is not None:
        assert whole == early


# --- 5. built ClientHellos --------------------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
ascii_names = st.text(alphabet=string.ascii_letters + string.digits + "-._", min_size=1)
protocols = st.text(alphabet=string.printable, min_size=1, max_size=20)


@st.composite
def built(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fields for ``body`` and the ClientHello fields they must give."""
    sni = draw(st.none() | ascii_names)
    offered = draw(st.lists(protocols, max_size=5))
    versions = draw(st.lists(u16, max_size=127))
    known = {0, 16, 43}
    others = draw(
        st.lists(
            st.tuples(u16.filter(lambda t: t not in known), st.binary(max_size=40)),
            max_size=6,
            unique_by=lambda extension: extension[0],
        )
    )
    extensions = list(others)
    if sni is not None:
        extensions.append(server_name(sni.encode()))
    if offered:
        extensions.append(alpn(*(name.encode() for name in offered)))
    if versions:
        extensions.append(supported_versions(*versions))
    extensions = draw(st.permutations(extensions))
    fields: dict[str, Any] = dict(
        version=draw(u16),
        random=draw(st.binary(min_size=32, max_size=32)),
        session_id=draw(st.binary(max_size=32)),
        suites=draw(st.lists(u16, min_size=1, max_size=40)),
        compression=draw(st.binary(min_size=1, max_size=4)),
        extensions=None if not extensions and draw(st.booleans()) else extensions,
    )
    expected = dict(
        legacy_version=fields["version"],
        random=fields["random"],
        session_id=fields["session_id"],
        cipher_suites=tuple(fields["suites"]),
        compression_methods=fields["compression"],
        extensions=tuple(extensions),
        sni=sni,
        alpn=tuple(offered),
        supported_versions=tuple(versions),
    )
    return fields, expected


@given(built(), record_sizes, st.data())
def test_built_round_trip(
    case: tuple[dict[str, Any], dict[str, Any]], sizes: int | list[int], data: st.DataObject
) -> None:
    fields, expected = case
    wire = records(handshake(body(**fields)), sizes)
    assert parse_client_hello(wire) == ClientHello(**expected, record_bytes=len(wire))
    assert parse_client_hello(wire[: data.draw(st.integers(0, len(wire) - 1))]) is None


# --- 6. looks_like_tls: final, and never at odds with the parser ------------------------------


@given(wires() | mutated() | st.binary(max_size=8) | near_tls, st.data())
def test_looks_like_tls_is_final_and_agrees_with_the_parser(
    wire: bytes, data: st.DataObject
) -> None:
    whole = looks_like_tls(wire)
    early = looks_like_tls(wire[: data.draw(st.integers(0, len(wire)))])
    if early is not None:
        assert whole is early
    if len(wire) >= TLS_RECORD_PREFIX_LEN:
        assert whole is not None
    answer = outcome(wire)
    if whole is False:
        # The detector sends these bytes on as plain TCP; the parser never sees a hello in
        # them, and refuses them once the record prefix is there (before, it may wait to name
        # the fault: see test_a_high_bit_first_byte_waits_for_the_third_to_name_its_error).
        assert not isinstance(answer, ClientHello)
        if len(wire) >= TLS_RECORD_PREFIX_LEN:
            assert isinstance(answer, ClientHelloError)
    if isinstance(answer, ClientHello):
        assert whole is True


# --- 7. max_size: the bound on what the parser will gather -------------------------------------


@given(built(), record_sizes, st.integers(40, 600))
def test_max_size_bounds_the_message(
    case: tuple[dict[str, Any], dict[str, Any]], sizes: int | list[int], max_size: int
) -> None:
    fields, _ = case
    message = handshake(body(**fields))
    wire = records(message, sizes)
    if len(message) - 4 <= max_size:  # the limit counts the handshake message's body
        assert parse_client_hello(wire, max_size=max_size) == parse_client_hello(wire)
    else:
        with pytest.raises(ClientHelloError, match=f"longer than {max_size} bytes"):
            parse_client_hello(wire, max_size=max_size)


# --- 8. what a parsed ClientHello holds -------------------------------------------------------


@given(mutated() | wires())
def test_parsed_hellos_are_consistent(wire: bytes) -> None:
    answer = outcome(wire)
    if not isinstance(answer, ClientHello):
        return
    assert 0 < answer.record_bytes <= len(wire)
    types = [ext_type for ext_type, _ in answer.extensions]
    assert len(types) == len(set(types)), "an extension appears twice"
    assert answer.sni is None or (answer.sni.isascii() and answer.sni)
    assert all(name and name.isascii() for name in answer.alpn)
    assert len(answer.random) == 32
    assert len(answer.session_id) <= 32
    # The records that carried it are the whole answer: the rest of the input is not read.
    assert outcome(wire[: answer.record_bytes]) == answer
