"""Real images for sandbox results: ~1 megapixel, the requested ratio and format, deterministic.

A generation is a soft gradient with translucent shapes, both derived from a hash of (seed,
prompt, model, params); an edit is its reference image fitted to the ratio and tinted. Both carry
the prompt and, when given, the watermark, so a picture on screen can be traced to its request.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import math
import random
import textwrap
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageDraw, ImageFont, ImageOps

ImageFormat = Literal["JPEG", "PNG"]
TARGET_PIXELS = 1024 * 1024
SIZE_STEP = 32
JPEG_QUALITY = 90
# Reference images are untrusted uploads: refuse to decode anything larger than this many pixels.
MAX_REFERENCE_PIXELS = 40_000_000
_FONT_MIN = 14
_CAPTION_LINES = 4
_EDIT_BAND = (24, 24, 24, 255)
_UNREADABLE = (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning)


@functools.lru_cache(maxsize=64)
def output_size(ratio_w: int, ratio_h: int) -> tuple[int, int]:
    """About one megapixel at ``ratio_w:ratio_h``, both sides multiples of 32 (e.g. 16:9 → 1376×768)."""
    ratio = ratio_w / ratio_h
    best: tuple[float, int, int] | None = None
    for height in range(2 * SIZE_STEP, 4096 + 1, SIZE_STEP):
        width = max(SIZE_STEP, round(height * ratio / SIZE_STEP) * SIZE_STEP)
        # Ratio fidelity matters more than hitting the pixel count exactly.
        score = abs(math.log(width / height / ratio)) * 6 + abs(math.log(width * height / TARGET_PIXELS))
        if best is None or score < best[0]:
            best = (score, width, height)
    assert best is not None
    return best[1], best[2]


def parse_ratio(value: object) -> tuple[int, int] | None:
    """``"16:9"`` → (16, 9); anything else (``"auto"``, a size name) → None."""
    if not isinstance(value, str):
        return None
    left, sep, right = value.partition(":")
    if not sep or not left.isdigit() or not right.isdigit() or int(left) == 0 or int(right) == 0:
        return None
    return int(left), int(right)


@dataclass(frozen=True)
class RenderSpec:
    width: int
    height: int
    format: ImageFormat
    prompt: str
    seed_material: str
    label: str
    watermark: str | None = None
    reference: bytes | None = None


def _rng(material: str) -> random.Random:
    return random.Random(hashlib.sha256(material.encode("utf-8")).digest())


def _colour(rng: random.Random, *, saturation: tuple[float, float], value: tuple[float, float]) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*saturation), rng.uniform(*value))
    return round(r * 255), round(g * 255), round(b * 255)


def _background(spec: RenderSpec, rng: random.Random) -> Image.Image:
    corners = Image.new("RGB", (2, 2))
    corners.putdata([_colour(rng, saturation=(0.35, 0.75), value=(0.6, 0.95)) for _ in range(4)])
    # Upscaling a 2×2 image is a cheap, smooth four-corner gradient (bilinear: half the cost of
    # bicubic at 1 MP, and as smooth to the eye).
    base = corners.resize((spec.width, spec.height), Image.Resampling.BILINEAR)
    # Translucent shapes blended straight onto the RGB image: a separate RGBA overlay meant two
    # full-image conversions and a composite (~15 ms of ~25 ms per image, which the concurrency
    # benchmark pays 50 times at once on two cores).
    draw = ImageDraw.Draw(base, "RGBA")
    short = min(spec.width, spec.height)
    for _ in range(rng.randint(5, 9)):
        radius = rng.uniform(0.08, 0.35) * short
        cx, cy = rng.uniform(0, spec.width), rng.uniform(0, spec.height)
        fill = (*_colour(rng, saturation=(0.3, 0.9), value=(0.5, 1.0)), rng.randint(50, 120))
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        if rng.random() < 0.7:
            draw.ellipse(box, fill=fill)
        else:
            # Drawn as one mask: rounded_rectangle in blend mode paints overlapping pieces, which
            # would show as seams.
            left, top, size = round(cx - radius), round(cy - radius), round(2 * radius)
            mask = Image.new("L", (size, size), 0)
            ImageDraw.Draw(mask).rounded_rectangle((0, 0, size - 1, size - 1), radius=radius * 0.25, fill=fill[3])
            base.paste(fill[:3], (left, top, left + size, top + size), mask)
    return base


def _from_reference(spec: RenderSpec, data: bytes, rng: random.Random) -> Image.Image | None:
    # Only the header is read before the pixel count is checked, so a decompression bomb is never
    # decoded. (No warnings.catch_warnings here: it is not thread-safe, and renders run in threads.)
    try:
        source = Image.open(io.BytesIO(data))
        if source.width * source.height > MAX_REFERENCE_PIXELS:
            return None
        source.draft("RGB", (spec.width, spec.height))  # JPEG: decode at a reduced scale (fast)
        image = ImageOps.exif_transpose(source).convert("RGB")
    except _UNREADABLE:
        return None
    fitted = ImageOps.fit(image, (spec.width, spec.height), Image.Resampling.BILINEAR)
    # A light tint is enough to make the edit visibly different while keeping the reference's look.
    tint = Image.new("RGB", fitted.size, _colour(rng, saturation=(0.5, 0.9), value=(0.7, 1.0)))
    return Image.blend(fitted, tint, 0.2)


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError):  # Pillow built without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def _draw_text(image: Image.Image, spec: RenderSpec) -> None:
    draw = ImageDraw.Draw(image, "RGBA")
    short = min(spec.width, spec.height)
    size = max(_FONT_MIN, short // 22)
    font = _font(size)
    pad = size

    label_font = _font(max(_FONT_MIN - 2, size * 2 // 3))
    draw.text(
        (pad, pad), spec.label, font=label_font, fill=(255, 255, 255, 230), stroke_width=2, stroke_fill=(0, 0, 0, 160)
    )

    chars = max(10, int((spec.width - 2 * pad) / (size * 0.55)))
    lines = textwrap.wrap(spec.prompt or "(no prompt)", width=chars, max_lines=_CAPTION_LINES, placeholder=" …")
    line_height = int(size * 1.3)
    if spec.reference is None:
        band_top = spec.height - pad - line_height * len(lines) - pad
        draw.rectangle((0, band_top, spec.width, spec.height), fill=(0, 0, 0, 120))
    else:
        # An edit's reference is often an earlier result with a caption of its own at the bottom:
        # an opaque band as tall as the longest caption covers it, so the two never overprint.
        band_top = spec.height - pad - line_height * _CAPTION_LINES - pad
        draw.rectangle((0, band_top, spec.width, spec.height), fill=_EDIT_BAND)
    for i, line in enumerate(lines):
        draw.text((pad, band_top + pad // 2 + i * line_height), line, font=font, fill=(255, 255, 255, 255))

    if spec.watermark:
        mark_font = _font(max(_FONT_MIN, size))
        left, _, right, _ = draw.textbbox((0, 0), spec.watermark, font=mark_font)
        x = spec.width - pad - (right - left)
        y = pad
        draw.text(
            (x, y),
            spec.watermark,
            font=mark_font,
            fill=(255, 255, 255, 170),
            stroke_width=2,
            stroke_fill=(0, 0, 0, 110),
        )


def render(spec: RenderSpec) -> bytes:
    """Encode the image described by ``spec``; the same spec always gives the same bytes."""
    rng = _rng(spec.seed_material)
    image = _from_reference(spec, spec.reference, rng) if spec.reference is not None else None
    if image is None:
        image = _background(spec, rng)
    _draw_text(image, spec)
    out = io.BytesIO()
    if spec.format == "PNG":
        # Fast compression: the sandbox favours speed over file size.
        image.save(out, format="PNG", compress_level=1)
    else:
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def reference_ratio(data: bytes) -> tuple[int, int] | None:
    """The pixel size of a reference image (its header only), used when no ratio is requested."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except _UNREADABLE:
        return None
