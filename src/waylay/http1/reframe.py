"""One message body, read in the framing it arrived in and given out in the one to send.

Theory of operation
-------------------
A proxy receives a body in pieces and must pass each piece on as it comes, never holding the
whole: `Reframer.feed` takes the bytes that arrived and returns the bytes to send, plus what
followed the body's end (the next message, which is not the body's to touch). Content-Length
bodies pass as they are; chunked bodies are decoded strictly (``ChunkedDecoder``) and chunked
again — trailers included, less those a trailer section may not carry
(``forwarding.forward_trailers``) — or de-chunked for an HTTP/1.0 peer, which then reads until
close; close-delimited bodies pass until the sender closes (`end_of_stream`).

Returning bytes instead of writing them keeps this pure and lets the caller put a head and
the first body bytes into one write. Owns: body boundaries and re-framing. Does not own: the
decision which framing applies (``body.py``), IO, back-pressure.
"""

from __future__ import annotations

from collections.abc import Callable

from waylay.http1.body import ChunkedDecoder, Framing
from waylay.http1.forwarding import forward_trailers
from waylay.http1.head import Fields
from waylay.http1.serialize import chunk, last_chunk


class Reframer:
    """Turns the received bytes of one body into the bytes to send on."""

    __slots__ = ("_decoder", "_rechunk", "_remaining", "_sink", "done", "size", "trailers")

    def __init__(
        self,
        framing: Framing,
        *,
        response: bool,
        dechunk: bool = False,
        sink: Callable[[bytes], None] | None = None,
    ) -> None:
        # ``sink`` sees the payload as it passes (without chunk framing): the flow store's
        # body capture. It must not keep a reference to more than it needs.
        self._sink = sink
        self._decoder: ChunkedDecoder | None = None
        self._remaining = -1  # bytes left of a Content-Length body; -1 for other framings
        self._rechunk = False
        self.size = 0  # body bytes passed on (payload, without chunk framing)
        self.done = False
        self.trailers: Fields | None = None
        if framing.kind == "length":
            self._remaining = framing.length
            self.done = framing.length == 0
        elif framing.kind == "chunked":
            self._decoder = ChunkedDecoder(response=response)
            self._rechunk = not dechunk
        elif framing.kind == "none":
            self.done = True

    def set_sink(self, sink: Callable[[bytes], None] | None) -> None:
        """From now on, the payload goes to ``sink`` as it passes."""
        self._sink = sink

    @property
    def close_delimited(self) -> bool:
        """True while only the end of the connection can end this body."""
        return self._remaining < 0 and self._decoder is None and not self.done

    def feed(self, data: bytes) -> tuple[list[bytes], bytes]:
        """The bytes to send for ``data``, and the bytes after the body's end.

        Raises ProtocolError for bad chunked framing; nothing from the bad piece on is given
        out, so nothing after the error can reach the other peer.
        """
        if self.done:
            return [], data
        remaining = self._remaining
        sink = self._sink
        if remaining >= 0:
            if len(data) < remaining:
                self._remaining = remaining - len(data)
                self.size += len(data)
                if sink is not None:
                    sink(data)
                return [data], b""
            self._remaining = 0
            self.size += remaining
            self.done = True
            body = data if len(data) == remaining else data[:remaining]
            if sink is not None and body:
                sink(body)
            if len(data) == remaining:
                return [data], b""
            return ([body] if remaining else []), data[remaining:]
        decoder = self._decoder
        if decoder is None:
            self.size += len(data)
            if sink is not None:
                sink(data)
            return [data], b""
        pieces, used = decoder.feed(data)
        for piece in pieces:
            self.size += len(piece)
            if sink is not None:
                sink(piece)
        out = [chunk(piece) for piece in pieces] if self._rechunk else pieces
        if not decoder.done:
            return out, b""
        self.done = True
        self.trailers = decoder.trailers
        if self._rechunk:
            out.append(last_chunk(forward_trailers(decoder.trailers)))
        return out, data[used:]

    def end_of_stream(self) -> bool:
        """The sender closed: True if that completes the body (close-delimited)."""
        if self.close_delimited:
            self.done = True
        return self.done
