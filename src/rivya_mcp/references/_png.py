"""The PNG integrity check, fed piece by piece: every chunk's CRC, in order, up to IEND.

This is the deep check for PNG references (what Pillow's ``verify()`` does, plus IEND's own CRC,
the IHDR size and the presence of image data), written to take the bytes as they stream past, so
a local PNG can be checked while it is uploaded without holding it in memory. It does not
decompress the image data: like ``verify()``, it proves the file is whole and unaltered since it
was written, not that the compressed pixels inflate.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from functools import cache

from ._errors import ReferenceError, size_changed

__all__ = ["PNG_SIGNATURE", "PngChecker", "check_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_CHUNK = 2**31 - 1  # the PNG spec's limit for a chunk length
_IHDR_LENGTH = 13

Crc32 = Callable[[bytes | memoryview, int], int]


@cache
def crc32_function() -> Crc32:
    """zlib-ng's CRC-32 when it is installed, else the standard library's: the same CRC.

    The CRC walk is most of the check's time, and it sits on the upload's path: on a 10 MB PNG
    here zlib-ng's SIMD CRC takes ~0.2 ms where the system zlib's takes ~2.5 ms. zlib-ng is a
    dependency only where it has wheels (see pyproject.toml); imported on first use, not at start.
    """
    try:
        from zlib_ng.zlib_ng import crc32
    except ImportError:
        return zlib.crc32
    return crc32


class PngChecker:
    """Feed a PNG's bytes in any pieces with ``feed``, then call ``finish`` at its end.

    Both raise ``ReferenceError(reason="corrupt")`` naming the first problem: a wrong signature,
    a chunk whose CRC doesn't match, a first chunk that isn't IHDR, no image data, or an end
    before IEND. Bytes after IEND are ignored, as decoders do. With ``size`` given, IHDR must
    claim exactly that width and height (the header was checked earlier; this catches a file
    changed in between).
    """

    def __init__(self, *, size: tuple[int, int] | None = None) -> None:
        self._expected_size = size
        self.size: tuple[int, int] | None = None
        self._offset = 0  # bytes consumed so far
        self._pending = bytearray()  # a signature, chunk header or CRC split across pieces
        self._state = "signature"
        self._chunk_type = b""
        self._chunk_start = 0
        self._remaining = 0  # data bytes of the current chunk still to come
        self._crc = 0
        self._ihdr = bytearray()
        self._seen_idat = False
        self._crc32 = crc32_function()

    @property
    def done(self) -> bool:
        """Whether IEND has been read and checked."""
        return self._state == "done"

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view and self._state != "done":
            if self._state == "data":
                take = min(self._remaining, len(view))
                piece = view[:take]
                self._crc = self._crc32(piece, self._crc)
                if self._chunk_type == b"IHDR":
                    self._ihdr += piece
                self._remaining -= take
                self._offset += take
                view = view[take:]
                if self._remaining == 0:
                    self._state = "crc"
                continue
            need = {"signature": 8, "header": 8, "crc": 4}[self._state]
            take = min(need - len(self._pending), len(view))
            self._pending += view[:take]
            self._offset += take
            view = view[take:]
            if len(self._pending) == need:
                field = bytes(self._pending)
                self._pending.clear()
                self._complete(field)

    def finish(self) -> None:
        if self._state != "done":
            raise _corrupt(f"it ends after {self._offset} bytes, before its IEND chunk")

    def _complete(self, field: bytes) -> None:
        if self._state == "signature":
            if field != PNG_SIGNATURE:
                raise _corrupt("it doesn't start with the PNG signature")
            self._state = "header"
        elif self._state == "header":
            self._start_chunk(field)
        else:
            self._end_chunk(field)

    def _start_chunk(self, header: bytes) -> None:
        length, chunk_type = struct.unpack(">I4s", header)
        self._chunk_start = self._offset - 8
        if not chunk_type.isalpha():
            raise _corrupt(f"a chunk at byte {self._chunk_start} has an invalid type {chunk_type!r}")
        if length > _MAX_CHUNK:
            raise _corrupt(f"chunk {chunk_type.decode()!r} at byte {self._chunk_start} claims {length} bytes")
        first = self._chunk_type == b""
        if first and (chunk_type != b"IHDR" or length != _IHDR_LENGTH):
            raise _corrupt("its first chunk is not a valid IHDR header")
        if chunk_type == b"IEND" and length != 0:
            raise _corrupt(f"its IEND chunk at byte {self._chunk_start} is not empty")
        self._chunk_type = chunk_type
        self._remaining = length
        self._crc = self._crc32(chunk_type, 0)
        self._state = "data" if length else "crc"

    def _end_chunk(self, stored: bytes) -> None:
        name = self._chunk_type.decode()
        if struct.unpack(">I", stored)[0] != self._crc:
            raise _corrupt(f"chunk {name!r} at byte {self._chunk_start} fails its CRC check")
        if self._chunk_type == b"IHDR":
            self._check_ihdr()
        elif self._chunk_type == b"IDAT":
            self._seen_idat = True
        elif self._chunk_type == b"IEND":
            if not self._seen_idat:
                raise _corrupt("it has no image data (IDAT) before IEND")
            self._state = "done"
            return
        self._state = "header"

    def _check_ihdr(self) -> None:
        width, height = struct.unpack(">II", self._ihdr[:8])
        if width == 0 or height == 0:
            raise _corrupt("its IHDR header claims no pixels")
        if self._expected_size is not None and (width, height) != self._expected_size:
            raise size_changed("PNG", (width, height), self._expected_size)
        self.size = (width, height)


def check_png(data: bytes) -> tuple[int, int]:
    """Check a whole PNG in memory; returns its (width, height)."""
    checker = PngChecker()
    checker.feed(data)
    checker.finish()
    assert checker.size is not None  # finish() passed, so IHDR was read
    return checker.size


def _corrupt(problem: str) -> ReferenceError:
    return ReferenceError(
        f"the PNG image is truncated or corrupt ({problem}); re-export or re-download it", reason="corrupt"
    )
