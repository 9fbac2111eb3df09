"""A small preview of a finished image, sized for any host's context window.

Hosts choke on large base64 blocks (Claude Desktop near 1 MiB, some at ~400 KB), and base64
inflates bytes by 4/3, so the budget is on the *encoded* size.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image, ImageOps

# Hard ceiling on the base64 text of a preview; the target below keeps well under it.
MAX_PREVIEW_ENCODED_BYTES = 300_000
TARGET_PREVIEW_ENCODED_BYTES = 150_000
PREVIEW_LONGEST_SIDE = 768
JPEG_QUALITIES = (80, 70, 60, 50)
MIN_LONGEST_SIDE = 128


@dataclass(frozen=True)
class Preview:
    """An encoded preview image and where it came from."""

    data: bytes
    mime_type: str
    width: int
    height: int
    source_width: int
    source_height: int

    @property
    def encoded_size(self) -> int:
        return len(base64_text(self.data))


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _has_transparency(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        extrema = alpha.getextrema()
        low = extrema[0] if isinstance(extrema, tuple) else extrema
        return bool(isinstance(low, int | float) and low < 255)
    return False


def _encode(image: Image.Image, *, transparent: bool, quality: int) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if transparent:
        # Transparency is part of what the agent should see; PNG keeps it, at a smaller size.
        image.convert("RGBA").save(buffer, format="PNG", optimize=True)
        return buffer.getvalue(), "image/png"
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue(), "image/jpeg"


def make_preview(data: bytes, *, budget: int = TARGET_PREVIEW_ENCODED_BYTES) -> Preview:
    """Scale the image down (longest side ≤ 768 px) and encode it under ``budget`` base64 bytes.

    Tries lower JPEG qualities, then smaller sizes, until the encoded text fits.
    """
    budget = min(budget, MAX_PREVIEW_ENCODED_BYTES)
    with Image.open(io.BytesIO(data)) as opened:
        source = ImageOps.exif_transpose(opened)
        source.load()
    source_width, source_height = source.size
    transparent = _has_transparency(source)
    side = PREVIEW_LONGEST_SIDE
    while True:
        scaled = source.copy()
        scaled.thumbnail((side, side), Image.Resampling.LANCZOS)
        qualities = (0,) if transparent else JPEG_QUALITIES
        for quality in qualities:
            encoded, mime = _encode(scaled, transparent=transparent, quality=quality)
            if len(base64_text(encoded)) <= budget or side <= MIN_LONGEST_SIDE:
                return Preview(encoded, mime, scaled.width, scaled.height, source_width, source_height)
        side = max(MIN_LONGEST_SIDE, int(side * 0.75))
