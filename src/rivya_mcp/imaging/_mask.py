"""Masks for region edits: white where the image may change, black where it must be kept.

A mask is the reference's own size, one byte per pixel (0 keep … 255 change; grey blends). It is
made from a rectangle in the reference's pixels or from an image (PNG, JPEG or WebP of any mode
and size, scaled to the reference). Both refuse, before any credit is spent, what can't be meant:
a region outside the image, a mask with nothing white.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from ._decode import ACCEPTED_FORMATS, open_image
from ._errors import ImagingError

__all__ = ["Mask", "mask_from_image", "mask_from_region"]


@dataclass(frozen=True)
class Mask:
    """``width``×``height`` 8-bit values, row by row: 0 keeps the reference, 255 takes the edit."""

    width: int
    height: int
    data: bytes

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1 or len(self.data) != self.width * self.height:
            raise ValueError(f"a {self.width}×{self.height} mask needs {self.width * self.height} bytes")

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def is_empty(self) -> bool:
        """Nothing may change: every value is 0."""
        return not any(self.data)

    def to_image(self) -> Image.Image:
        """The mask as a Pillow ``L`` image."""
        return Image.frombytes("L", self.size, self.data)

    def to_png(self) -> bytes:
        """The mask as a greyscale PNG (to keep beside a region edit, or show in a viewer)."""
        out = io.BytesIO()
        self.to_image().save(out, format="PNG")
        return out.getvalue()

    @classmethod
    def from_image(cls, image: Image.Image) -> Mask:
        grey = image if image.mode == "L" else image.convert("L")
        return cls(grey.width, grey.height, grey.tobytes())


def mask_from_region(width: int, height: int, x: int, y: int, w: int, h: int) -> Mask:
    """A mask of a ``width``×``height`` image, white inside the rectangle at (x, y) of w×h, black elsewhere.

    Coordinates are the reference's own pixels, origin top-left. The rectangle must lie wholly
    inside the image and hold at least one pixel, else ``ImagingError`` says how to fix it.
    """
    if width < 1 or height < 1:
        raise ValueError(f"the image must have pixels, not {width}×{height}")
    given = f"{{x: {x}, y: {y}, width: {w}, height: {h}}}"
    if w < 1 or h < 1:
        raise ImagingError(
            f"the region {given} is empty: its width and height must be at least 1 pixel", reason="empty_region"
        )
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise ImagingError(
            f"the region {given} reaches outside the reference image, which is {width}×{height} pixels: "
            f"x and y must be at least 0, x + width at most {width} and y + height at most {height} "
            "(coordinates are the reference's own pixels, origin top-left)",
            reason="region_outside",
        )
    image = Image.new("L", (width, height), 0)
    image.paste(255, (x, y, x + w, y + h))
    return Mask.from_image(image)


def mask_from_image(data: bytes, *, width: int, height: int) -> Mask:
    """The mask in ``data`` (PNG, JPEG or WebP; any mode and size), scaled to ``width``×``height``.

    White (bright) may change, black must be kept, grey blends. Colour is read as its luminance;
    transparent pixels count as black (keep), so a brush layer painted on a clear canvas works
    as is. Raises ``ImagingError`` when the bytes are not such an image or nothing in it is white.
    """
    with open_image(data, what="mask", formats=ACCEPTED_FORMATS) as opened:
        grey = _luminance(opened)
    if grey.size != (width, height):
        # Stretched, not cropped: a mask painted over a scaled copy of the reference has its shape.
        grey = grey.resize((width, height), Image.Resampling.BILINEAR)
    mask = Mask.from_image(grey)
    if mask.is_empty:
        raise ImagingError(
            "the mask is entirely black, so nothing may change; paint white where the image may change "
            "(black keeps, grey blends) or give a region instead",
            reason="empty_mask",
        )
    return mask


def _luminance(image: Image.Image) -> Image.Image:
    if "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("L")
    return image.convert("L")
