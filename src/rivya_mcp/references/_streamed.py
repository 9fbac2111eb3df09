"""A local image that is checked as it is read, for uploading without holding it in memory.

``CheckedFile`` is the upload's file object. Every ``read`` takes the next bytes from the
descriptor that was opened and checked (never the path again) and feeds them to a streaming check
(``PngChecker``, ``JpegChecker``) before handing them out, so the bytes sent are exactly the bytes
checked. A problem (a bad CRC, an early end, a file that changed size) raises ``ReferenceError``
from ``read``: the upload stops mid-body and the API never receives a complete file. The end of
the file is only reported (an empty read) once the whole image has passed, so the multipart body
can't be completed before.

Reads are plain blocking ``pread`` calls on the event loop, as httpx2 itself reads an open file
for an upload: local-disk reads, far shorter than sending them. Each read returns up to
``READ_BLOCK`` bytes even when asked for fewer: httpx2 asks for 64 KiB and sends whatever a read
returns, and fewer, larger pieces cut the upload's CPU time (measured: a 10 MB PNG's CRC walk
plus sending cost ~4 ms less in 256 KiB pieces), which pays for the check.

``seek(0)`` starts over (a retried upload re-reads and re-checks everything); ``seek(0, 2)``
reports the checked size, which is how httpx2 learns the Content-Length.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ._errors import ReferenceError

__all__ = ["READ_BLOCK", "CheckedFile", "StreamCheck"]

READ_BLOCK = 256 * 1024


class StreamCheck(Protocol):
    """A check fed an image's bytes in order (``feed``), then told it has them all (``finish``)."""

    def feed(self, data: bytes) -> None: ...

    def finish(self) -> None: ...


class CheckedFile(io.RawIOBase):
    """The open file ``fd`` of ``size`` bytes, checked by a fresh ``new_check()`` per pass; owns ``fd``."""

    def __init__(self, fd: int, path: Path, *, size: int, new_check: Callable[[], StreamCheck]) -> None:
        super().__init__()
        self._fd = fd
        self._path = path
        self._size = size
        self._new_check = new_check
        self._position = 0
        self._checked = 0  # bytes fed to the check since the last rewind
        self._checker = new_check()

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        target = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence] + offset
        if target not in (0, self._size):
            raise io.UnsupportedOperation("a checked file can only be rewound or measured")
        if target == 0:
            self._checker = self._new_check()
            self._checked = 0
        self._position = target
        return target

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read of a closed file")
        left = self._size - self._position
        if left <= 0:
            self._check_end()
            return b""
        want = left if size is None or size < 0 else min(max(size, READ_BLOCK), left)
        try:
            chunk = os.pread(self._fd, want, self._position)
        except OSError as exc:  # EIO mid-upload: say so, as a refused reference, not a crash
            raise ReferenceError(f"can't read {self._path}: {exc.strerror or exc}", reason="unreadable") from None
        if not chunk:
            raise ReferenceError(f"{self._path} shrank while it was being read; try again", reason="changed")
        self._checker.feed(chunk)
        self._position += len(chunk)
        self._checked += len(chunk)
        return chunk

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()

    def _check_end(self) -> None:
        if self._checked != self._size:
            raise ReferenceError(f"{self._path} was not read from its start; try again", reason="changed")
        if os.pread(self._fd, 1, self._size):
            raise ReferenceError(f"{self._path} grew while it was being read; try again", reason="changed")
        self._checker.finish()
