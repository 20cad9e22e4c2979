"""Fuzz target: the strict chunked decoder (waylay.http1.body.ChunkedDecoder), under atheris.

The input is what follows a head that said ``Transfer-Encoding: chunked``. Any bytes give a
payload, "need more" or ProtocolError, never another exception; the answer is the same
whether the bytes come at once, in three pieces or one by one; and a body that ends, chunked
again by waylay's serialiser, decodes to the same payload and trailers. Run with
``make fuzz``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["waylay"]):
    from waylay.errors import ProtocolError
    from waylay.http1.body import ChunkedDecoder
    from waylay.http1.head import Headers
    from waylay.http1.serialize import chunk, last_chunk

Outcome = tuple[bytes, Headers, int] | str


def decode(pieces: list[bytes], *, response: bool) -> Outcome:
    """Payload, trailers and bytes consumed once the body ends; "more" or the error's status."""
    decoder = ChunkedDecoder(response=response, max_chunk_line=256, max_trailer_size=1024)
    payload: list[bytes] = []
    consumed = 0
    try:
        for piece in pieces:
            out, used = decoder.feed(piece)
            assert 0 <= used <= len(piece)
            assert used == len(piece) or decoder.done, "bytes left before the body ended"
            payload += out
            consumed += used
            if decoder.done:
                return b"".join(payload), decoder.trailers, consumed
    except ProtocolError as error:
        return f"refused {error.status}"
    return "more"


def test_one_input(data: bytes) -> None:
    third = len(data) // 3
    splits = [[data], [data[:third], data[third : 2 * third], data[2 * third :]]]
    if len(data) <= 512:
        splits.append([data[i : i + 1] for i in range(len(data))])
    for response in (False, True):
        outcomes = [decode(pieces, response=response) for pieces in splits]
        assert all(outcome == outcomes[0] for outcome in outcomes), outcomes
        whole = outcomes[0]
        if isinstance(whole, tuple):
            payload, trailers, _ = whole
            again = (chunk(payload) if payload else b"") + last_chunk(trailers)
            assert decode([again], response=response) == (payload, trailers, len(again))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
