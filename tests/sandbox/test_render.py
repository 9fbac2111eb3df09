"""The sandbox's renderer: an edit's caption never overprints its reference's own caption."""

from __future__ import annotations

import io

from PIL import Image, ImageChops

from rivya_mcp.sandbox import RenderSpec, output_size, render

LONG_PROMPT = " ".join(["A lighthouse on a rocky cliff at sunset, painted in soft watercolor"] * 4)


def _spec(prompt: str, *, reference: bytes | None = None) -> RenderSpec:
    width, height = output_size(16, 9)
    return RenderSpec(
        width=width,
        height=height,
        format="PNG",
        prompt=prompt,
        seed_material=f"test|{prompt}",
        label="flux-kontext-max · test",
        reference=reference,
    )


def _plain_png() -> bytes:
    width, height = output_size(16, 9)
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(out, format="PNG")
    return out.getvalue()


def _bottom_quarter(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return image.crop((0, image.height * 3 // 4, image.width, image.height))


def test_an_edit_of_a_captioned_image_shows_only_its_own_caption() -> None:
    captioned = render(_spec(LONG_PROMPT))  # a generation with a four-line caption
    edit_prompt = "Make it snowy"
    over_caption = render(_spec(edit_prompt, reference=captioned))
    over_plain = render(_spec(edit_prompt, reference=_plain_png()))
    # The caption area of the edit is the same whatever the reference had there: nothing of the
    # old caption shows through or beside the new one.
    difference = ImageChops.difference(_bottom_quarter(over_caption), _bottom_quarter(over_plain))
    assert difference.getbbox() is None


def test_an_edit_still_derives_visibly_from_its_reference() -> None:
    reference = _plain_png()
    edited = Image.open(io.BytesIO(render(_spec("Make it snowy", reference=reference)))).convert("RGB")
    # Above the caption band the edit is the reference, lightly tinted.
    r, g, b = edited.getpixel((edited.width // 2, edited.height // 3))  # type: ignore[misc]
    assert abs(r - 90) < 60 and abs(g - 140) < 60 and abs(b - 200) < 60
