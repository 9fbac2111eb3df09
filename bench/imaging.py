"""Imaging cost: what the server does to image bytes, on four ~2 MP results.

Each operation of ``rivya_mcp.imaging`` runs on images the size of a model result (about two
megapixels, one per aspect ratio of the manifest), twice over: "photo-like" content (smooth
gradients and shapes, JPEG quality 90, as results come) and noise (the worst case for every
codec). The figure is the median wall time of ``--runs`` repetitions in this process, one core.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_report, table

from rivya_mcp.imaging import (
    Provenance,
    composite,
    embed_provenance,
    image_size,
    make_contact_sheet,
    mask_from_image,
    mask_from_region,
    render_preview,
)
from rivya_mcp.manifest import get_manifest

MEGAPIXELS = 2.0
RATIOS = ("16:9", "9:16", "1:1", "21:9")  # four of the manifest's options, checked below
PROVENANCE = Provenance(task_id="gen_bench", created_at=datetime(2026, 5, 11, tzinfo=UTC), model_id="flux-kontext-max")


def _size(ratio: str) -> tuple[int, int]:
    w, h = (int(x) for x in ratio.split(":"))
    height = math.sqrt(MEGAPIXELS * 1_000_000 * h / w)
    return round(height * w / h), round(height)


def _photo_like(size: tuple[int, int], seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        r = rng.randrange(20, max(21, min(size) // 4))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
    return image.filter(ImageFilter.GaussianBlur(3))


def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3))


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {"compress_level": 6}))
    return out.getvalue()


def _median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(content: str, make: Callable[[tuple[int, int], int], Image.Image], runs: int) -> list[tuple[str, ...]]:
    images = [make(_size(ratio), seed) for seed, ratio in enumerate(RATIOS)]
    jpegs = [_encode(image, "JPEG") for image in images]
    reference_png = _encode(images[0], "PNG")
    edited = jpegs[1]  # another aspect ratio: stretched to the reference's size
    width, height = image_size(reference_png)
    region = mask_from_region(width, height, width // 4, height // 4, width // 2, height // 2)
    painted = Image.new("L", (width, height), 0)
    ImageDraw.Draw(painted).ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4), fill=255)
    painted_png = _encode(painted, "PNG")
    sheet = make_contact_sheet(jpegs)
    measured: list[tuple[str, Callable[[], object], str]] = [
        ("render_preview (one image)", lambda: render_preview(jpegs[0]), ""),
        ("make_contact_sheet (4 images)", lambda: make_contact_sheet(jpegs), f"{sheet.preview.encoded_size:,} B"),
        ("image_size (header only)", lambda: image_size(reference_png), ""),
        ("mask_from_region", lambda: mask_from_region(width, height, 10, 10, width // 2, height // 2), ""),
        ("mask_from_image (painted PNG)", lambda: mask_from_image(painted_png, width=width, height=height), ""),
        ("composite → PNG", lambda: composite(reference_png, edited, region, output_format="png"), ""),
        ("composite → JPEG", lambda: composite(reference_png, edited, region, output_format="jpeg"), ""),
        ("embed_provenance (JPEG)", lambda: embed_provenance(jpegs[0], PROVENANCE), ""),
        ("embed_provenance (PNG)", lambda: embed_provenance(reference_png, PROVENANCE), ""),
    ]
    return [(content, name, _ms(_median_ms(action, runs)), note) for name, action, note in measured]


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two runs per figure")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    options = get_manifest("flux-kontext-max").param("aspectRatio").options or ()
    assert set(RATIOS) <= set(options), options
    rows = [
        row
        for content, make in (("photo-like", _photo_like), ("noise", _noise))
        for row in measure(content, make, runs)
    ]
    sizes = ", ".join(f"{ratio} {w}×{h}" for ratio in RATIOS for w, h in [_size(ratio)])
    print_report(
        "Imaging",
        table(("content", "operation", "median ms", "output"), rows),
        [
            f"{runs} runs each, one process, one thread; images: {sizes} (~{MEGAPIXELS:g} MP).",
            "composite: a 16:9 PNG reference, a 9:16 JPEG edit stretched to it, a region mask, 8 px feather.",
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
