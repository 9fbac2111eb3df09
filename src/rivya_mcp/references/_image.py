"""Check that bytes are an accepted, intact image of sane dimensions, without decoding bombs."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Collection
from dataclasses import dataclass

from ._errors import ReferenceError
from ._jpeg import check_jpeg
from ._limits import MAX_PIXELS
from ._png import check_png
from ._sniff import describe_bytes, sniff_image_type
from ._webp import WebpChecker

__all__ = ["ImageInfo", "accepted_names", "inspect_image", "verify_image"]

logger = logging.getLogger("rivya_mcp.references")

_PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WebP"}


@dataclass(frozen=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int


def accepted_names(mime_types: Collection[str]) -> str:
    """``("image/jpeg", "image/png", "image/webp")`` → ``"JPEG, PNG or WebP"``."""
    names = [_NAMES.get(m, m) for m in mime_types]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def inspect_image(
    data: bytes, *, mime_types: Collection[str], max_pixels: int = MAX_PIXELS, verify: bool = True
) -> ImageInfo:
    """Refuse anything but an intact image of an accepted type with at most ``max_pixels``.

    ``verify=False`` checks only the signature, the type and the header's dimensions (the bomb
    limit): cheap, and enough to know the bytes may be sent. The image is then not known to be
    intact until ``verify_image`` has passed. Blocking (Pillow decodes): call it from a worker thread.
    """
    accepted = accepted_names(mime_types)
    mime = sniff_image_type(data[:16])
    if mime is None:
        raise ReferenceError(
            f"not a {accepted} image ({describe_bytes(data[:512])}); convert it to {accepted} and try again",
            reason="not_an_image",
        )
    if mime not in mime_types or mime not in _PILLOW_FORMATS:
        raise ReferenceError(
            f"the reference is a {_NAMES.get(mime, mime)} image, which this model doesn't accept; "
            f"convert it to {accepted}",
            reason="unsupported_type",
        )
    width, height = _check_pixels(data, mime, max_pixels, verify=verify)
    return ImageInfo(mime_type=mime, width=width, height=height)


def verify_image(data: bytes, info: ImageInfo, *, max_pixels: int = MAX_PIXELS) -> None:
    """The full check ``inspect_image(..., verify=False)`` left out: truncation and corruption.

    Raises the same ``ReferenceError``s as ``inspect_image``. Blocking: call it from a worker thread.
    """
    _check_pixels(data, info.mime_type, max_pixels, verify=True)


def _check_pixels(data: bytes, mime: str, max_pixels: int, *, verify: bool) -> tuple[int, int]:
    if mime == "image/webp":
        return _check_webp_pixels(data, max_pixels, verify=verify)
    from PIL import Image

    name = _NAMES[mime]
    # Pillow warns (89 MP) or raises (179 MP) on huge claims while opening. Turning the warning
    # into an exception here makes the refusal independent of the process's warning filters. The
    # filter state is process-global, so a concurrent thread may briefly see ours or miss it;
    # either way our own pixel check below still refuses, so the race can only change a log line.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Image.open parses only the header; pixels are decoded by load() below.
            with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[mime]]) as image:
                width, height = image.size
                if width <= 0 or height <= 0:
                    raise ReferenceError(f"the {name} image claims no pixels; it is corrupt", reason="corrupt")
                if width * height > max_pixels:
                    raise _bomb(width, height, max_pixels)
                if verify:
                    _verify(mime, data)
        except ReferenceError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            logger.info("refused a decompression bomb: %s", exc)
            raise ReferenceError(
                f"the {name} image claims more than {max_pixels // 1_000_000} megapixels, "
                "so it was refused as a possible decompression bomb; resize it and try again",
                reason="too_many_pixels",
            ) from None
        except Exception as exc:
            # Pillow's parsers raise many types (OSError, SyntaxError, ValueError, struct.error,
            # EOFError, ...) on hostile input; all of them mean "not an intact image".
            logger.info("refused a corrupt %s image: %r", name, exc)
            raise ReferenceError(
                f"the {name} image is truncated or corrupt ({exc}); re-export or re-download it",
                reason="corrupt",
            ) from None
    return width, height


def _verify(mime: str, data: bytes) -> None:
    # The same structural checks a streamed upload runs (``_png``, ``_jpeg``): every chunk's CRC
    # up to IEND; markers from SOI to EOI. Both catch truncation without decoding.
    if mime == "image/png":
        check_png(data)
    else:
        check_jpeg(data)


def _check_webp_pixels(data: bytes, max_pixels: int, *, verify: bool) -> tuple[int, int]:
    # Not through Pillow: it hands the whole container to libwebp to read even the header (so a
    # file's first bytes wouldn't do), and its only deeper check is a decode. ``_webp`` reads the
    # header from the first bytes and, to verify, walks the RIFF structure, as a streamed upload does.
    checker = WebpChecker()
    checker.feed(data)  # one walk: the size comes from its first bytes, the structure from the rest
    if checker.size is None:
        raise ReferenceError(
            "the WebP image is truncated or corrupt (it ends before its dimensions); re-export or re-download it",
            reason="corrupt",
        )
    width, height = checker.size
    if width * height > max_pixels:
        raise _bomb(width, height, max_pixels)  # before the end is checked: a bomb is refused as one
    if verify:
        checker.finish()
    return width, height


def _bomb(width: int, height: int, max_pixels: int) -> ReferenceError:
    return ReferenceError(
        f"the image claims {width}×{height} pixels ({width * height / 1_000_000:.0f} megapixels); "
        f"the limit is {max_pixels // 1_000_000} megapixels, so it was refused as a possible "
        "decompression bomb; resize it and try again",
        reason="too_many_pixels",
    )
