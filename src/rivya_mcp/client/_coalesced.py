"""A request body that sends its small pieces together.

httpx2's multipart encoder yields every boundary, part header, field value and line break as a
piece of its own, and each piece becomes one socket write: an upload with two form fields went
out in ~14 writes before its first file byte. Joining the small pieces costs a copy of a few
hundred bytes and saves a system call and a trip through the transport per piece (measured here:
an in-memory MCP ``upload_reference`` of a 64×64 PNG to the loopback sandbox, median of 200 calls,
went from 2.2 to 2.0 ms). Large pieces (the file's own data) pass through as they are, never
copied.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2

__all__ = ["SMALL_PIECE", "CoalescedStream"]

# Pieces shorter than this are joined with their neighbours; longer ones go out alone. Every
# piece httpx2 makes that isn't file data is far shorter; a file's pieces are 64 KiB or more,
# except its last one, which is joined with what follows it (the closing boundary) when small.
SMALL_PIECE = 16 * 1024


class CoalescedStream(httpx2.AsyncByteStream):
    """Yield ``inner``'s bytes unchanged, its runs of small pieces joined into one."""

    def __init__(self, inner: httpx2.AsyncByteStream, *, small_piece: int = SMALL_PIECE) -> None:
        self._inner = inner
        self._small_piece = small_piece

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pending: list[bytes] = []
        pending_size = 0
        async for chunk in self._inner:
            if len(chunk) < self._small_piece:
                if chunk:
                    pending.append(chunk)
                    pending_size += len(chunk)
                if pending_size >= self._small_piece:
                    yield b"".join(pending)
                    pending.clear()
                    pending_size = 0
                continue
            if pending:
                yield b"".join(pending)
                pending.clear()
                pending_size = 0
            yield chunk
        if pending:
            yield b"".join(pending)

    async def aclose(self) -> None:
        await self._inner.aclose()
