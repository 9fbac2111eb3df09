"""The contact sheet of 1-4 candidates: under the preview cap, every candidate there and numbered."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from rivya_mcp.imaging import (
    GLYPHS,
    MAX_PREVIEW_ENCODED_BYTES,
    SHEET_LONGEST_SIDE,
    TARGET_PREVIEW_ENCODED_BYTES,
    ContactSheet,
    ImagingError,
    LabelBox,
    make_contact_sheet,
    sheet_layout,
)
from tests.imaging._images import decode, encode, flat, noise

# Candidates of different sizes and aspect ratios, as variations of one prompt are not, but as
# the function must take (and as a mix of generations and edits could be).
SIZES = [(1392, 752), (752, 1392), (1024, 1024), (1568, 672)]
# Light, dark, mid-grey and busy content: a badge must read on every one.
CONTENT = [(250, 250, 250), (4, 4, 4), (128, 128, 128), None]


def _candidates(count: int, fmt: str = "JPEG") -> list[bytes]:
    images = []
    for index in range(count):
        colour = CONTENT[index]
        image = noise(SIZES[index], seed=index) if colour is None else flat(SIZES[index], colour)
        images.append(encode(image, fmt, quality=90) if fmt == "JPEG" else encode(image, fmt))
    return images


def _luma(image: Image.Image, x: int, y: int) -> int:
    value = image.convert("L").getpixel((x, y))
    assert isinstance(value, int)
    return value


def _assert_badge(sheet: Image.Image, label: LabelBox, number: int) -> None:
    """Every glyph pixel of the number is light and every other pixel of the plate is dark."""
    assert label.text == str(number)
    scale = label.scale
    assert scale >= 2
    origin_x, origin_y = label.glyph_origin()
    for row, line in enumerate(GLYPHS[str(number)]):
        for column, cell in enumerate(line):
            centre = (origin_x + column * scale + scale // 2, origin_y + row * scale + scale // 2)
            luma = _luma(sheet, *centre)
            if cell == "#":
                assert luma > 170, (number, row, column, luma)
            else:
                assert luma < 90, (number, row, column, luma)
    # The rim: light on the plate's left edge (halfway down), so the badge stands out on dark content.
    assert _luma(sheet, label.x, label.y + label.height // 2) > 150


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_every_candidate_is_on_the_sheet_with_its_number(count: int) -> None:
    sheet = make_contact_sheet(_candidates(count))
    image = decode(sheet.preview.data)
    assert (image.width, image.height) == (sheet.preview.width, sheet.preview.height)
    assert max(image.size) <= SHEET_LONGEST_SIDE
    assert [tile.number for tile in sheet.tiles] == list(range(1, count + 1))
    boxes = []
    for tile, (width, height), colour in zip(sheet.tiles, SIZES, CONTENT, strict=False):
        assert (tile.source_width, tile.source_height) == (width, height)
        # Inside the sheet, and the candidate's own aspect ratio (within rounding).
        assert 0 <= tile.x and tile.x + tile.width <= image.width
        assert 0 <= tile.y and tile.y + tile.height <= image.height
        assert abs(tile.width / tile.height - width / height) < 0.02
        _assert_badge(image, tile.label, tile.number)
        # The badge sits on its own tile.
        assert tile.x <= tile.label.x and tile.label.x + tile.label.width <= tile.x + tile.width
        assert tile.y <= tile.label.y and tile.label.y + tile.label.height <= tile.y + tile.height
        if colour is not None:  # the tile shows the candidate: its centre has the candidate's colour
            centre = image.getpixel((tile.x + tile.width // 2, tile.y + tile.height // 2))
            assert isinstance(centre, tuple)
            assert all(abs(a - b) <= 6 for a, b in zip(centre, colour, strict=True)), (centre, colour)
        boxes.append((tile.x, tile.y, tile.x + tile.width, tile.y + tile.height))
    for index, a in enumerate(boxes):  # no two tiles overlap
        for b in boxes[index + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    # Every badge has the same size.
    assert len({(tile.label.width, tile.label.height) for tile in sheet.tiles}) == 1


@pytest.mark.parametrize("budget", [TARGET_PREVIEW_ENCODED_BYTES, 60_000, MAX_PREVIEW_ENCODED_BYTES, 10**7])
def test_four_noise_images_stay_under_the_preview_cap(budget: int) -> None:
    # Incompressible 2 MP candidates in a lossless file: the worst case for the budget.
    images = [encode(noise(size, seed=index), "PNG", compress_level=0) for index, size in enumerate(SIZES)]
    sheet = make_contact_sheet(images, budget=budget)
    assert sheet.preview.encoded_size <= min(budget, MAX_PREVIEW_ENCODED_BYTES)
    assert sheet.preview.mime_type == "image/jpeg"
    image = decode(sheet.preview.data)
    for tile in sheet.tiles:  # still numbered, however far the sheet had to shrink
        _assert_badge(image, tile.label, tile.number)


def test_the_same_candidates_give_the_same_bytes() -> None:
    images = _candidates(4)
    first, second = make_contact_sheet(images), make_contact_sheet(list(images))
    assert first.preview.data == second.preview.data
    assert first.tiles == second.tiles


def test_png_and_jpeg_candidates_alike() -> None:
    from_png, from_jpeg = make_contact_sheet(_candidates(3, "PNG")), make_contact_sheet(_candidates(3, "JPEG"))
    assert [t.label for t in from_png.tiles] == [t.label for t in from_jpeg.tiles]


def test_a_transparent_candidate_is_shown_over_a_checkerboard() -> None:
    clear = encode(Image.new("RGBA", (600, 400), (0, 0, 0, 0)), "PNG")
    sheet = make_contact_sheet([clear, _candidates(1)[0]])
    image = decode(sheet.preview.data).convert("L")
    tile = sheet.tiles[0]
    row = tile.y + tile.height * 3 // 4
    values = {image.getpixel((x, row)) for x in range(tile.x + 2, tile.x + tile.width - 2)}
    assert isinstance(min(values), int) and isinstance(max(values), int)
    assert max(values) > 240 and min(values) < 215  # light and darker squares, not black


def test_a_turned_jpeg_is_shown_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    turned = encode(flat((300, 100), (200, 50, 50)), "JPEG", exif=exif.tobytes())
    sheet = make_contact_sheet([turned])
    (tile,) = sheet.tiles
    assert (tile.source_width, tile.source_height) == (100, 300)
    assert tile.height > tile.width


@pytest.mark.parametrize(
    ("sizes", "columns", "rows"),
    [
        ([(1024, 1024)], 1, 1),
        ([(1392, 752)] * 2, 1, 2),  # landscape pairs stack: each gets the full width
        ([(752, 1392)] * 2, 2, 1),  # portrait pairs stand side by side
        ([(1024, 1024)] * 2, 2, 1),  # a tie goes to the wider grid
        ([(1024, 1024)] * 3, 2, 2),
        ([(1392, 752)] * 4, 2, 2),
        ([(1568, 672)] * 4, 1, 4),  # 21:9 is so wide that one column gives the largest tiles
    ],
)
def test_the_grid_gives_the_largest_tiles(sizes: list[tuple[int, int]], columns: int, rows: int) -> None:
    canvas, boxes, got_columns, got_rows = sheet_layout(sizes, SHEET_LONGEST_SIDE)
    assert (got_columns, got_rows) == (columns, rows)
    assert max(canvas) <= SHEET_LONGEST_SIDE
    assert len(boxes) == len(sizes)


def test_small_candidates_are_not_enlarged() -> None:
    sheet = make_contact_sheet([encode(flat((120, 80), (9, 9, 9)), "PNG")] * 2)
    assert all((tile.width, tile.height) == (120, 80) for tile in sheet.tiles)


def test_candidates_keep_their_own_numbers() -> None:
    # Candidate 2 of four failed: the sheet shows 1, 3 and 4, as the result names them.
    sheet = make_contact_sheet(_candidates(3), numbers=[1, 3, 4])
    assert [tile.number for tile in sheet.tiles] == [1, 3, 4]
    image = decode(sheet.preview.data)
    for tile in sheet.tiles:
        _assert_badge(image, tile.label, tile.number)


def test_two_digit_numbers_fit_their_badge() -> None:
    sheet = make_contact_sheet(_candidates(2), numbers=[10, 42])
    assert [tile.label.text for tile in sheet.tiles] == ["10", "42"]
    for tile in sheet.tiles:
        assert tile.label.x + tile.label.width <= tile.x + tile.width


@pytest.mark.parametrize("numbers", [[1], [1, 1], [0, 1], [1, 100]])
def test_numbers_must_be_one_distinct_label_per_image(numbers: list[int]) -> None:
    with pytest.raises(ValueError, match="numbers must be"):
        make_contact_sheet(_candidates(2), numbers=numbers)


@pytest.mark.parametrize("count", [0, 5])
def test_one_to_four_images_only(count: int) -> None:
    with pytest.raises(ImagingError) as raised:
        make_contact_sheet([encode(flat((10, 10), (0, 0, 0)))] * count)
    assert raised.value.reason == "too_many_images"
    assert "1 to 4" in raised.value.message


def test_bytes_that_are_not_an_image_are_named() -> None:
    with pytest.raises(ImagingError) as raised:
        make_contact_sheet([_candidates(1)[0], b"<html>not an image</html>"])
    assert raised.value.reason == "not_an_image"
    assert "image 2" in raised.value.message


def test_the_sheet_is_a_preview_a_result_can_carry() -> None:
    sheet = make_contact_sheet(_candidates(2))
    assert isinstance(sheet, ContactSheet)
    assert sheet.preview.encoded_size == len(sheet.preview.base64)
    with Image.open(io.BytesIO(sheet.preview.data)) as image:
        assert image.format == "JPEG"
        assert (sheet.preview.source_width, sheet.preview.source_height) == image.size
