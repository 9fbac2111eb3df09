"""One preview of several candidates: a grid of the images, each labelled with its number.

Variations (``count`` 2-4) return one preview instead of four, under the same budget as a single
preview. The sheet is redrawn at each size the budget loop tries, so the badges are drawn at the
final size and stay legible however far the sheet had to shrink.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from PIL import Image

from ._budget import TARGET_PREVIEW_ENCODED_BYTES, Preview, encode_within, fit_size, has_transparency
from ._decode import open_image, upright_size
from ._errors import ImagingError
from ._labels import LABEL_SHARE, LabelBox, draw_label, label_layout

__all__ = [
    "MAX_SHEET_IMAGES",
    "SHEET_LONGEST_SIDE",
    "ContactSheet",
    "Tile",
    "label_height",
    "make_contact_sheet",
    "sheet_layout",
]

MAX_SHEET_IMAGES = 4
# Larger than a single preview's 768 px, so four candidates in a 2×2 grid get ~512 px each.
SHEET_LONGEST_SIDE = 1024
BACKGROUND = (45, 45, 45)
SHEET_LABEL_SHARE = 0.045
CHECKER_LIGHT, CHECKER_DARK = 255, 204

Box = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class Tile:
    """Where candidate ``number`` (its label) sits on the sheet, and the badge drawn on it."""

    number: int
    x: int
    y: int
    width: int
    height: int
    label: LabelBox
    source_width: int
    source_height: int


@dataclass(frozen=True)
class ContactSheet:
    """The encoded sheet (``preview``: its source size is the sheet's own) and its tiles."""

    preview: Preview
    tiles: tuple[Tile, ...]
    columns: int
    rows: int


def sheet_layout(sizes: Sequence[tuple[int, int]], side: int) -> tuple[tuple[int, int], list[Box], int, int]:
    """Lay ``sizes`` out in a grid that fits a side×side box: (canvas size, one box per image, columns, rows).

    All cells share one aspect ratio (the geometric mean of the images'); the grid is the one of
    1..n columns whose cells come out largest; an image is fitted into its cell and centred, and a
    short last row is centred too. Cells are never larger than the largest image (no upscaling).
    """
    count = len(sizes)
    aspect = math.exp(sum(math.log(w / h) for w, h in sizes) / count)
    gap = max(2, side // 128)
    best: tuple[float, int, int, float, float] | None = None
    for columns in range(1, count + 1):
        rows = math.ceil(count / columns)
        cell_w = min((side - (columns + 1) * gap) / columns, (side - (rows + 1) * gap) / rows * aspect)
        cell_h = cell_w / aspect
        # On a tie the wider grid wins: screens and chat columns are wider than tall.
        if best is None or cell_w * cell_h >= best[0] * (1 - 1e-9):
            best = (cell_w * cell_h, columns, rows, cell_w, cell_h)
    assert best is not None
    _, columns, rows, cell_w, cell_h = best
    shrink = min(1.0, max(w for w, _ in sizes) / cell_w, max(h for _, h in sizes) / cell_h)
    cw, ch = max(1, math.floor(cell_w * shrink)), max(1, math.floor(cell_h * shrink))
    canvas = (columns * cw + (columns + 1) * gap, rows * ch + (rows + 1) * gap)
    boxes: list[Box] = []
    for index, size in enumerate(sizes):
        row, column = divmod(index, columns)
        in_row = min(columns, count - row * columns)
        offset = (columns - in_row) * (cw + gap) // 2  # centres a short last row
        w, h = fit_size(size, max(cw, ch))
        scale = min(cw / w, ch / h, 1.0)
        w, h = max(1, math.floor(w * scale)), max(1, math.floor(h * scale))
        x = offset + gap + column * (cw + gap) + (cw - w) // 2
        y = gap + row * (ch + gap) + (ch - h) // 2
        boxes.append((x, y, w, h))
    return canvas, boxes, columns, rows


def label_height(boxes: Sequence[Box], canvas_size: tuple[int, int]) -> int:
    """One badge height for every tile: 12 % of the largest tile's shorter side, and at least 4.5 %
    of the sheet's longer side, so the numbers stay legible when a host shows the sheet small."""
    tile_short = max(min(w, h) for _, _, w, h in boxes)
    return max(round(tile_short * LABEL_SHARE), round(max(canvas_size) * SHEET_LABEL_SHARE))


def make_contact_sheet(
    images: Sequence[bytes],
    *,
    numbers: Sequence[int] | None = None,
    budget: int = TARGET_PREVIEW_ENCODED_BYTES,
    longest_side: int = SHEET_LONGEST_SIDE,
) -> ContactSheet:
    """One preview of 1-4 images (any sizes and aspect ratios), each labelled 1..N in the order given.

    ``numbers`` labels them otherwise, e.g. ``[1, 3, 4]`` when candidate 2 of four failed, so each
    keeps the number it has in the result (distinct, 1 to 99).

    The sheet's longest side is at most ``longest_side``; its base64 text fits ``budget`` (never
    above the 300 KB ceiling of every preview). Transparent images are shown over a checkerboard;
    the sheet itself is an opaque JPEG. Deterministic. Blocking (decodes every image): run it in a
    worker thread. Raises ``ImagingError`` for no image, more than four, or bytes that aren't one.
    """
    if not 1 <= len(images) <= MAX_SHEET_IMAGES:
        raise ImagingError(
            f"a contact sheet takes 1 to {MAX_SHEET_IMAGES} images, not {len(images)}", reason="too_many_images"
        )
    labels_given = list(range(1, len(images) + 1)) if numbers is None else list(numbers)
    if len(labels_given) != len(images) or len(set(labels_given)) != len(labels_given):
        raise ValueError(f"numbers must be {len(images)} distinct numbers, one per image, not {labels_given}")
    if not all(1 <= number <= 99 for number in labels_given):
        raise ValueError(f"numbers must be between 1 and 99, not {labels_given}")
    names = [f"image {number}" for number in labels_given]
    # The largest each tile can be, from the headers: a JPEG is then decoded at 1/2, 1/4 or 1/8
    # of its size when that still covers its tile (4 × 2 MP → 4 × 0.5 MP to decode).
    headers = [upright_size(data, what=name) for data, name in zip(images, names, strict=True)]
    tile_boxes = sheet_layout(headers, longest_side)[1]
    sources: list[Image.Image] = []
    sizes: list[tuple[int, int]] = []
    for data, name, header, (_, _, w, h) in zip(images, names, headers, tile_boxes, strict=True):
        with open_image(data, what=name, draft=(max(w, h), max(w, h))) as opened:
            # The source's own size (a draft decodes it smaller), turned as its pixels came out.
            turned = (header[0] > header[1]) != (opened.width > opened.height) and header[0] != header[1]
            sizes.append((header[1], header[0]) if turned else header)
            # One reduction to the largest its tile can be; each size the budget loop tries starts here.
            opened.thumbnail((max(w, h), max(w, h)), Image.Resampling.BICUBIC, reducing_gap=2.0)
            sources.append(_opaque(opened))
    drawn: list[tuple[list[Box], list[LabelBox], int, int]] = []

    def draw(side: int) -> Image.Image:
        canvas_size, boxes, columns, rows = sheet_layout(sizes, side)
        badge = label_height(boxes, canvas_size)
        sheet = Image.new("RGB", canvas_size, BACKGROUND)
        labels = []
        for number, source, (x, y, w, h) in zip(labels_given, sources, boxes, strict=True):
            sheet.paste(source.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=2.0), (x, y))
            label = label_layout(str(number), x=x, y=y, picture_size=(w, h), height=badge)
            draw_label(sheet, label)
            labels.append(label)
        drawn.append((boxes, labels, columns, rows))
        return sheet

    encoded = encode_within(draw, budget=budget, longest_side=longest_side, transparent=False, source_size=(0, 0))
    preview = replace(encoded, source_width=encoded.width, source_height=encoded.height)
    boxes, labels, columns, rows = drawn[-1]
    tiles = tuple(
        Tile(number, *box, label, *size)
        for number, box, label, size in zip(labels_given, boxes, labels, sizes, strict=True)
    )
    return ContactSheet(preview=preview, tiles=tiles, columns=columns, rows=rows)


def _opaque(image: Image.Image) -> Image.Image:
    """``image`` as RGB; a transparent one over a checkerboard, so its transparency shows."""
    if not has_transparency(image):
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    square = max(4, max(rgba.size) // 48)
    across, down = math.ceil(rgba.width / square), math.ceil(rgba.height / square)
    pattern = bytes(
        CHECKER_LIGHT if (i % across + i // across) % 2 == 0 else CHECKER_DARK for i in range(across * down)
    )
    board = Image.frombytes("L", (across, down), pattern).resize(
        (across * square, down * square), Image.Resampling.NEAREST
    )
    background = board.crop((0, 0, *rgba.size)).convert("RGBA")
    return Image.alpha_composite(background, rgba).convert("RGB")
