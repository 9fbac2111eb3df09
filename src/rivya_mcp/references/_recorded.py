"""A local reference read while it is uploaded, keeping exactly the bytes that were sent.

``RecordedFile`` is the upload's file object: each ``read`` takes the next bytes from the already
opened and checked descriptor (never the path again) and keeps them, so the full image check runs
on exactly what went out: a worker thread reads those kept bytes (``reader()``) once the upload has
read the file to its end, i.e. while the upload waits for the API's answer. (Checking chunk by
chunk alongside the send was slower: the thread and the sending event loop traded the GIL at every
chunk.) The descriptor's size was checked against the limit before the first byte was
sent; reading counts too, and a file that grows past that size (or the limit), or shrinks, fails
the upload with the same errors ``read_local_file`` gives. ``seek(0)`` replays the kept bytes, so
a retried upload sends the same bytes again.
"""

from __future__ import annotations

import bisect
import io
import os
import threading
from pathlib import Path

from ._errors import ReferenceError
from ._limits import format_size

__all__ = ["RecordedFile"]

_READ = 1024 * 1024


class RecordedFile:
    """The open file ``fd`` of ``size`` bytes (≤ ``max_bytes``), of which ``prefix`` was read already."""

    def __init__(self, fd: int, path: Path, *, size: int, max_bytes: int, prefix: bytes) -> None:
        self._fd = fd
        self._path = path
        self._size = size
        self._max_bytes = max_bytes
        self._chunks: list[bytes] = []
        self._starts: list[int] = []
        self._recorded = 0
        self._at_eof = False
        self._failure: ReferenceError | None = None
        self._closed = False
        self._pos = 0
        self._changed = threading.Condition()
        if prefix:
            self._keep(prefix)
        if len(prefix) >= size:
            self._check_end()

    # --- the upload's side (event loop) ------------------------------------------------------

    @property
    def failure(self) -> ReferenceError | None:
        """Why reading stopped short (the file changed or grew past the limit), if it did."""
        return self._failure

    @property
    def size(self) -> int:
        return self._size

    @property
    def cap(self) -> int:
        """The most bytes ever read from the file: its checked size + 1 (telling "grew" from "done")."""
        return self._size + 1

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            target = self._size + offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        else:
            target = offset
        if target < 0 or target > self._recorded:
            if not (whence == os.SEEK_END and offset == 0):
                raise io.UnsupportedOperation("can only seek back within what was read")
        self._pos = target
        return target

    def read(self, n: int = -1) -> bytes:  # noqa: ARG002 - see the docstring
        """The next bytes: the rest of the kept chunk at the position, else the file's next MiB.

        Either may exceed ``n`` (httpx asks for 64 KiB): whole chunks mean fewer, larger socket
        writes, no copies, and few chunk-spanning pieces for the check to join.
        """
        if self._pos < self._recorded:
            return self._rest_of_chunk()
        if self._failure is not None:
            raise self._failure
        if self._at_eof:
            return b""
        data = self._read_fd(_READ)
        self._pos += len(data)
        return data

    def read_rest(self) -> None:
        """Read (and keep) whatever the upload did not, so the check can finish; never raises."""
        while not self._at_eof and self._failure is None:
            try:
                self._read_fd(_READ)
            except ReferenceError:
                return

    def close(self) -> None:
        """Close the descriptor; readers still waiting for bytes get the failure or EOF."""
        with self._changed:
            if not self._closed:
                self._closed = True
                os.close(self._fd)
                if not self._at_eof and self._failure is None:
                    self._failure = ReferenceError(f"{self._path} was not read to the end; try again", reason="changed")
                self._changed.notify_all()

    def _read_fd(self, want: int) -> bytes:
        try:
            data = os.read(self._fd, min(want, self._size + 1 - self._recorded) or 1)
        except OSError as exc:
            self._fail(ReferenceError(f"can't read {self._path}: {exc.strerror or exc}", reason="unreadable"))
            raise self._failure from None  # type: ignore[misc]
        if data:
            self._keep(data)
            if self._recorded > self._size:
                if self._recorded > self._max_bytes:
                    self._fail(
                        ReferenceError(
                            f"reference {self._path} grew past the {format_size(self._max_bytes)} limit while "
                            "being read",
                            reason="too_large",
                        )
                    )
                else:
                    self._fail(self._changed_error())
                raise self._failure  # type: ignore[misc]
        else:
            self._check_end()
            if self._failure is not None:
                raise self._failure
        return data

    def _check_end(self) -> None:
        if self._recorded == self._size:
            # The size was read from fstat: confirm the end (one more byte would mean it grew).
            with self._changed:
                if self._recorded == self._size and not self._at_eof:
                    try:
                        extra = os.read(self._fd, 1)
                    except OSError:
                        extra = b""
                    if extra:
                        self._failure = self._changed_error()
                    else:
                        self._at_eof = True
                    self._changed.notify_all()
        else:
            self._fail(self._changed_error())

    def _changed_error(self) -> ReferenceError:
        return ReferenceError(f"{self._path} changed while it was being read; try again", reason="changed")

    def _fail(self, error: ReferenceError) -> None:
        with self._changed:
            if self._failure is None:
                self._failure = error
            self._changed.notify_all()

    def _keep(self, data: bytes) -> None:
        with self._changed:
            self._starts.append(self._recorded)
            self._chunks.append(data)
            self._recorded += len(data)
            self._changed.notify_all()

    def _rest_of_chunk(self) -> bytes:
        index = bisect.bisect_right(self._starts, self._pos) - 1
        chunk, chunk_start = self._chunks[index], self._starts[index]
        piece = chunk if self._pos == chunk_start else chunk[self._pos - chunk_start :]
        self._pos += len(piece)
        return piece

    def _slice(self, start: int, n: int, *, advance: bool = False) -> bytes:
        end = min(start + n, self._recorded)
        parts: list[bytes] = []
        index = bisect.bisect_right(self._starts, start) - 1
        pos = start
        while pos < end:
            chunk, chunk_start = self._chunks[index], self._starts[index]
            piece = chunk[pos - chunk_start : end - chunk_start]
            parts.append(piece)
            pos += len(piece)
            index += 1
        if advance:
            self._pos = end
        return parts[0] if len(parts) == 1 else b"".join(parts)

    # --- the check's side (a worker thread) --------------------------------------------------

    def reader(self) -> _Reader:
        """A blocking file object over the kept bytes; its reads wait until the upload read them all."""
        return _Reader(self)

    def _wait_for(self, end: int) -> int:
        """Block until ``end`` bytes are kept or the file is finished; how many are kept."""
        with self._changed:
            while self._recorded < end and not self._at_eof:
                if self._failure is not None:
                    raise self._failure
                self._changed.wait()
            return self._recorded

    def _wait_for_end(self) -> None:
        with self._changed:
            while not self._at_eof:
                if self._failure is not None:
                    raise self._failure
                self._changed.wait()


class _Reader(io.RawIOBase):
    """What Pillow reads in the check: the kept bytes, blocking until the upload has read them."""

    def __init__(self, recorded: RecordedFile) -> None:
        self._recorded = recorded
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            self._recorded._wait_for_end()
            self._pos = self._recorded._recorded + offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = offset
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        self._recorded._wait_for_end()  # see the module docstring: start once everything is read
        if n is None or n < 0:
            n = max(0, self._recorded._recorded - self._pos)
        if n == 0:
            return b""
        available = self._recorded._wait_for(self._pos + n)
        if self._pos >= available:
            return b""
        data = self._recorded._slice(self._pos, n)
        self._pos += len(data)
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
