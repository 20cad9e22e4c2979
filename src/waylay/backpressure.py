"""Back-pressure: a side's reading is held back while anything says it must wait.

The data path never buffers more than the transports' own write buffers: when the side a body
goes to cannot take more, reading from the side it comes from pauses, and resumes once the
buffer drained. Other waits hold reading back the same way (a connect in progress, a head
waiting for a hook, pipelined requests piling up), so one gate per transport keeps the reasons
apart and resumes only when the last one is gone.
"""

from __future__ import annotations

import asyncio


class ReadGate:
    """Pauses a transport's reading while any reason to hold it back remains."""

    __slots__ = ("_reasons", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._reasons: set[str] = set()

    def pause(self, reason: str) -> None:
        if not self._reasons and not self._transport.is_closing():
            self._transport.pause_reading()
        self._reasons.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self._reasons:
            return
        self._reasons.discard(reason)
        if not self._reasons and not self._transport.is_closing():
            self._transport.resume_reading()

    def clear(self) -> None:
        if self._reasons:
            self._reasons.clear()
            if not self._transport.is_closing():
                self._transport.resume_reading()
