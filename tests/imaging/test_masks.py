"""Masks from a region or from an image: right where they should be, refused when they can't be meant."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from rivya_mcp.imaging import ImagingError, Mask, mask_from_image, mask_from_region
from tests.imaging._images import encode, noise


def _values(mask: Mask, box: tuple[int, int, int, int]) -> set[int]:
    return set(mask.to_image().crop(box).tobytes())


@pytest.mark.parametrize(
    ("size", "region"),
    [
        ((333, 217), (10, 20, 100, 50)),
        ((333, 217), (0, 0, 333, 217)),  # the whole image
        ((333, 217), (332, 216, 1, 1)),  # the last pixel
        ((1, 1), (0, 0, 1, 1)),
        ((97, 301), (0, 150, 97, 151)),  # to the bottom edge
    ],
)
def test_a_region_is_white_exactly_where_it_is(size: tuple[int, int], region: tuple[int, int, int, int]) -> None:
    x, y, w, h = region
    mask = mask_from_region(*size, *region)
    assert mask.size == size
    assert mask.data.count(255) == w * h
    assert mask.data.count(0) == size[0] * size[1] - w * h
    assert _values(mask, (x, y, x + w, y + h)) == {255}
    assert not mask.is_empty


@pytest.mark.parametrize(
    ("region", "reason", "hint"),
    [
        ((-1, 0, 10, 10), "region_outside", "x and y must be at least 0"),
        ((0, -5, 10, 10), "region_outside", "x and y must be at least 0"),
        ((300, 0, 34, 10), "region_outside", "x + width at most 333"),
        ((0, 200, 10, 18), "region_outside", "y + height at most 217"),
        ((400, 400, 10, 10), "region_outside", "333×217"),
        ((0, 0, 0, 10), "empty_region", "at least 1 pixel"),
        ((0, 0, 10, -3), "empty_region", "at least 1 pixel"),
    ],
)
def test_a_region_that_cannot_be_meant_is_refused(region: tuple[int, int, int, int], reason: str, hint: str) -> None:
    with pytest.raises(ImagingError) as raised:
        mask_from_region(333, 217, *region)
    assert raised.value.reason == reason
    assert hint in raised.value.message
    x, y, w, h = region
    assert f"{{x: {x}, y: {y}, width: {w}, height: {h}}}" in raised.value.message


def _painted(mode: str, size: tuple[int, int] = (200, 100)) -> Image.Image:
    """A mask painted in ``mode``: white in the box (50, 25)-(150, 75), black (or clear) elsewhere."""
    if mode in ("RGBA", "LA"):
        image = Image.new("RGBA", size, (0, 0, 0, 0))  # a brush layer on a clear canvas
        ImageDraw.Draw(image).rectangle((50, 25, 149, 74), fill=(255, 255, 255, 255))
        return image.convert(mode)
    if mode == "I;16":
        image = Image.new("I;16", size, 0)
        image.paste(65535, (50, 25, 150, 75))
        return image
    image = Image.new("RGB", size, (0, 0, 0))
    ImageDraw.Draw(image).rectangle((50, 25, 149, 74), fill=(255, 255, 255))
    return image.convert(mode)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("1", "PNG"),
        ("L", "PNG"),
        ("LA", "PNG"),
        ("P", "PNG"),
        ("RGB", "PNG"),
        ("RGBA", "PNG"),
        ("I;16", "PNG"),
        ("L", "JPEG"),
        ("RGB", "JPEG"),
        ("CMYK", "JPEG"),
        ("RGB", "WEBP"),
        ("RGBA", "WEBP"),
    ],
)
@pytest.mark.parametrize("target", [(200, 100), (400, 200), (101, 51), (333, 217)])
def test_a_painted_mask_of_any_mode_and_size_is_scaled_to_the_reference(
    mode: str, fmt: str, target: tuple[int, int]
) -> None:
    options = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    mask = mask_from_image(encode(_painted(mode), fmt, **options), width=target[0], height=target[1])
    assert mask.size == target
    sx, sy = target[0] / 200, target[1] / 100
    image = mask.to_image()
    inside = image.getpixel((round(100 * sx), round(50 * sy)))
    corner = image.getpixel((round(10 * sx), round(10 * sy)))
    assert isinstance(inside, int) and isinstance(corner, int)
    assert inside >= 245, (mode, fmt, inside)  # white may change (JPEG: nearly white)
    assert corner <= 10, (mode, fmt, corner)  # black, and a clear canvas, keep


def test_grey_is_kept_as_a_blend_weight() -> None:
    mask = mask_from_image(encode(Image.new("L", (40, 30), 128)), width=40, height=30)
    assert set(mask.data) == {128}


def test_colour_counts_by_its_luminance() -> None:
    red = mask_from_image(encode(Image.new("RGB", (8, 8), (255, 0, 0))), width=8, height=8)
    assert set(red.data) == {76}  # ITU-R 601 luma of pure red, as Pillow converts it


@pytest.mark.parametrize(
    "image",
    [
        Image.new("L", (64, 48), 0),
        Image.new("RGB", (64, 48), (0, 0, 0)),
        Image.new("RGBA", (64, 48), (255, 255, 255, 0)),  # white, but wholly transparent
    ],
    ids=["black", "black-rgb", "clear"],
)
def test_a_mask_with_nothing_white_is_refused(image: Image.Image) -> None:
    with pytest.raises(ImagingError) as raised:
        mask_from_image(encode(image), width=64, height=48)
    assert raised.value.reason == "empty_mask"
    assert "paint white where the image may change" in raised.value.message


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not_an_image"),
        (b"%PDF-1.7 not an image", "not_an_image"),
        (encode(Image.new("L", (8, 8), 255), "GIF"), "not_an_image"),  # an image, but not one the model takes
        (encode(noise((64, 64), "L"))[:200], "corrupt"),  # a PNG cut short
    ],
    ids=["empty", "pdf", "gif", "truncated"],
)
def test_bytes_that_are_not_a_mask_image_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ImagingError) as raised:
        mask_from_image(data, width=64, height=64)
    assert raised.value.reason == reason
    assert raised.value.message.startswith("the mask ")


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    # A PNG header claiming 60000×60000 pixels, and no more.
    with pytest.raises(ImagingError) as raised:
        mask_from_image(encode(Image.new("1", (60_000, 1_000))), width=10, height=10)
    assert raised.value.reason == "too_many_pixels"


def test_a_mask_round_trips_through_png() -> None:
    mask = mask_from_region(31, 17, 3, 4, 5, 6)
    again = mask_from_image(mask.to_png(), width=31, height=17)
    assert again == mask


def test_a_mask_needs_one_byte_per_pixel() -> None:
    with pytest.raises(ValueError, match="needs 6 bytes"):
        Mask(3, 2, b"\x00" * 5)
