"""The streamed WebP check (``WebpChecker``): the RIFF structure to its end, as a table and on real files."""

from __future__ import annotations

import functools
import io
import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from rivya_mcp.references import ReferenceError, WebpChecker, check_webp


def chunk(fourcc: bytes, payload: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def riff(*chunks: bytes, size: int | None = None) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def vp8(width: int, height: int, first_partition: int = 4, data: bytes = b"\x11" * 9) -> bytes:
    frame_tag = (first_partition << 5) | 0x10  # a key frame (bit 0 clear), shown
    header = frame_tag.to_bytes(3, "little") + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
    return chunk(b"VP8 ", header + data)


def vp8l(width: int, height: int, data: bytes = b"\x22" * 6) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    return chunk(b"VP8L", b"\x2f" + bits.to_bytes(4, "little") + data)


def vp8x(width: int, height: int, flags: int = 0) -> bytes:
    canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return chunk(b"VP8X", bytes([flags, 0, 0, 0]) + canvas)


LOSSY = riff(vp8(3, 2))
LOSSLESS = riff(vp8l(3, 2))
EXTENDED = riff(vp8x(3, 2, flags=0x10), chunk(b"ALPH", b"\x00\x01\x02"), vp8(3, 2), chunk(b"EXIF", b"Exif\0"))
ANIMATED = riff(vp8x(3, 2, flags=0x02), chunk(b"ANIM", b"\0" * 6), chunk(b"ANMF", b"\0" * 16 + vp8(3, 2)))

REFUSED: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "inside its RIFF header"),
    "not RIFF": (b"RIFX" + LOSSY[4:], "RIFF/WEBP header"),
    "not WEBP": (LOSSY[:8] + b"WAVE" + LOSSY[12:], "RIFF/WEBP header"),
    "RIFF size too small": (riff(vp8(3, 2), size=4), "too few for any image"),
    "cut in the RIFF header": (LOSSY[:7], "inside its RIFF header"),
    "cut in a chunk header": (LOSSY[:15], "but its RIFF header declares"),
    "cut in the bitstream": (LOSSY[:-3], "but its RIFF header declares"),
    "cut in a later chunk": (EXTENDED[:-4], "but its RIFF header declares"),
    "RIFF size past the end": (riff(vp8(3, 2), size=len(LOSSY) + 10), "but its RIFF header declares"),
    "chunk past the RIFF end": (riff(vp8(3, 2), size=len(LOSSY) - 10), "runs past the end of the RIFF"),
    "first chunk not an image": (riff(chunk(b"EXIF", b"Exif\0"), vp8(3, 2)), "first chunk is 'EXIF'"),
    "no image at all": (riff(vp8x(3, 2), chunk(b"EXIF", b"Exif\0")), "holds no image data"),
    "VP8X too short": (riff(chunk(b"VP8X", b"\0" * 4), vp8(3, 2)), "VP8X header is misplaced or too short"),
    "VP8X not first": (riff(vp8(3, 2), vp8x(3, 2)), "VP8X header is misplaced"),
    "VP8 without a start code": (riff(chunk(b"VP8 ", b"\x10\x00\x00" + b"\0" * 7 + b"x" * 9)), "key frame"),
    "VP8 inter frame": (riff(chunk(b"VP8 ", b"\x11\x00\x00\x9d\x01\x2a" + b"\x03\0\x02\0" + b"x" * 9)), "key frame"),
    "VP8 partition past its chunk": (riff(vp8(3, 2, first_partition=500)), "first partition runs past"),
    "VP8L without its signature": (riff(chunk(b"VP8L", b"\x00" * 11)), "signature"),
    "VP8L unknown version": (riff(chunk(b"VP8L", b"\x2f\x02\x40\x00\xe0" + b"\0" * 6)), "unknown version"),
    "two bitstreams in a still image": (riff(vp8(3, 2), vp8l(3, 2)), "second image bitstream"),
    "bitstream larger than its canvas": (riff(vp8x(3, 2), vp8(4, 2)), "its canvas 3×2"),
    "zero pixels": (riff(vp8(0, 2)), "claims no pixels"),
}


def webp_size(prefix: bytes) -> tuple[int, int] | None:
    """What the cheap check reads from a file's first bytes (the checker fed them, not finished)."""
    checker = WebpChecker()
    checker.feed(prefix)
    return checker.size


def feed(checker: WebpChecker, data: bytes, piece: int) -> None:
    for start in range(0, len(data), piece):
        checker.feed(memoryview(data)[start : start + piece])


@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.parametrize("piece", [1, 2, 5, 4096])
def test_a_broken_webp_is_refused_however_it_is_split(case: str, piece: int) -> None:
    data, phrase = REFUSED[case]
    checker = WebpChecker()
    with pytest.raises(ReferenceError) as caught:
        feed(checker, data, piece)
        checker.finish()
    assert caught.value.reason == "corrupt"
    assert "truncated or corrupt" in caught.value.message and phrase in caught.value.message, caught.value.message


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 10_000])
@pytest.mark.parametrize(
    "data",
    [LOSSY, LOSSLESS, EXTENDED, ANIMATED, LOSSY + b"trailing bytes after the container"],
    ids=["lossy", "lossless", "extended", "animated", "trailing"],
)
def test_an_intact_webp_passes_however_it_is_split(data: bytes, piece: int) -> None:
    checker = WebpChecker(size=(3, 2))
    feed(checker, data, piece)
    checker.finish()
    assert checker.done and checker.size == (3, 2)


def test_an_odd_last_chunk_may_end_the_container_without_its_pad_byte() -> None:
    padded = riff(vp8(3, 2))  # a 19-byte payload, so a pad byte closes the file
    assert padded.endswith(b"\x11\0")
    padless = b"RIFF" + struct.pack("<I", len(padded) - 9) + padded[8:-1]
    assert check_webp(padless) == (3, 2)


def test_a_webp_that_changed_size_since_its_header_was_checked_is_refused() -> None:
    with pytest.raises(ReferenceError) as caught:
        WebpChecker(size=(4, 4)).feed(LOSSLESS)
    assert caught.value.reason == "changed" and "3×2" in caught.value.message


@pytest.mark.parametrize(("data", "enough"), [(LOSSY, 30), (LOSSLESS, 25), (EXTENDED, 30)])
def test_the_size_is_read_from_the_first_bytes(data: bytes, enough: int) -> None:
    assert webp_size(data[:enough]) == (3, 2)
    assert webp_size(data[: enough - 1]) is None


def _pillow_webp(**options: Any) -> bytes:
    image = Image.frombytes("RGB", (300, 200), random.Random(0).randbytes(300 * 200 * 3))
    if options.pop("alpha", False):
        image = image.convert("RGBA")
        image.putalpha(128)
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", **options)
    return buffer.getvalue()


def _pillow_animation() -> bytes:
    frames = [Image.new("RGB", (120, 90), colour) for colour in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


REAL = {
    "lossy": (lambda: _pillow_webp(quality=80), (300, 200)),
    "lossless": (lambda: _pillow_webp(lossless=True), (300, 200)),
    "lossy with alpha": (lambda: _pillow_webp(alpha=True, quality=80), (300, 200)),
    "with EXIF": (lambda: _pillow_webp(quality=80, exif=b"Exif\0\0" + b"x" * 11), (300, 200)),
    "animated": (_pillow_animation, (120, 90)),
}


@pytest.mark.parametrize("kind", list(REAL))
def test_files_pillow_writes_pass_and_every_cut_of_them_is_refused(kind: str) -> None:
    make, size = REAL[kind]
    data = make()
    assert check_webp(data) == size
    assert webp_size(data[:30]) == size
    for cut in sorted({*range(64), *range(64, len(data), max(1, len(data) // 97)), len(data) - 1}):
        with pytest.raises(ReferenceError) as caught:
            check_webp(data[:cut])
        assert caught.value.reason == "corrupt", cut


@functools.cache
def _real(kind: str) -> bytes:
    return REAL[kind][0]()


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    kind=st.sampled_from(sorted(REAL)),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.integers(0, 2)), max_size=4),
    piece=st.integers(512, 65536),  # small pieces: the tables above
)
def test_hostile_bytes_only_ever_end_in_a_reference_error(
    kind: str, edits: list[tuple[float, int, int]], piece: int
) -> None:
    """Flipped, dropped and inserted bytes anywhere: the check passes or refuses, never crashes."""
    data = bytearray(_real(kind))
    for where, value, how in edits:
        at = int(where * len(data))
        if how == 0:
            data[at] = value
        elif how == 1:
            del data[at : at + value % 9 + 1]
        else:
            data[at:at] = bytes([value]) * (value % 9 + 1)
    checker = WebpChecker()
    try:
        feed(checker, bytes(data), piece)
        checker.finish()
        webp_size(bytes(data[:64]))
    except ReferenceError as refusal:
        assert refusal.reason == "corrupt"
