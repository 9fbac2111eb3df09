"""The WebP integrity check, fed piece by piece: the RIFF container's structure to its end.

Like JPEG, WebP carries no checksums, so what can be proven without decoding is structure:
``RIFF`` <size> ``WEBP``, then chunks (a FourCC, a little-endian payload size, the payload, a pad
byte after an odd size) that exactly fill the size the RIFF header declares; an image (a ``VP8 ``
or ``VP8L`` bitstream, or ``ANMF`` frames behind a ``VP8X`` header); and the dimensions the
bitstream or the ``VP8X`` canvas declare. That catches the realistic damage (a cut-off download
or copy: the RIFF size is the file's length) at the cost of skipping bytes, where decoding a
10 MB WebP took 100–300 ms here, longer than uploading it on loopback, and held its decoded
pixels (several times the file) in memory. Bytes after the RIFF container are ignored, as
readers do; a damaged bitstream inside an intact container is left to the decoder, as with JPEG.
"""

from __future__ import annotations

import struct

from ._errors import ReferenceError, size_changed

__all__ = ["WebpChecker", "check_webp"]

_RIFF_HEADER = 12  # b"RIFF", payload size, b"WEBP"
_CHUNK_HEADER = 8  # FourCC, payload size
# How much of a chunk's payload is kept for its header fields (VP8X: 10 bytes, VP8: 10, VP8L: 5).
_HEAD_BYTES = {b"VP8X": 10, b"VP8 ": 10, b"VP8L": 5}
_IMAGE_CHUNKS = frozenset({b"VP8 ", b"VP8L"})
_VP8_START_CODE = b"\x9d\x01\x2a"
_VP8L_SIGNATURE = 0x2F


class WebpChecker:
    """Feed a WebP's bytes in any pieces with ``feed``, then call ``finish`` at its end.

    Both raise ``ReferenceError(reason="corrupt")``. With ``size`` given, the image must claim
    exactly that width and height. ``size`` is known as soon as the first chunk's header has been
    read (the canvas of a ``VP8X`` file, else its bitstream's).
    """

    def __init__(self, *, size: tuple[int, int] | None = None) -> None:
        self._expected_size = size
        self.size: tuple[int, int] | None = None
        self._offset = 0  # bytes consumed so far
        self._end = 0  # where the RIFF container ends (8 + its declared size)
        self._state = "riff"  # riff → header → payload (→ pad) → header … → done
        self._fixed = bytearray()  # the RIFF or chunk header being collected
        self._fourcc = b""
        self._size = 0  # the current chunk's payload size
        self._remaining = 0  # payload bytes of the current chunk still to come
        self._padded = False  # the current chunk's payload is followed by a pad byte
        self._head = bytearray()  # the current chunk's first payload bytes (see _HEAD_BYTES)
        self._chunks = 0
        self._canvas: tuple[int, int] | None = None
        self._animated = False
        self._seen_image = False

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes | memoryview) -> None:
        piece = memoryview(data)
        at = 0
        while at < len(piece) and self._state != "done":
            if self._state in ("riff", "header"):
                need = (_RIFF_HEADER if self._state == "riff" else _CHUNK_HEADER) - len(self._fixed)
                take = piece[at : at + need]
                self._fixed += take
                at += len(take)
                self._offset += len(take)
                if len(take) == need:
                    field = bytes(self._fixed)
                    self._fixed.clear()
                    if self._state == "riff":
                        self._riff(field)
                    else:
                        self._chunk(field)
            elif self._state == "payload":
                take_n = min(self._remaining, len(piece) - at)
                wanted = _HEAD_BYTES.get(self._fourcc, 0) - len(self._head)
                if wanted > 0:
                    self._head += piece[at : at + min(wanted, take_n)]
                    if len(self._head) == _HEAD_BYTES[self._fourcc]:
                        self._read_head()  # now, not at the chunk's end: the size is known early
                at += take_n
                self._offset += take_n
                self._remaining -= take_n
                if self._remaining == 0:
                    self._end_payload()
            else:  # "pad": one byte, whatever its value (writers put 0; readers don't look)
                at += 1
                self._offset += 1
                self._next_chunk()

    def finish(self) -> None:
        if self._state == "done":
            return
        if self._state == "riff":
            raise _corrupt(f"it ends after {self._offset} bytes, inside its RIFF header")
        # The RIFF size promised more: the file was cut short.
        raise _corrupt(f"it ends after {self._offset} bytes, but its RIFF header declares {self._end}")

    def _riff(self, field: bytes) -> None:
        if field[:4] != b"RIFF" or field[8:12] != b"WEBP":
            raise _corrupt("it doesn't start with a RIFF/WEBP header")
        (size,) = struct.unpack("<I", field[4:8])
        if size < 4 + _CHUNK_HEADER:
            raise _corrupt(f"its RIFF header declares {size} bytes, too few for any image")
        self._end = 8 + size
        self._state = "header"

    def _chunk(self, field: bytes) -> None:
        fourcc = field[:4]
        (size,) = struct.unpack("<I", field[4:8])
        self._chunks += 1
        if self._chunks == 1 and fourcc not in (b"VP8X", *_IMAGE_CHUNKS):
            raise _corrupt(f"its first chunk is {_name(fourcc)}, not VP8, VP8L or VP8X")
        payload_end = self._offset + size
        if payload_end > self._end:
            raise _corrupt(f"its {_name(fourcc)} chunk runs past the end of the RIFF container")
        self._fourcc = fourcc
        self._size = self._remaining = size
        # A pad byte follows an odd size, except that writers may leave it off at the very end.
        self._padded = size % 2 == 1 and payload_end < self._end
        self._head.clear()
        self._state = "payload"
        if size == 0:
            self._end_payload()

    def _read_head(self) -> None:
        head = bytes(self._head)
        if self._fourcc == b"VP8X":
            self._vp8x(head)
        elif self._fourcc in _IMAGE_CHUNKS:
            self._bitstream(head)

    def _end_payload(self) -> None:
        if len(self._head) < _HEAD_BYTES.get(self._fourcc, 0):
            self._read_head()  # a chunk shorter than its header fields: refused there
        if self._fourcc == b"ANMF":
            self._seen_image = True
        if self._padded:
            self._state = "pad"
        else:
            self._next_chunk()

    def _next_chunk(self) -> None:
        if self._offset < self._end:
            self._state = "header"
            return
        if not self._seen_image:
            raise _corrupt("its RIFF container holds no image data")
        self._state = "done"

    def _vp8x(self, head: bytes) -> None:
        if self._chunks != 1 or len(head) < 10:
            raise _corrupt("its VP8X header is misplaced or too short")
        self._animated = bool(head[0] & 0x02)
        width = 1 + int.from_bytes(head[4:7], "little")
        height = 1 + int.from_bytes(head[7:10], "little")
        self._canvas = (width, height)
        self._claim(width, height)

    def _bitstream(self, head: bytes) -> None:
        if self._seen_image and not self._animated:
            raise _corrupt("it holds a second image bitstream")
        if self._fourcc == b"VP8 ":
            if len(head) < 10 or head[3:6] != _VP8_START_CODE or head[0] & 0x01:
                raise _corrupt("its VP8 bitstream doesn't start with a key frame")
            frame_tag = int.from_bytes(head[0:3], "little")
            if (frame_tag >> 5) > self._size - 10:
                raise _corrupt("its VP8 bitstream's first partition runs past its chunk")
            width = int.from_bytes(head[6:8], "little") & 0x3FFF
            height = int.from_bytes(head[8:10], "little") & 0x3FFF
        else:
            if len(head) < 5 or head[0] != _VP8L_SIGNATURE:
                raise _corrupt("its VP8L bitstream doesn't start with its signature")
            bits = int.from_bytes(head[1:5], "little")
            if bits >> 29:
                raise _corrupt("its VP8L bitstream has an unknown version")
            width = 1 + (bits & 0x3FFF)
            height = 1 + ((bits >> 14) & 0x3FFF)
        self._seen_image = True
        if self._canvas is None:
            self._claim(width, height)
        elif not self._animated and (width, height) != self._canvas:
            raise _corrupt(
                f"its bitstream is {width}×{height} pixels but its canvas {self._canvas[0]}×{self._canvas[1]}"
            )

    def _claim(self, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise _corrupt("it claims no pixels")
        if self._expected_size is not None and (width, height) != self._expected_size:
            raise size_changed("WebP", (width, height), self._expected_size)
        self.size = (width, height)


def check_webp(data: bytes) -> tuple[int, int]:
    """Check a whole WebP in memory; returns its (width, height)."""
    checker = WebpChecker()
    checker.feed(data)
    checker.finish()
    assert checker.size is not None  # finish() passed, so an image header was read
    return checker.size


def _name(fourcc: bytes) -> str:
    return repr(fourcc.decode("latin-1").rstrip())


def _corrupt(problem: str) -> ReferenceError:
    return ReferenceError(
        f"the WebP image is truncated or corrupt ({problem}); re-export or re-download it", reason="corrupt"
    )
