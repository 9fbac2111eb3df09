"""A local PNG that is checked as it is read, for uploading without holding it in memory.

``CheckedPngFile`` is the upload's file object. Every ``read`` takes the next bytes from the
descriptor that was opened and checked (never the path again) and feeds them to a ``PngChecker``
before handing them out, so the bytes sent are exactly the bytes checked. A problem (a bad CRC,
an early end, a file that changed size) raises ``ReferenceError`` from ``read``: the upload stops
mid-body and the API never receives a complete file. The end of the file is only reported (an
empty read) once the whole image has passed, so the multipart body can't be completed before.

``seek(0)`` starts over (a retried upload re-reads and re-checks everything); ``seek(0, 2)``
reports the checked size, which is how httpx2 learns the Content-Length.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from ._errors import ReferenceError
from ._png import PngChecker

__all__ = ["CheckedPngFile"]


class CheckedPngFile(io.RawIOBase):
    """The open PNG ``fd`` of ``size`` bytes whose header said ``width``×``height``; owns ``fd``."""

    def __init__(self, fd: int, path: Path, *, size: int, width: int, height: int) -> None:
        super().__init__()
        self._fd = fd
        self._path = path
        self._size = size
        self._dimensions = (width, height)
        self._position = 0
        self._checked = 0  # bytes fed to the checker since the last rewind
        self._checker = PngChecker(size=self._dimensions)

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
            self._checker = PngChecker(size=self._dimensions)
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
        want = left if size is None or size < 0 else min(size, left)
        chunk = os.pread(self._fd, want, self._position)
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
