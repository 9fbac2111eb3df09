"""A request body whose last bytes wait for a go-ahead.

Used to check an upload while it is being sent without ever completing a request the check would
refuse: everything but the tail goes out at once, the tail only once ``confirm`` has returned. If
``confirm`` raises, the exception propagates out of ``httpx2.AsyncClient.send`` with the body
incomplete, and the connection, left mid-request, is closed rather than reused. The server never
receives a whole request (the Content-Length is never reached and the multipart body never
ends), so it cannot act on one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx2

__all__ = ["HELD_BYTES", "Confirm", "GatedStream"]

Confirm = Callable[[], Awaitable[None]]
# At least this much of the body's end waits for the go-ahead. It is larger than one multipart
# file chunk (64 KiB in httpx2), so the held tail always includes the end of the file's own bytes,
# not just the closing boundary; a body smaller than this is held back whole.
HELD_BYTES = 128 * 1024


class GatedStream(httpx2.AsyncByteStream):
    """Yield ``inner`` but the last ``held_bytes`` (or more); await ``confirm`` before those."""

    def __init__(self, inner: httpx2.AsyncByteStream, confirm: Confirm, *, held_bytes: int = HELD_BYTES) -> None:
        if held_bytes <= 0:
            raise ValueError("held_bytes must be positive")
        self._inner = inner
        self._confirm = confirm
        self._held_bytes = held_bytes

    async def __aiter__(self) -> AsyncIterator[bytes]:
        held: deque[bytes] = deque()
        held_size = 0
        async for chunk in self._inner:
            if not chunk:
                continue
            held.append(chunk)
            held_size += len(chunk)
            # Release the oldest chunk only while what stays held is still at least the tail.
            while held and held_size - len(held[0]) >= self._held_bytes:
                released = held.popleft()
                held_size -= len(released)
                yield released
        await self._confirm()
        for chunk in held:
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()
