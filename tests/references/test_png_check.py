"""The streamed PNG check (``PngChecker``) as a table, and the file object that uploads through it."""

from __future__ import annotations

import io
import os
import random
import struct
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from rivya_mcp.references import PNG_SIGNATURE, CheckedFile, PngChecker, ReferenceError, check_png, crc32_function


def chunk(kind: bytes, body: bytes, *, crc: int | None = None) -> bytes:
    stored = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", stored)


IHDR = chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0))
IDAT = chunk(b"IDAT", zlib.compress(b"\0" + b"\x10" * 9 + b"\0" + b"\x20" * 9))
IEND = chunk(b"IEND", b"")
GOOD = PNG_SIGNATURE + IHDR + chunk(b"tEXt", b"k\0v") + IDAT + IEND


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


REFUSED: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "before its IEND"),
    "signature only": (PNG_SIGNATURE, "before its IEND"),
    "wrong signature": (b"\x89PNG\r\n\x1a\x0b" + IHDR + IDAT + IEND, "PNG signature"),
    "cut in a chunk header": (GOOD[:-10], "before its IEND"),
    "cut in IDAT": (PNG_SIGNATURE + IHDR + IDAT[:12], "before its IEND"),
    "no IEND": (PNG_SIGNATURE + IHDR + IDAT, "before its IEND"),
    "IEND cut before its CRC": (GOOD[:-2], "before its IEND"),
    "bit flip in IDAT data": (flip(GOOD, len(PNG_SIGNATURE + IHDR) + 20 + 12), "'IDAT'"),
    "bad IHDR CRC": (PNG_SIGNATURE + chunk(b"IHDR", IHDR[8:21], crc=1) + IDAT + IEND, "'IHDR' at byte 8 fails"),
    "bad IEND CRC": (PNG_SIGNATURE + IHDR + IDAT + chunk(b"IEND", b"", crc=0), "'IEND'"),
    "first chunk not IHDR": (PNG_SIGNATURE + IDAT + IHDR + IEND, "first chunk"),
    "short IHDR": (PNG_SIGNATURE + chunk(b"IHDR", b"\0" * 12) + IDAT + IEND, "first chunk"),
    "zero width": (PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 2, 8, 2, 0, 0, 0)) + IDAT + IEND,
                   "no pixels"),
    "no IDAT": (PNG_SIGNATURE + IHDR + IEND, "no image data"),
    "IEND with data": (PNG_SIGNATURE + IHDR + IDAT + chunk(b"IEND", b"x"), "not empty"),
    "invalid chunk type": (PNG_SIGNATURE + IHDR + chunk(b"ID@T", b"x") + IEND, "invalid type"),
    "absurd length": (PNG_SIGNATURE + IHDR + struct.pack(">I4s", 2**31, b"IDAT"), "claims"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.parametrize("piece", [1, 3, 7, 4096])
def test_a_broken_png_is_refused_however_it_is_split(case: str, piece: int) -> None:
    data, phrase = REFUSED[case]
    checker = PngChecker()
    with pytest.raises(ReferenceError) as caught:
        for start in range(0, len(data), piece):
            checker.feed(data[start : start + piece])
        checker.finish()
    assert caught.value.reason == "corrupt"
    assert "truncated or corrupt" in caught.value.message and phrase in caught.value.message, caught.value.message


@pytest.mark.parametrize("piece", [1, 5, 8, 13, 64, 10_000])
def test_an_intact_png_passes_however_it_is_split(piece: int) -> None:
    checker = PngChecker(size=(3, 2))
    for start in range(0, len(GOOD), piece):
        checker.feed(memoryview(GOOD)[start : start + piece])
    checker.finish()
    assert checker.done and checker.size == (3, 2)


def test_bytes_after_iend_are_ignored_like_decoders_do() -> None:
    assert check_png(GOOD + b"trailing junk") == (3, 2)


def test_a_different_size_than_the_header_checked_means_the_file_changed() -> None:
    checker = PngChecker(size=(4, 4))
    with pytest.raises(ReferenceError) as caught:
        checker.feed(GOOD)
    assert caught.value.reason == "changed"


def test_it_agrees_with_pillow_on_real_files() -> None:
    pixels = random.Random(1).randbytes(300 * 200 * 3)
    for level in (0, 1, 9):
        buffer = io.BytesIO()
        Image.frombytes("RGB", (300, 200), pixels).save(buffer, format="PNG", compress_level=level)
        data = buffer.getvalue()
        assert check_png(data) == (300, 200)
        for broken in (data[: len(data) // 2], flip(data, len(data) // 2)):
            with pytest.raises(ReferenceError):
                check_png(broken)
            with pytest.raises(Exception), Image.open(io.BytesIO(broken)) as image:  # noqa: B017
                image.verify()  # Pillow refuses each of them too
        with pytest.raises(ReferenceError):
            check_png(data[:-1])  # stricter than Pillow, which never reads IEND's CRC


# --- the CRC-32 it uses ------------------------------------------------------------------------------

NOISE = random.Random(7).randbytes(300_000)


@pytest.mark.parametrize(
    ("data", "start"),
    [
        (b"", 0),
        (b"IEND", 0),
        (b"IDAT", 0x12345678),
        (NOISE, 0),
        (memoryview(NOISE)[1:200_001], zlib.crc32(b"IDAT")),  # how the checker feeds it: a slice, continued
    ],
)
def test_the_crc_in_use_is_zlibs_crc(data: bytes | memoryview, start: int) -> None:
    assert crc32_function()(data, start) == zlib.crc32(data, start)


def test_zlib_ng_does_the_crc_where_it_is_installed() -> None:
    zlib_ng = pytest.importorskip("zlib_ng.zlib_ng")  # a dependency only where it has wheels
    assert crc32_function() is zlib_ng.crc32


def test_the_standard_librarys_crc_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    crc32_function.cache_clear()
    monkeypatch.setitem(sys.modules, "zlib_ng.zlib_ng", None)  # as if not installed: import fails
    try:
        assert crc32_function() is zlib.crc32
        assert check_png(GOOD) == (3, 2)
        with pytest.raises(ReferenceError):
            check_png(flip(GOOD, 40))
    finally:
        crc32_function.cache_clear()


# --- CheckedFile (with the PNG check) ---------------------------------------------------------------


def open_checked(path: Path, *, size: tuple[int, int] = (3, 2)) -> CheckedFile:
    fd = os.open(path, os.O_RDONLY)
    return CheckedFile(fd, path, size=os.fstat(fd).st_size, new_check=lambda: PngChecker(size=size))


def read_all(file: CheckedFile, piece: int = 16) -> bytes:
    out = bytearray()
    while chunk := file.read(piece):
        out += chunk
    return bytes(out)


def test_reading_yields_exactly_the_file_and_rewinding_checks_again(tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    path.write_bytes(GOOD)
    with open_checked(path) as file:
        assert file.seek(0, os.SEEK_END) == len(GOOD) == file.size  # how httpx2 learns the length
        file.seek(0)
        assert read_all(file) == GOOD
        assert file.read(16) == b""  # the end stays the end
        file.seek(0)
        assert read_all(file, 7) == GOOD
        with pytest.raises(io.UnsupportedOperation):
            file.seek(5)
    assert file.closed


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda path: path.write_bytes(GOOD + b"more"), "changed"),  # grew after it was measured
        (lambda path: path.write_bytes(GOOD[:-20]), "changed"),  # shrank
        (lambda path: path.write_bytes(flip(GOOD, 40)), "corrupt"),  # rewritten in place
    ],
)
def test_a_file_changed_after_it_was_opened_is_refused_while_read(tmp_path: Path, change: object, reason: str) -> None:
    path = tmp_path / "ok.png"
    path.write_bytes(GOOD)
    with open_checked(path) as file:
        assert callable(change)
        change(path)  # same inode: write_bytes truncates and rewrites
        with pytest.raises(ReferenceError) as caught:
            read_all(file)
    assert caught.value.reason == reason


def test_the_end_is_reported_only_after_the_whole_image_passed(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(GOOD[:-12])  # IEND missing: every piece is fine until the end
    with open_checked(path) as file:
        assert file.read(len(GOOD)) == GOOD[:-12]
        with pytest.raises(ReferenceError, match="before its IEND"):
            file.read(16)  # the read that would report the end refuses instead
