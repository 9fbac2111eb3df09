"""An image encoded under a byte budget: the single preview of a result, and the contact sheet.

Hosts choke on large base64 blocks (Claude Desktop near 1 MiB, some at ~400 KB), and base64
inflates bytes by 4/3, so the budget is on the *encoded* size. The image is drawn at a longest
side, encoded at falling JPEG qualities, then drawn smaller, until the text fits.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from PIL import Image

from ._decode import open_image, upright_size

# Hard ceiling on the base64 text of a preview; the target below keeps well under it.
MAX_PREVIEW_ENCODED_BYTES = 300_000
TARGET_PREVIEW_ENCODED_BYTES = 150_000
PREVIEW_LONGEST_SIDE = 768
JPEG_QUALITIES = (80, 70, 60, 50)
MIN_LONGEST_SIDE = 128

# Draws the picture to fit a side×side box (never enlarged past its own size).
Draw = Callable[[int], Image.Image]


@dataclass(frozen=True)
class Preview:
    """An encoded preview image and where it came from."""

    data: bytes
    mime_type: str
    width: int
    height: int
    source_width: int
    source_height: int

    @cached_property
    def base64(self) -> str:
        """``data`` as base64 text, encoded once: a cached preview goes out with every get_task."""
        return base64_text(self.data)

    @property
    def encoded_size(self) -> int:
        return len(self.base64)


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def has_transparency(image: Image.Image) -> bool:
    """Whether any pixel of ``image`` is less than fully opaque."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        extrema = alpha.getextrema()
        low = extrema[0] if isinstance(extrema, tuple) else extrema
        return bool(isinstance(low, int | float) and low < 255)
    return False


def fit_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """``size`` scaled to fit in a ``side``×``side`` box, never enlarged (as Image.thumbnail does)."""
    width, height = size
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(image: Image.Image, *, transparent: bool, quality: int) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if transparent:
        # Transparency is part of what the agent should see; PNG keeps it, at a smaller size.
        image.convert("RGBA").save(buffer, format="PNG", optimize=True)
        return buffer.getvalue(), "image/png"
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue(), "image/jpeg"


def encode_within(
    draw: Draw,
    *,
    budget: int,
    longest_side: int,
    transparent: bool,
    source_size: tuple[int, int],
) -> Preview:
    """Encode ``draw(side)`` under ``budget`` base64 bytes (never above the hard ceiling).

    Tries lower JPEG qualities, then smaller sides (×0.75 down to 128 px), until the text fits;
    at the smallest side the last attempt is returned whatever its size. A transparent picture is
    a PNG at every side. Deterministic: the same picture and budget give the same bytes.
    """
    budget = min(budget, MAX_PREVIEW_ENCODED_BYTES)
    side = longest_side
    while True:
        scaled = draw(side)
        qualities = (0,) if transparent else JPEG_QUALITIES
        for quality in qualities:
            encoded, mime = _encode(scaled, transparent=transparent, quality=quality)
            if len(base64_text(encoded)) <= budget or side <= MIN_LONGEST_SIDE:
                return Preview(encoded, mime, scaled.width, scaled.height, *source_size)
        side = max(MIN_LONGEST_SIDE, int(side * 0.75))


def render_preview(
    data: bytes,
    *,
    budget: int = TARGET_PREVIEW_ENCODED_BYTES,
    longest_side: int = PREVIEW_LONGEST_SIDE,
    opaque: bool = False,
) -> Preview:
    """Scale the image down (longest side ≤ ``longest_side``, 768 px by default; a gallery's
    thumbnails ask for less) and encode it under ``budget`` base64 bytes: a JPEG, or a PNG when the
    image has transparency, unless ``opaque`` asks for a JPEG always (the alpha is dropped).

    Upright by its EXIF orientation. Blocking (run it in a worker thread); no cache (the server's
    ``make_preview`` keeps one).
    """
    # A thumbnail decodes a JPEG at a reduced scale (several times faster); the size it reports is
    # still the image's own, from its header.
    small = longest_side < PREVIEW_LONGEST_SIDE
    size = upright_size(data, what="image") if small else None
    with open_image(data, what="image", draft=(longest_side, longest_side) if small else None) as source:
        transparent = not opaque and has_transparency(source)

        def draw(side: int) -> Image.Image:
            # BICUBIC: a ≤2× reduction looks the same as with LANCZOS at two thirds of the cost.
            return source.resize(fit_size(source.size, side), Image.Resampling.BICUBIC, reducing_gap=2.0)

        return encode_within(
            draw, budget=budget, longest_side=longest_side, transparent=transparent, source_size=size or source.size
        )
