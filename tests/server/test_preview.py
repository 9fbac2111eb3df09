"""Previews stay small for every aspect ratio and output format, even for incompressible images."""

from __future__ import annotations

import base64
import io
import math
import random

import pytest
from PIL import Image

from rivya_mcp.manifest import get_manifest
from rivya_mcp.server import MAX_PREVIEW_ENCODED_BYTES, PREVIEW_LONGEST_SIDE, make_preview

MANIFEST = get_manifest("flux-kontext-max")
RATIOS = list(MANIFEST.param("aspectRatio").options or ())
FORMATS = list(MANIFEST.param("outputFormat").options or ())


def _size(ratio: str, megapixels: float = 1.0) -> tuple[int, int]:
    w, h = (int(x) for x in ratio.split(":"))
    height = math.sqrt(megapixels * 1024 * 1024 * h / w)
    return int(height * w / h), int(height)


def _noise(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    """Random pixels: the worst case for any codec."""
    channels = len(mode)
    data = random.Random(seed).randbytes(size[0] * size[1] * channels)
    return Image.frombytes(mode, size, data)


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG" if fmt == "jpeg" else "PNG")
    return out.getvalue()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("ratio", RATIOS)
def test_preview_of_noise_stays_under_budget(ratio: str, fmt: str) -> None:
    size = _size(ratio)
    preview = make_preview(_encode(_noise(size, "RGB", seed=len(ratio)), fmt))
    assert preview.encoded_size < MAX_PREVIEW_ENCODED_BYTES
    assert max(preview.width, preview.height) <= PREVIEW_LONGEST_SIDE
    assert preview.mime_type == "image/jpeg"  # opaque PNGs preview as JPEG
    assert (preview.source_width, preview.source_height) == size
    # The aspect ratio survives scaling (within rounding).
    assert abs(preview.width / preview.height - size[0] / size[1]) < 0.02


def test_transparent_png_keeps_transparency_and_fits() -> None:
    image = _noise((1024, 1024), "RGBA", seed=7)
    preview = make_preview(_encode(image, "png"))
    assert preview.mime_type == "image/png"
    assert preview.encoded_size < MAX_PREVIEW_ENCODED_BYTES
    with Image.open(io.BytesIO(preview.data)) as decoded:
        assert decoded.mode == "RGBA"


def test_small_image_is_not_enlarged() -> None:
    preview = make_preview(_encode(Image.new("RGB", (200, 100), "red"), "jpeg"))
    assert (preview.width, preview.height) == (200, 100)


def test_budget_is_honoured_when_tight() -> None:
    image = _noise((1392, 752), "RGB", seed=3)
    preview = make_preview(_encode(image, "jpeg"), budget=40_000)
    assert preview.encoded_size <= 40_000


def test_the_base64_text_is_the_preview_bytes_encoded_once() -> None:
    preview = make_preview(_encode(_noise((320, 200), "RGB", seed=5), "jpeg"))
    assert base64.b64decode(preview.base64, validate=True) == preview.data
    assert preview.base64 is preview.base64  # every get_task of a cached preview reuses the text
    assert preview.encoded_size == len(preview.base64)
