"""Region edits: outside the mask a PNG result is the reference, pixel for pixel; inside, the edit."""

from __future__ import annotations

import functools
import io

import pytest
from PIL import Image, ImageChops, ImageCms, ImageFilter

from rivya_mcp.imaging import (
    DEFAULT_FEATHER_PX,
    ImagingError,
    Mask,
    closest_aspect_ratio,
    composite,
    feathered,
    image_size,
    mask_from_image,
    mask_from_region,
)
from rivya_mcp.manifest import get_manifest
from tests.imaging._images import decode, encode, noise, pixels

ASPECT_RATIOS = get_manifest("flux-kontext-max").param("aspectRatio").options or ()


def _reference(mode: str, size: tuple[int, int]) -> Image.Image:
    """A busy reference in ``mode`` (noise: every pixel differs from its neighbours)."""
    if mode == "I;16":  # 16-bit greyscale, as a PNG can be
        return noise(size, "L", seed=2).convert("I").point(lambda value: value * 257).convert("I;16")
    if mode == "P-transparent":
        image = noise(size, "RGB", seed=1).quantize(64)
        image.info["transparency"] = 0
        return image
    if mode == "P":
        return noise(size, "RGB", seed=1).quantize(64)
    return noise(size, "RGBA" if mode in ("RGBA", "LA") else "RGB", seed=1).convert(mode)


@functools.cache
def _edited(size: tuple[int, int]) -> tuple[Image.Image, bytes]:
    image = noise(size, seed=9)
    return image, encode(image, "PNG", compress_level=1)


def _keep_area(mask: Mask) -> Image.Image:
    """255 where the mask is 0 (the reference must be kept exactly), 0 elsewhere."""
    return mask.to_image().point(lambda value: 255 if value == 0 else 0)


def _only(image: Image.Image, where: Image.Image) -> bytes:
    """The pixels of ``image`` where ``where`` is 255, all others zeroed: compared exactly."""
    blank = Image.new(image.mode, image.size, 0)
    return Image.composite(image, blank, where).tobytes()


def _deep_inside(mask: Mask, margin: int) -> Image.Image:
    """255 where the mask is 255 at least ``margin`` pixels from any other value."""
    solid = mask.to_image().point(lambda value: 255 if value == 255 else 0)
    return solid.filter(ImageFilter.MinFilter(2 * margin + 1))


def _mode_of(result: Image.Image) -> str:
    assert result.mode in ("RGB", "RGBA"), result.mode
    return result.mode


@pytest.mark.parametrize(
    ("mode", "size"),
    [
        ("RGB", (333, 217)),
        ("RGBA", (217, 333)),
        ("P", (301, 97)),
        ("P-transparent", (128, 129)),
        ("L", (255, 255)),
        ("LA", (99, 101)),
        ("I;16", (160, 91)),
        ("CMYK", (120, 77)),
    ],
)
@pytest.mark.parametrize("edited_size", [(1392, 752), (752, 1392), (64, 64)], ids=["16:9", "9:16", "small"])
@pytest.mark.parametrize("feather", [0, 3, DEFAULT_FEATHER_PX])
def test_outside_the_mask_a_png_is_the_reference_exactly(
    mode: str, size: tuple[int, int], edited_size: tuple[int, int], feather: int
) -> None:
    reference = _reference(mode, size)
    ref_bytes = encode(reference, "JPEG" if mode == "CMYK" else "PNG")
    edited, edited_bytes = _edited(edited_size)  # another aspect ratio and size than the reference's
    width, height = size
    mask = mask_from_region(width, height, width // 5, height // 4, width // 2, height // 2)
    result = decode(composite(ref_bytes, edited_bytes, mask, feather_px=feather, output_format="png"))
    assert result.size == size
    result_mode = _mode_of(result)
    assert result_mode == ("RGBA" if mode in ("RGBA", "LA", "P-transparent") else "RGB")
    expected = decode(ref_bytes)
    if mode == "I;16":  # as Pillow reads a 16-bit greyscale reference: 8 bits, scaled
        expected = expected.convert("I").point(lambda value: value / 257).convert("L")
    keep = _keep_area(mask)
    assert _only(result, keep) == _only(expected.convert(result_mode), keep)
    # Deep inside the mask, past the feather, the edit itself (stretched to the reference's size).
    stretched = edited.convert(result_mode).resize(size, Image.Resampling.LANCZOS)
    inside = _deep_inside(mask, feather + 2)
    assert inside.getbbox() is not None
    assert _only(result, inside) == _only(stretched, inside)


def test_an_all_black_mask_leaves_the_image_as_it_was() -> None:
    reference = noise((201, 143), seed=3)
    black = Mask(201, 143, bytes(201 * 143))
    result = decode(composite(encode(reference), encode(noise((64, 48), seed=4)), black))
    assert pixels(result, "RGB") == pixels(reference, "RGB")


@pytest.mark.parametrize("feather", [0, DEFAULT_FEATHER_PX, 40])
def test_an_all_white_mask_gives_the_edit(feather: int) -> None:
    # The image's border is not an edge of the mask: nothing of the reference shows there.
    reference = noise((201, 143), seed=3)
    edited = noise((402, 286), seed=4)
    white = Mask(201, 143, b"\xff" * (201 * 143))
    result = decode(composite(encode(reference), encode(edited), white, feather_px=feather))
    assert pixels(result, "RGB") == pixels(edited.resize((201, 143), Image.Resampling.LANCZOS), "RGB")


def test_grey_blends_the_two() -> None:
    reference, edited = Image.new("RGB", (50, 40), (0, 100, 200)), Image.new("RGB", (50, 40), (200, 100, 0))
    grey = Mask(50, 40, bytes([128]) * 2000)
    result = decode(composite(encode(reference), encode(edited), grey, feather_px=0))
    pixel = result.getpixel((25, 20))
    assert isinstance(pixel, tuple)
    assert all(abs(a - b) <= 1 for a, b in zip(pixel, (100, 100, 100), strict=True)), pixel


def test_a_painted_mask_keeps_every_black_pixel() -> None:
    # A brush stroke with soft (grey) edges, painted at another size than the reference.
    stroke = Image.new("L", (400, 300), 0)
    stroke.paste(255, (100, 80, 300, 200))
    stroke = stroke.filter(ImageFilter.GaussianBlur(6))
    mask = mask_from_image(encode(stroke), width=333, height=250)
    reference = noise((333, 250), seed=5)
    result = decode(composite(encode(reference), encode(noise((333, 250), seed=6)), mask))
    keep = _keep_area(mask)
    assert _only(result, keep) == _only(reference, keep)


@pytest.mark.parametrize("feather", [1, 4, DEFAULT_FEATHER_PX, 20])
def test_the_feather_ramps_inward_from_the_edge(feather: int) -> None:
    mask = mask_from_region(200, 60, 50, 0, 100, 60)
    row = [feathered(mask, feather).getpixel((x, 30)) for x in range(200)]
    assert row[:50] == [0] * 50 and row[150:] == [0] * 50  # outside: zero, not blurred outward
    ramp = row[50:100]
    assert ramp == sorted(ramp)  # rising from the edge inward
    assert ramp[0] < (128 if feather >= 4 else 255)  # soft at the edge
    assert all(value == 255 for value in ramp[feather + 1 :])  # full strength past the feather


def _feathered_whole(mask: Mask, feather: int) -> Image.Image:
    """The feather computed over the whole image, the slow and obvious way."""
    values = mask.to_image()
    blurred = values.point(lambda v: 255 if v else 0).filter(ImageFilter.GaussianBlur(feather / 2.6))
    return ImageChops.multiply(values, blurred.point(lambda v: max(0, 2 * v - 255)))


@pytest.mark.parametrize("feather", [1, 5, DEFAULT_FEATHER_PX, 30])
@pytest.mark.parametrize(
    "region",
    [(40, 30, 20, 10), (0, 0, 30, 30), (150, 90, 50, 30), (0, 0, 200, 120), (199, 119, 1, 1), (90, 0, 3, 120)],
    ids=["inside", "corner", "far-corner", "whole", "last-pixel", "strip"],
)
def test_feathering_the_masks_box_only_is_the_same_as_the_whole(
    region: tuple[int, int, int, int], feather: int
) -> None:
    mask = mask_from_region(200, 120, *region)
    assert feathered(mask, feather).tobytes() == _feathered_whole(mask, feather).tobytes()


def test_feathering_a_painted_mask_is_the_same_as_the_whole() -> None:
    stroke = Image.new("L", (300, 200), 0)
    stroke.paste(200, (60, 50, 140, 120))
    stroke.paste(255, (200, 20, 260, 60))
    mask = Mask.from_image(stroke.filter(ImageFilter.GaussianBlur(4)))
    assert feathered(mask, DEFAULT_FEATHER_PX).tobytes() == _feathered_whole(mask, DEFAULT_FEATHER_PX).tobytes()


def test_a_jpeg_result_is_close_to_the_reference_outside_the_mask() -> None:
    reference = Image.radial_gradient("L").convert("RGB").resize((300, 200))
    mask = mask_from_region(300, 200, 100, 50, 100, 100)
    data = composite(encode(reference), encode(noise((300, 200), seed=7)), mask, output_format="jpeg")
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.format == "JPEG"
    result = decode(data)
    assert result.size == (300, 200)
    difference = ImageChops.difference(result.convert("RGB"), reference).crop((0, 0, 300, 40))
    assert max(value for band in difference.getextrema() for value in band) <= 8


def test_a_transparent_reference_as_jpeg_is_flattened_on_white() -> None:
    reference = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
    mask = mask_from_region(60, 40, 0, 0, 10, 10)
    result = decode(composite(encode(reference), encode(noise((60, 40))), mask, output_format="jpeg"))
    pixel = result.getpixel((50, 30))
    assert isinstance(pixel, tuple) and min(pixel) >= 245


def test_the_reference_colour_profile_is_kept() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    reference = encode(noise((40, 30)), "PNG", icc_profile=profile)
    result = decode(composite(reference, encode(noise((40, 30), seed=2)), mask_from_region(40, 30, 0, 0, 5, 5)))
    assert result.info.get("icc_profile") == profile


def test_a_turned_reference_is_composited_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = encode(noise((120, 80)), "JPEG", exif=exif.tobytes(), quality=95)
    assert image_size(turned) == (80, 120)
    mask = mask_from_region(80, 120, 0, 0, 40, 40)
    result = decode(composite(turned, encode(noise((80, 120), seed=3)), mask))
    assert result.size == (80, 120)
    assert "exif" not in result.info


def test_a_mask_of_another_size_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="the mask is 10×10; the reference is 40×30"):
        composite(encode(noise((40, 30))), encode(noise((40, 30))), Mask(10, 10, bytes(100)))


@pytest.mark.parametrize(("which", "what"), [(0, "the reference image"), (1, "the edited image")])
def test_bytes_that_are_not_an_image_are_refused(which: int, what: str) -> None:
    images = [encode(noise((40, 30))), encode(noise((40, 30)))]
    images[which] = b"not an image at all"
    with pytest.raises(ImagingError) as raised:
        composite(images[0], images[1], Mask(40, 30, bytes(1200)))
    assert raised.value.reason == "not_an_image"
    assert raised.value.message.startswith(what)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_image_size_is_the_upright_size_composite_gives(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    turned = encode(noise((90, 40)), fmt, exif=exif.tobytes())
    assert image_size(turned) == (40, 90)
    result = decode(composite(turned, encode(noise((40, 90))), mask_from_region(40, 90, 0, 0, 4, 4)))
    assert result.size == (40, 90)


def test_image_size_reads_the_header_only() -> None:
    header = encode(noise((640, 480)), "PNG")[:64]  # no pixel data at all
    assert image_size(header) == (640, 480)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1000, 1000), "1:1"),
        ((1920, 1080), "16:9"),
        ((1080, 1920), "9:16"),
        ((2560, 1080), "21:9"),
        ((1200, 900), "4:3"),
        ((900, 1200), "3:4"),
        ((3000, 2000), "4:3"),  # 3:2 lies nearer 4:3 than 16:9 on a log scale
        ((2000, 3000), "3:4"),
        ((10_000, 1), "21:9"),  # beyond the widest: the widest
        ((1, 10_000), "9:16"),  # beyond the tallest: the tallest
        ((333, 217), "4:3"),  # 1.535: log distance 0.141 to 4:3, 0.147 to 16:9
    ],
)
def test_the_closest_aspect_ratio_of_the_manifest(size: tuple[int, int], expected: str) -> None:
    assert closest_aspect_ratio(*size, ASPECT_RATIOS) == expected


def test_an_aspect_tie_goes_to_the_earlier_option() -> None:
    assert closest_aspect_ratio(2, 1, ["4:1", "1:1"]) == "4:1"
    assert closest_aspect_ratio(2, 1, ["1:1", "4:1"]) == "1:1"


@pytest.mark.parametrize("options", [[], ["square"], ["1:0"], ["0:1"], ["16-9"]])
def test_aspect_options_must_be_ratios(options: list[str]) -> None:
    with pytest.raises(ValueError):
        closest_aspect_ratio(100, 100, options)


def test_the_result_is_a_png_by_default() -> None:
    data = composite(encode(noise((20, 20))), encode(noise((20, 20))), mask_from_region(20, 20, 0, 0, 5, 5))
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
