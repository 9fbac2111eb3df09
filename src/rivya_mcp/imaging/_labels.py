"""Numbered badges drawn onto a picture: readable on light and dark content, at any size.

The digits are a 5×7 bitmap font drawn as rectangles, not a TrueType font: the same pixels on
every machine and Pillow build (a font's rasteriser and hinting vary), crisp at any scale, and
nothing to ship. A badge is a near-black rounded plate with a white rim and a white digit: the
plate stands out on light content, the rim on dark content.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

__all__ = ["GLYPHS", "GLYPH_COLUMNS", "GLYPH_ROWS", "LabelBox", "draw_label", "label_layout"]

GLYPH_COLUMNS = 5
GLYPH_ROWS = 7
# "#" is ink. Classic 5×7 digit shapes.
GLYPHS: dict[str, tuple[str, ...]] = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
}
PLATE = (17, 17, 17)
INK = (255, 255, 255)
# The badge's height as a share of the shorter side of the picture it labels, and its bounds.
LABEL_SHARE = 0.12
MIN_LABEL_HEIGHT = 22
# Around the glyph, in glyph pixels: padding inside the plate; the rim is one glyph pixel / 2.
PADDING = 2


@dataclass(frozen=True)
class LabelBox:
    """Where a badge goes and how it is drawn: top-left corner, size, and the glyph pixel size."""

    x: int
    y: int
    width: int
    height: int
    scale: int
    text: str

    def glyph_origin(self) -> tuple[int, int]:
        """The top-left corner of the first glyph's 5×7 grid."""
        return self.x + PADDING * self.scale, self.y + PADDING * self.scale


def label_layout(text: str, *, x: int, y: int, picture_size: tuple[int, int], height: int | None = None) -> LabelBox:
    """The badge for ``text`` with its top-left corner inset from (x, y) of a picture of ``picture_size``.

    About ``height`` tall (by default 12 % of the picture's shorter side), at least 22 px (the
    digit then stays legible) but never more than half the picture, so a badge doesn't hide a
    tiny candidate. The glyph pixel size is a whole number, so the badge may come out smaller.
    """
    short = min(picture_size)
    wanted = max(MIN_LABEL_HEIGHT, round(short * LABEL_SHARE) if height is None else height)
    wanted = min(wanted, max(short // 2, GLYPH_ROWS + 2 * PADDING))
    scale = max(1, wanted // (GLYPH_ROWS + 2 * PADDING))
    glyphs_width = len(text) * GLYPH_COLUMNS + (len(text) - 1)
    width = (glyphs_width + 2 * PADDING) * scale
    height = (GLYPH_ROWS + 2 * PADDING) * scale
    inset = max(2, scale * 2)
    return LabelBox(x + inset, y + inset, width, height, scale, text)


def draw_label(image: Image.Image, box: LabelBox) -> None:
    """Draw the badge ``box`` onto ``image`` (RGB) in place."""
    draw = ImageDraw.Draw(image)
    rim = max(1, box.scale // 2)
    right, bottom = box.x + box.width - 1, box.y + box.height - 1
    radius = box.scale * 2
    draw.rounded_rectangle((box.x, box.y, right, bottom), radius=radius, fill=PLATE, outline=INK, width=rim)
    origin_x, origin_y = box.glyph_origin()
    for index, character in enumerate(box.text):
        left = origin_x + index * (GLYPH_COLUMNS + 1) * box.scale
        for row, line in enumerate(GLYPHS[character]):
            for column, cell in enumerate(line):
                if cell == "#":
                    x0 = left + column * box.scale
                    y0 = origin_y + row * box.scale
                    draw.rectangle((x0, y0, x0 + box.scale - 1, y0 + box.scale - 1), fill=INK)
