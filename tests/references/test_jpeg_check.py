"""The streamed JPEG check (``JpegChecker``): structure from SOI to EOI, as a table and on real files."""

from __future__ import annotations

import io
import random
import struct
from typing import Any

import pytest
from PIL import Image

from rivya_mcp.references import JpegChecker, ReferenceError, check_jpeg


def segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


SOF = segment(0xC0, struct.pack(">BHHB", 8, 2, 3, 1) + b"\x01\x11\x00")  # 3×2, one component
SOS = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
SCAN = b"\x12\x34\xff\x00\x56\xff\xd0\x78"  # a stuffed 0xFF00 and a restart marker: not the end
SOI, EOI = b"\xff\xd8", b"\xff\xd9"
GOOD = SOI + segment(0xE0, b"JFIF\0" + b"\0" * 9) + SOF + SOS + SCAN + EOI

REFUSED: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "before its end-of-image"),
    "not SOI": (b"\xff\xd9" + GOOD[2:], "start-of-image"),
    "cut in a segment": (GOOD[:10], "before its end-of-image"),
    "cut in the scan": (GOOD[:-4], "before its end-of-image"),
    "cut before EOI": (GOOD[:-2], "before its end-of-image"),
    "cut after EOI's 0xFF": (GOOD[:-1], "before its end-of-image"),
    "EOI before any scan": (SOI + SOF + EOI, "before any image data"),
    "scan before a frame": (SOI + SOS + SCAN + EOI, "before a frame header"),
    "second SOI": (SOI + SOF + SOI + SOS + SCAN + EOI, "second start-of-image"),
    "bad segment length": (SOI + b"\xff\xe0\x00\x01" + SOF + SOS + SCAN + EOI, "claims 1 bytes"),
    "short frame header": (SOI + segment(0xC0, b"\x08\x00") + SOS + SCAN + EOI, "frame header is too short"),
}


@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.parametrize("piece", [1, 2, 5, 4096])
def test_a_broken_jpeg_is_refused_however_it_is_split(case: str, piece: int) -> None:
    data, phrase = REFUSED[case]
    checker = JpegChecker()
    with pytest.raises(ReferenceError) as caught:
        for start in range(0, len(data), piece):
            checker.feed(data[start : start + piece])
        checker.finish()
    assert caught.value.reason == "corrupt"
    assert "truncated or corrupt" in caught.value.message and phrase in caught.value.message, caught.value.message


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 10_000])
def test_an_intact_jpeg_passes_however_it_is_split(piece: int) -> None:
    for data in (GOOD, GOOD + b"trailing", GOOD[:2] + b"\0\0" + GOOD[2:], SOI + SOF + SOS + b"\xff\xff" + EOI):
        checker = JpegChecker(size=(3, 2))
        for start in range(0, len(data), piece):
            checker.feed(memoryview(data)[start : start + piece])
        checker.finish()
        assert checker.done and checker.size == (3, 2)


def test_a_different_size_than_the_header_checked_means_the_file_changed() -> None:
    with pytest.raises(ReferenceError) as caught:
        JpegChecker(size=(4, 4)).feed(GOOD)
    assert caught.value.reason == "changed"


PILLOW_VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"quality": 90},
    "progressive": {"quality": 90, "progressive": True},
    "optimized": {"quality": 90, "optimize": True},
    "restart markers": {"quality": 90, "restart_marker_blocks": 2},
    "with EXIF": {"quality": 90, "exif": b"Exif\0\0II*\0\x08\0\0\0\0\0"},
    "4:4:4": {"quality": 95, "subsampling": 0},
}


@pytest.mark.parametrize("variant", list(PILLOW_VARIANTS))
def test_real_files_pass_whole_and_are_refused_cut(variant: str) -> None:
    pixels = random.Random(2).randbytes(160 * 120 * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (160, 120), pixels).save(buffer, format="JPEG", **PILLOW_VARIANTS[variant])
    data = buffer.getvalue()
    assert check_jpeg(data) == (160, 120)
    for cut in (len(data) - 1, len(data) - 2, len(data) // 2, 300, 3):
        with pytest.raises(ReferenceError, match="truncated or corrupt"):
            check_jpeg(data[:cut])
