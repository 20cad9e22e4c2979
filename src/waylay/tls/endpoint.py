"""TLS over memory BIOs: one end of a TLS session, as a transport for the protocol above it.

Theory of operation. asyncio's own TLS (`start_tls`) cannot take the bytes waylay already
read to classify a connection — the ClientHello — and it gives every connection a 256 KiB
read buffer. So waylay runs TLS itself, the sans-IO way the stdlib offers: an
`ssl.SSLObject` between two `ssl.MemoryBIO`s. A `TlsTransport` is at once the protocol of the
raw TCP transport (ciphertext in) and the transport of the protocol above (plaintext out):
the `ClientConnection` inside an intercepted tunnel, or an `UpstreamConnection` to an HTTPS
server. Those protocols cannot tell it from a TCP transport, so the HTTP/1 data path and its
back-pressure are the same over TLS.

Decrypted bytes are read into one scratch buffer per thread (`SSLObject.read(n, buffer)`:
no allocation per record but the copy handed up). `pause_reading` from above stops both the
raw socket and the delivery of what OpenSSL already decrypted; `resume_reading` delivers the
rest on the next loop iteration. `connection_lost` drops the references to the protocol and
the SSL object, so no reference cycle keeps OpenSSL's memory alive until a full collection.

A TCP FIN after the handshake is never shown to OpenSSL: told, it would treat a FIN without
close_notify (a ragged EOF, which many peers send) as a fatal error, answer with an alert
and refuse to write any more — yet a FIN is a half-close, and the protocol above may still
answer. So what is left is decrypted and handed up, then ``eof_received``, the same for a
close_notify and a bare FIN; writing goes on until the protocol above closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from typing import Any, cast

# One TLS record carries at most 16 KiB of plaintext (RFC 8446 §5.1); a read takes one record.
_READ_SIZE = 16 * 1024


class _Scratch(threading.local):
    def __init__(self) -> None:
        self.buffer = bytearray(_READ_SIZE)
        self.view = memoryview(self.buffer)


_scratch = _Scratch()


class TlsHandshakeError(Exception):
    """The TLS handshake failed; ``alert`` is OpenSSL's reason (e.g. TLSV1_ALERT_UNKNOWN_CA)."""

    def __init__(self, message: str, *, alert: str = "", eof: bool = False) -> None:
        super().__init__(message)
        self.alert = alert
        self.eof = eof  # the peer closed the connection during the handshake


class TlsTransport(asyncio.Transport, asyncio.Protocol):
    """TLS on top of ``raw``: plaintext transport above, ciphertext protocol below."""

    __slots__ = (
        "_closing",
        "_eof_done",
        "_error",
        "_handshake_waiter",
        "_handshaking",
        "_in",
        "_loop",
        "_missed_writing",
        "_out",
        "_paused",
        "_protocol",
        "_raw",
        "_raw_eof",
        "_ssl",
    )

    def __init__(
        self,
        raw: asyncio.Transport,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        pending: bytes = b"",
    ) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._raw = raw
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._ssl: ssl.SSLObject | None = context.wrap_bio(
            self._in, self._out, server_side=server_side, server_hostname=server_hostname
        )
        self._protocol: asyncio.BaseProtocol | None = None
        self._paused = True  # nothing is delivered until a protocol is attached
        self._closing = False
        self._eof_done = False  # eof_received was passed up
        self._raw_eof = False  # the TCP FIN came
        self._error: Exception | None = None  # what ended the session, for connection_lost
        self._handshaking = True
        self._handshake_waiter: asyncio.Future[None] | None = None
        # The socket's last pause_writing (True) or resume_writing (False) while no protocol
        # was attached, to be told to the protocol when it is.
        self._missed_writing: bool | None = None
        if pending:
            self._in.write(pending)
        raw.set_protocol(self)

    # -- the handshake -----------------------------------------------------------------

    async def handshake(self, timeout: float) -> None:
        """Run the handshake to its end; TlsHandshakeError (or TimeoutError) if it fails."""
        self._handshake_waiter = self._loop.create_future()
        self._step_handshake()
        self._raw.resume_reading()
        try:
            async with asyncio.timeout(timeout):
                await self._handshake_waiter
        finally:
            self._handshake_waiter = None

    def _step_handshake(self) -> None:
        assert self._ssl is not None
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            if self._in.eof:
                self._handshake_failed(
                    TlsHandshakeError(
                        "the peer closed the connection during the handshake", eof=True
                    )
                )
            return
        except ssl.SSLError as exc:
            self._flush()  # the alert that tells the peer why
            self._handshake_failed(_handshake_error(exc))
            return
        self._flush()
        self._handshaking = False
        self._raw.pause_reading()  # until the protocol above is attached
        waiter = self._handshake_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _handshake_failed(self, error: BaseException) -> None:
        self._handshaking = False
        waiter = self._handshake_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def start(self, protocol: asyncio.BaseProtocol, *, notify: bool = True) -> None:
        """Hand the session to ``protocol`` (after the handshake) and start delivering.

        With ``notify``, the protocol is told ``connection_made`` first, and may pause
        reading in it; without, it is a protocol that already knows this transport.
        """
        self._protocol = protocol
        self._paused = False
        if notify:
            protocol.connection_made(self)
        # The socket's write buffer may have filled or drained during the handshake: a
        # protocol that was the socket's own before (notify=False) may still think it full.
        missed, self._missed_writing = self._missed_writing, None
        if missed is True:
            protocol.pause_writing()
        elif missed is False:
            protocol.resume_writing()
        if not self._paused and not self._closing:
            self._raw.resume_reading()
            self._loop.call_soon(self._deliver_if_reading)

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        return self._ssl

    # -- the raw transport's protocol (ciphertext) ---------------------------------------

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        if self._handshaking:
            self._step_handshake()
        elif not self._paused:
            self._deliver()

    def eof_received(self) -> bool:
        self._raw_eof = True
        if self._handshaking:
            self._in.write_eof()  # the handshake cannot finish now: OpenSSL says so
            self._step_handshake()
            return False
        if not self._paused:
            self._deliver()
        # Keep the socket open while the protocol above still has something to write.
        return not self._closing

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._handshaking:
            self._handshake_failed(
                TlsHandshakeError("the connection was lost during the handshake", eof=True)
            )
        protocol, self._protocol = self._protocol, None
        self._ssl = None
        if protocol is not None:
            protocol.connection_lost(exc or self._error)

    def pause_writing(self) -> None:
        if self._protocol is None:
            self._missed_writing = True
        else:
            self._protocol.pause_writing()

    def resume_writing(self) -> None:
        if self._protocol is None:
            self._missed_writing = False
        else:
            self._protocol.resume_writing()

    def _deliver(self) -> None:
        """Hand up what can be decrypted, until none is left or the protocol pauses us."""
        sslobj = self._ssl
        protocol = self._protocol
        if sslobj is None or protocol is None:
            return
        buffer, view = _scratch.buffer, _scratch.view
        # Once closed, nothing more is delivered (as from a socket transport).
        while not self._paused and not self._closing:
            try:
                # With a buffer, read() returns a count (typeshed says bytes).
                n = cast(int, sslobj.read(_READ_SIZE, buffer))
            except ssl.SSLWantReadError:
                if self._raw_eof:
                    self._peer_eof(protocol)  # a TCP FIN without close_notify
                break
            except ssl.SSLZeroReturnError:  # close_notify
                self._peer_eof(protocol)
                break
            except ssl.SSLError as exc:
                # A record that fails to decrypt or authenticate, or a fatal alert: nothing
                # after it can be trusted.
                self._error = exc
                self.abort()
                return
            if not n:
                self._peer_eof(protocol)
                break
            # Outside the try: an error in the protocol above is not this session's.
            cast(asyncio.Protocol, protocol).data_received(bytes(view[:n]))
            if not (self._in.pending or sslobj.pending() or self._raw_eof):
                # Nothing left to decrypt: another read would only raise SSLWantReadError,
                # which costs more than the record's own decryption.
                break
        self._flush()  # reading can produce writes (a TLS 1.3 KeyUpdate)

    def _peer_eof(self, protocol: asyncio.BaseProtocol) -> None:
        if self._eof_done:
            return
        self._eof_done = True
        keep_open = cast(asyncio.Protocol, protocol).eof_received()
        if not keep_open:
            self.close()

    def _flush(self) -> None:
        if self._out.pending:
            self._raw.write(self._out.read())

    # -- the transport of the protocol above (plaintext) ---------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        # Also once the socket is closing under us (a reset the loop has not reported yet):
        # one read upstream hands up many records, and each write to a lost socket is
        # counted, then warned about ("socket.send() raised exception.").
        if self._closing or self._ssl is None or not data or self._raw.is_closing():
            return
        self._ssl.write(data)
        self._flush()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return self._raw.can_write_eof()

    def write_eof(self) -> None:
        """close_notify, then a TCP half-close: the peer may still send, and it is read."""
        self._send_close_notify()
        self._raw.write_eof()

    def _send_close_notify(self) -> None:
        if self._ssl is None or self._handshaking:
            return
        # The peer's close_notify is not awaited (RFC 8446 §6.1 allows it).
        with contextlib.suppress(ssl.SSLError):
            self._ssl.unwrap()
        self._flush()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._send_close_notify()
        self._raw.close()

    def abort(self) -> None:
        self._closing = True
        self._raw.abort()

    def is_closing(self) -> bool:
        return self._closing or self._raw.is_closing()

    def pause_reading(self) -> None:
        self._paused = True
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        if self._closing or self._protocol is None:
            return
        self._paused = False
        self._raw.resume_reading()
        # What OpenSSL already holds will not come with the next data_received.
        self._loop.call_soon(self._deliver_if_reading)

    def _deliver_if_reading(self) -> None:
        if not self._paused and not self._handshaking:
            self._deliver()

    def is_reading(self) -> bool:
        return not self._paused

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._ssl
        return self._raw.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size() + self._out.pending

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._raw.get_write_buffer_limits()


def _handshake_error(exc: ssl.SSLError) -> TlsHandshakeError:
    """OpenSSL's error as a TlsHandshakeError; the original stays as its ``__cause__``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        error = TlsHandshakeError(exc.verify_message or str(exc), alert="CERTIFICATE_VERIFY_FAILED")
    elif isinstance(exc, ssl.SSLEOFError):
        error = TlsHandshakeError("the peer closed the connection during the handshake", eof=True)
    else:
        reason = exc.reason or ""
        error = TlsHandshakeError(reason.replace("_", " ").lower() or str(exc), alert=reason)
    error.__cause__ = exc
    return error
