"""Test images made on the spot: noise (the worst case for any codec), flat colours, gradients."""

from __future__ import annotations

import io
import random

from PIL import Image


def noise(size: tuple[int, int], mode: str = "RGB", *, seed: int = 0) -> Image.Image:
    data = random.Random(seed).randbytes(size[0] * size[1] * len(mode))
    return Image.frombytes(mode, size, data)


def flat(size: tuple[int, int], colour: tuple[int, ...] | int, mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()


def pixels(image: Image.Image, mode: str) -> bytes:
    """The raw pixel bytes of ``image`` in ``mode`` (a comparison that is exact, pixel by pixel)."""
    return image.convert(mode).tobytes()
