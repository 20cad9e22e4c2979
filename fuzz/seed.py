"""Write the seed corpus, fuzz/corpus/<target>/, from tests/data and the tests' own tables.

The seeds are committed; run this again (``PYTHONPATH=. .venv/bin/python fuzz/seed.py`` from
the repository root) when the test tables gain cases. Each seed is named by the SHA-1 of its
bytes, as libFuzzer names what it finds, so a seed already there is not written twice. Seeds
over MAX_SEED bytes are left out: libFuzzer would not grow an input past that anyway. Seeds
only: what a fuzz run discovers goes to build/fuzz/, not here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.e2e.test_errors import BAD_HEADS
from tests.e2e.test_smuggling import REQUESTS, RESPONSES
from tests.http1 import test_chunked, test_differential, test_request_head, test_response_head
from tests.test_filters import ERRORS, GRAMMAR, OPERATORS, SQL_SHAPES
from tests.testdata import CLIENTHELLOS
from tests.tls import test_clienthello

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fuzz" / "corpus"
AUTHORITY = "origin.example.test:8080"
MAX_SEED = 4096  # libFuzzer's default -max_len


def first_values(table: Iterable[Any]) -> list[Any]:
    """The first argument of every case of a parametrize table."""
    return [getattr(case, "values", case)[0] for case in table]


def rendered(template: str) -> bytes:
    """A test_smuggling template with its placeholders filled in, as the proxy receives it."""
    smuggled = f"GET http://{AUTHORITY}/smuggled HTTP/1.1\r\nHost: {AUTHORITY}\r\n\r\n"
    text = template.replace("{U}", "http://{A}").replace("{A}", AUTHORITY)
    text = text.replace("{P}", "8080").replace("{S}", smuggled)
    return text.encode("utf-8")


def after_head(message: bytes) -> bytes:
    return message.partition(b"\r\n\r\n")[2]


def seeds() -> dict[str, list[bytes]]:
    hellos: list[bytes] = [path.read_bytes() for path in sorted(CLIENTHELLOS.glob("*.bin"))]
    for table in ("NEED_MORE", "RECORD_ERRORS", "MESSAGE_ERRORS", "LOOKS_LIKE_TLS"):
        hellos += first_values(getattr(test_clienthello, table))

    requests = [rendered(template) for template in first_values(REQUESTS)]
    responses = [rendered(template) for template in first_values(RESPONSES)]
    heads = requests + responses
    heads += [template.format(authority=AUTHORITY).encode() for template in BAD_HEADS.values()]
    heads += [test_differential.BASE, test_differential.RESPONSE]
    for module, tables in (
        (test_request_head, ("HEAD_END", "VALID", "INVALID")),
        (test_response_head, ("VALID", "INVALID")),
    ):
        for table in tables:
            heads += first_values(getattr(module, table))

    bodies = first_values(test_chunked.VALID) + first_values(test_chunked.INVALID)
    bodies += [after_head(message) for message in requests + responses if b"chunked" in message]

    filters = first_values(OPERATORS) + first_values(GRAMMAR) + first_values(SQL_SHAPES)
    filters += first_values(ERRORS)
    return {
        "clienthello": hellos,
        "head": heads,
        "chunked": [body for body in bodies if body],
        # A lone surrogate (an ERRORS case) is kept as the bytes a fuzzer could send for it.
        "filters": [text.encode("utf-8", "surrogatepass") for text in filters],
    }


def main() -> None:
    for target, inputs in seeds().items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        names = set()
        for data in inputs:
            assert isinstance(data, bytes), (target, data)
            if len(data) > MAX_SEED:
                continue
            name = hashlib.sha1(data).hexdigest()
            names.add(name)
            (directory / name).write_bytes(data)
        print(f"{target}: {len(names)} seeds in {directory.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
