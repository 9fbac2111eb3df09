"""Bytes into an upright, loaded Pillow image, or an ImagingError that says why not."""

from __future__ import annotations

import io
import logging
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from rivya_mcp.references import MAX_PIXELS

from ._errors import ImagingError

__all__ = ["ACCEPTED_FORMATS", "open_image", "upright_size"]

logger = logging.getLogger("rivya_mcp.imaging")

# What a mask or a reference may be: the formats the model's upload policy lists.
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
_SIXTEEN_BIT = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_EXIF_ORIENTATION = 0x0112
_TURNED = frozenset({5, 6, 7, 8})  # orientations that swap width and height


def open_image(
    data: bytes,
    *,
    what: str,
    formats: tuple[str, ...] | None = None,
    max_pixels: int = MAX_PIXELS,
    draft: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode ``data`` (any of ``formats``, all Pillow knows when ``None``), upright by its EXIF orientation.

    16-bit greyscale comes back as 8-bit ``L``; every other mode as decoded. ``what`` names the
    image in error messages ("mask", "reference image", ...). Refuses more than ``max_pixels``
    before decoding (a decompression bomb). With ``draft``, a JPEG may be decoded at 1/2, 1/4 or
    1/8 scale, never below that size (several times faster for a thumbnail). Blocking; the caller
    closes the image.
    """
    image = _open(data, what=what, formats=formats, max_pixels=max_pixels)
    try:
        if draft is not None and image.format == "JPEG":
            image.draft("RGB", draft)
        image.load()
    except Exception as exc:
        # Pillow's decoders raise many types on damaged input (OSError, SyntaxError, EOFError, ...).
        image.close()
        logger.info("refused a corrupt %s: %r", what, exc)
        raise ImagingError(
            f"the {what} is truncated or corrupt ({exc}); re-export or re-download it", reason="corrupt"
        ) from None
    # In place: exif_transpose otherwise copies the whole decoded image even when upright.
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode in _SIXTEEN_BIT:
        # 16-bit greyscale (a PNG can be): scaled to 8 bits, since convert("L") or ("RGB") would
        # clip every value above 255 to white.
        with image:
            return image.convert("I").point(lambda value: value / 257).convert("L")
    return image


def upright_size(
    data: bytes, *, what: str, formats: tuple[str, ...] | None = None, max_pixels: int = MAX_PIXELS
) -> tuple[int, int]:
    """The (width, height) ``open_image`` would give, from the header alone (no pixel decoding)."""
    with _open(data, what=what, formats=formats, max_pixels=max_pixels) as image:
        width, height = image.size
        try:
            if image.format == "PNG":
                # Pillow's getexif() decodes a whole PNG to look for an eXIf chunk after the image
                # data (~40 ms for 2 MP); the one before it, where the PNG spec puts it, is at hand.
                exif = Image.Exif()
                raw = image.info.get("exif")
                if isinstance(raw, bytes):
                    exif.load(raw)
            else:
                exif = image.getexif()
            orientation = exif.get(_EXIF_ORIENTATION)
        except Exception:  # a damaged EXIF block: exif_transpose would ignore it as well
            orientation = None
    return (height, width) if orientation in _TURNED else (width, height)


def _open(data: bytes, *, what: str, formats: tuple[str, ...] | None, max_pixels: int) -> Image.Image:
    # Pillow warns (89 MP) or raises (179 MP) while opening a huge claim; as an exception here the
    # refusal doesn't depend on the process's warning filters (the filter state is process-global,
    # so a concurrent thread may briefly see ours: our own pixel check below refuses all the same).
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=formats)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many(what, max_pixels) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            logger.info("refused %s bytes that are not an image: %r", what, exc)
            kind = "a PNG, JPEG or WebP" if formats == ACCEPTED_FORMATS else "an"
            raise ImagingError(
                f"the {what} is not {kind} image that can be read; send {kind} image file", reason="not_an_image"
            ) from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _too_many(what, max_pixels, (width, height))
    return image


def _too_many(what: str, max_pixels: int, size: tuple[int, int] | None = None) -> ImagingError:
    claim = f"{size[0]}×{size[1]} pixels" if size else "too many pixels"
    return ImagingError(
        f"the {what} claims {claim}; the limit is {max_pixels // 1_000_000} megapixels, "
        "so it was refused as a possible decompression bomb; resize it and try again",
        reason="too_many_pixels",
    )
