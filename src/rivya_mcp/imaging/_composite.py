"""Region edits: the model's output pasted back onto the reference inside a mask only.

Kontext takes no mask and redraws the whole image; the server keeps only the masked part. The
edit is resized to the reference's own size, and its edge is feathered *inward*: the blend ramps
from nothing at the mask's edge to full strength ``feather_px`` inside it, so every pixel where
the mask is black stays the reference's own, exactly, in a PNG result.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Literal

from PIL import Image, ImageChops, ImageFilter

from ._decode import ACCEPTED_FORMATS, open_image, upright_size
from ._mask import Mask

__all__ = ["DEFAULT_FEATHER_PX", "OutputFormat", "closest_aspect_ratio", "composite", "feathered", "image_size"]

OutputFormat = Literal["png", "jpeg"]
DEFAULT_FEATHER_PX = 8
# A composite re-encodes the kept part too; near-lossless JPEG without chroma subsampling keeps
# the damage to it small (PNG keeps it exact).
JPEG_QUALITY = 95
# Gaussian sigma per feather pixel: erf(feather / (sigma·√2)) ≈ 0.99, so the ramp (2·blur − 1)
# reaches full strength about ``feather_px`` inside the mask's edge.
_SIGMA_PER_FEATHER_PX = 1 / 2.6
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})


def image_size(data: bytes) -> tuple[int, int]:
    """The (width, height) of a PNG, JPEG or WebP as shown upright (EXIF orientation applied).

    Reads the header only: what a region is checked against before any credit is spent.
    """
    return upright_size(data, what="reference image", formats=ACCEPTED_FORMATS)


def closest_aspect_ratio(width: int, height: int, options: Sequence[str]) -> str:
    """The option ("W:H", e.g. the manifest's ``aspectRatio`` options) nearest to width:height.

    Nearest on a log scale, so 2:1 is as far from 1:1 as 1:2 is; on a tie the earlier option wins.
    """
    if width < 1 or height < 1:
        raise ValueError(f"an image of {width}×{height} pixels has no aspect ratio")
    if not options:
        raise ValueError("no aspect ratio options to choose from")
    target = math.log(width / height)
    return min(options, key=lambda option: abs(math.log(_ratio(option)) - target))


def _ratio(option: str) -> float:
    left, sep, right = option.partition(":")
    try:
        value = int(left) / int(right)
    except (ValueError, ZeroDivisionError):
        value = 0.0
    if not sep or value <= 0:
        raise ValueError(f"{option!r} is not an aspect ratio of the form W:H")
    return value


def feathered(mask: Mask, feather_px: int) -> Image.Image:
    """The blend weights (``L``) for ``mask``: zero wherever the mask is zero; the mask's own value
    ``feather_px`` or more inside its edge; a smooth ramp in between. The image's border is not an
    edge (an all-white mask stays all white)."""
    values = mask.to_image()
    box = values.getbbox()
    if feather_px <= 0 or box is None:
        return values
    sigma = feather_px * _SIGMA_PER_FEATHER_PX
    # Only the mask's bounding box, widened past the blur's reach, can change (a small region of
    # a 2 MP image blurs in a fraction of the time). Beyond it the mask is zero, so the crop's
    # edge, which GaussianBlur extends outward, is zero as it would be there; at the image's own
    # edge the crop's edge is the image's, which is extended as it should be (the border is not
    # an edge of the mask: an all-white mask stays all white).
    reach = 4 * math.ceil(sigma) + 8  # three box passes of radius ≈ sigma reach < 3·(sigma + 1)
    left, top = max(0, box[0] - reach), max(0, box[1] - reach)
    right, bottom = min(mask.width, box[2] + reach), min(mask.height, box[3] + reach)
    part = values.crop((left, top, right, bottom))
    support = part.point(lambda value: 255 if value else 0)
    blurred = support.filter(ImageFilter.GaussianBlur(sigma))
    ramp = blurred.point(lambda value: max(0, 2 * value - 255))
    # multiply(0, x) is 0: outside the mask the weight is exactly zero.
    values.paste(ImageChops.multiply(part, ramp), (left, top))
    return values


def composite(
    reference: bytes,
    edited: bytes,
    mask: Mask,
    *,
    feather_px: int = DEFAULT_FEATHER_PX,
    output_format: OutputFormat = "png",
) -> bytes:
    """The reference with ``edited`` pasted in where ``mask`` allows, encoded as ``output_format``.

    ``mask`` must be the reference's upright size (``image_size(reference)``); ``edited`` (the
    model's output, any size or aspect ratio) is stretched to it. The result is the reference's
    size and upright; it has an alpha channel if the reference has one (PNG), and carries the
    reference's ICC profile. In a PNG, every pixel where the mask is 0 equals the reference's
    (as Pillow decodes it: 16-bit greyscale becomes 8-bit); a JPEG re-encodes it at quality 95.
    No metadata of either input is kept (no EXIF, no C2PA: a composite is a new image).
    Blocking: run it in a worker thread.
    """
    if output_format not in ("png", "jpeg"):
        raise ValueError(f"output_format must be 'png' or 'jpeg', not {output_format!r}")
    with open_image(reference, what="reference image", formats=ACCEPTED_FORMATS) as ref:
        if ref.size != mask.size:
            raise ValueError(f"the mask is {mask.width}×{mask.height}; the reference is {ref.width}×{ref.height}")
        mode = "RGBA" if _has_alpha(ref) else "RGB"
        base = ref.convert(mode)
        icc_profile = ref.info.get("icc_profile")
    with open_image(edited, what="edited image", formats=ACCEPTED_FORMATS) as out:
        edit = out.convert(mode)
    if edit.size != base.size:
        edit = edit.resize(base.size, Image.Resampling.LANCZOS)
    result = Image.composite(edit, base, feathered(mask, feather_px))
    buffer = io.BytesIO()
    options = {"icc_profile": icc_profile} if isinstance(icc_profile, bytes) else {}
    if output_format == "png":
        result.save(buffer, format="PNG", **options)
    else:
        if result.mode == "RGBA":
            white = Image.new("RGBA", result.size, (255, 255, 255, 255))
            result = Image.alpha_composite(white, result)
        result.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0, **options)
    return buffer.getvalue()


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
