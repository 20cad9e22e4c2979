"""Fuzz target: the ClientHello parser (waylay.tls.clienthello), under atheris.

Any bytes give "need more", a ClientHello or ClientHelloError, never another exception; a
ClientHello is what the records it names hold, and ``looks_like_tls`` calls them TLS. Run
with ``make fuzz`` (docs/security-testing.md); ``python fuzz/clienthello.py -help=1`` lists
libFuzzer's flags.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["waylay"]):
    from waylay.tls.clienthello import (
        ClientHello,
        ClientHelloError,
        looks_like_tls,
        parse_client_hello,
    )


def test_one_input(data: bytes) -> None:
    try:
        hello = parse_client_hello(data)
    except ClientHelloError as error:
        assert str(error), "a ClientHelloError without a reason"
        return
    if hello is None:
        return
    assert isinstance(hello, ClientHello)
    assert 0 < hello.record_bytes <= len(data)
    assert parse_client_hello(data[: hello.record_bytes]) == hello
    assert looks_like_tls(data) is True
    types = [ext_type for ext_type, _ in hello.extensions]
    assert len(types) == len(set(types)), "an extension twice"
    assert hello.sni is None or hello.sni.isascii()


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
