"""Decompression bombs, truncated and corrupt images (through data URIs and files alike)."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from rivya_mcp.manifest import UploadPolicy
from rivya_mcp.references import MAX_PIXELS, ReferenceError, load_reference, verify_reference

from .conftest import image_bytes, png_header_only

pytestmark = pytest.mark.anyio


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


async def refused(source: str, policy: UploadPolicy) -> ReferenceError:
    with pytest.raises(ReferenceError) as info:
        await load_reference(source, policy=policy)
    return info.value


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (100_000, 100_000),  # Pillow itself raises DecompressionBombError (> 2× its limit)
        (10_000, 10_000),  # Pillow warns (DecompressionBombWarning): must be a refusal, not a warning
        (8_000, 8_000),  # under Pillow's limits, over ours
    ],
)
async def test_decompression_bombs_are_refused(policy: UploadPolicy, width: int, height: int) -> None:
    bomb = png_header_only(width, height)
    assert len(bomb) < 200
    error = await refused(data_uri(bomb), policy)
    assert error.reason == "too_many_pixels"
    assert "decompression bomb" in error.message


@pytest.mark.parametrize("side", [8_000, 16_384])
async def test_a_webp_bomb_is_refused_from_its_header(tmp_path: Path, policy: UploadPolicy, side: int) -> None:
    canvas = (side - 1).to_bytes(3, "little") * 2  # VP8X: a side×side canvas, and nothing behind it
    header = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + canvas
    bomb = b"RIFF" + struct.pack("<I", 4 + len(header) + 1_000_000) + b"WEBP" + header
    assert (await refused(data_uri(bomb, "image/webp"), policy)).reason == "too_many_pixels"
    path = tmp_path / "bomb.webp"
    path.write_bytes(bomb)
    with pytest.raises(ReferenceError) as info:
        await load_reference(str(path), policy=policy, verify=False)  # the streamed path: header only
    assert info.value.reason == "too_many_pixels"


async def test_bomb_from_a_file(tmp_path: Path, policy: UploadPolicy) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(60_000, 60_000))
    assert (await refused(str(path), policy)).reason == "too_many_pixels"


def test_limit_is_named() -> None:
    assert MAX_PIXELS == 50_000_000


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
async def test_truncated_images_are_refused(policy: UploadPolicy, fmt: str) -> None:
    whole = image_bytes(fmt, (256, 256))
    error = await refused(data_uri(whole[: len(whole) * 2 // 3]), policy)
    assert error.reason == "corrupt", error.message
    assert "truncated or corrupt" in error.message


async def test_corrupt_png_crc_is_refused(policy: UploadPolicy) -> None:
    png = bytearray(image_bytes("PNG", (32, 32)))
    png[40] ^= 0xFF  # inside IDAT: the chunk's CRC no longer matches
    assert (await refused(data_uri(bytes(png)), policy)).reason == "corrupt"


async def test_signature_alone_is_not_an_image(policy: UploadPolicy) -> None:
    assert (await refused(data_uri(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10), policy)).reason == "corrupt"


async def test_a_load_without_verification_defers_the_corruption_check_only(
    tmp_path: Path, policy: UploadPolicy
) -> None:
    jpeg = image_bytes("JPEG", (200, 200))
    loaded = await load_reference(data_uri(jpeg[: len(jpeg) // 2], "image/jpeg"), policy=policy, verify=False)
    assert (loaded.verified, loaded.width, loaded.height, loaded.mime_type) == (False, 200, 200, "image/jpeg")
    assert loaded.stream is None and loaded.data == jpeg[: len(jpeg) // 2]
    with pytest.raises(ReferenceError, match="truncated or corrupt"):
        await verify_reference(loaded)
    # The cheap checks still run first: a bomb is refused before anything could be sent.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(ReferenceError, match="decompression bomb"):
        await load_reference(str(bomb), policy=policy, verify=False)
    intact = tmp_path / "ok.jpg"
    intact.write_bytes(jpeg)
    await verify_reference(await load_reference(str(intact), policy=policy, verify=False))


async def test_a_local_png_loaded_without_verification_comes_open_and_checks_itself(
    tmp_path: Path, policy: UploadPolicy
) -> None:
    png = image_bytes("PNG", (200, 200))
    cut = tmp_path / "cut.png"
    cut.write_bytes(png[:-20])
    loaded = await load_reference(str(cut), policy=policy, verify=False)
    assert loaded.stream is not None and loaded.data == b""
    assert (loaded.size, loaded.width, loaded.height, loaded.mime_type) == (len(png) - 20, 200, 200, "image/png")
    await verify_reference(loaded)  # nothing to do: the stream checks itself
    with loaded.stream as stream, pytest.raises(ReferenceError, match="truncated or corrupt"):
        while stream.read(4096):
            pass
    # verify=True never streams: the whole file is read and checked up front.
    with pytest.raises(ReferenceError, match="truncated or corrupt"):
        await load_reference(str(cut), policy=policy)
