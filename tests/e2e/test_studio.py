"""Variations and region edits through real MCP clients, on every transport and both sandbox
profiles (tests/e2e/conftest.py): what issue 26's "done when" asks, end to end."""

from __future__ import annotations

import base64
import io
import uuid
from pathlib import Path

import pytest
from mcp.types import BlobResourceContents, CallToolResult, ImageContent, ResourceLink, TextContent
from PIL import Image, ImageChops, ImageDraw

from rivya_mcp.manifest import get_manifest
from tests.e2e.conftest import Harness

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

COST = get_manifest("flux-kontext-max").base_credits
PREVIEW_LIMIT = 300_000
# The composite's feather ramps inward from the mask's edge; a pixel this far inside is all edit.
FEATHER = 8


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _reference(path: Path, size: tuple[int, int]) -> Image.Image:
    """A detailed RGB picture (so a changed pixel shows), saved as a PNG at ``path``."""
    image = Image.effect_noise(size, 64).convert("RGB")
    ImageDraw.Draw(image).ellipse((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill=(30, 90, 200))
    image.save(path, format="PNG")
    return image


async def test_count_4_gives_four_images_four_charges_one_contact_sheet_and_four_links(harness: Harness) -> None:
    key = f"e2e-variations-{uuid.uuid4().hex[:8]}"
    async with harness.connect() as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "A red kite over the dunes", "count": 4, "idempotency_key": key}
        )
        assert not result.is_error, _text(result)
        data = result.structured_content
        assert data is not None
        assert data["count"] == 4 and data["call_credits"] == 4 * COST
        tasks = [c["task_id"] for c in data["candidates"]]
        assert len(set(tasks)) == 4 and all(c["saved_path"] for c in data["candidates"])
        sheets = [c for c in result.content if isinstance(c, ImageContent)]
        links = [c for c in result.content if isinstance(c, ResourceLink)]
        assert len(sheets) == 1 and len(sheets[0].data) < PREVIEW_LIMIT
        assert [str(link.uri) for link in links] == [c["resource_uri"] for c in data["candidates"]]
        with Image.open(io.BytesIO(base64.b64decode(sheets[0].data))) as sheet:
            assert sheet.format == "JPEG" and max(sheet.size) <= 1024
        read = await client.read_resource(str(links[2].uri))
        blob = read.contents[0]
        assert isinstance(blob, BlobResourceContents)
        assert base64.b64decode(blob.blob) == Path(data["candidates"][2]["saved_path"]).read_bytes()
        assert f"{4 * COST} credits" in _text(result)
        # The same call again, same key: the same four tasks, nothing charged again.
        again = await client.call_tool(
            "generate_image", {"prompt": "A red kite over the dunes", "count": 4, "idempotency_key": key}
        )
    assert again.structured_content is not None
    assert [c["task_id"] for c in again.structured_content["candidates"]] == tasks
    assert all(c["reused"] for c in again.structured_content["candidates"])
    charges = harness.charges_per_task()
    assert {task: charges.get(task) for task in tasks} == dict.fromkeys(tasks, 1)


async def test_a_png_region_edit_keeps_every_pixel_outside_the_mask(harness: Harness) -> None:
    path = harness.workdir / "refs" / f"region-{uuid.uuid4().hex[:8]}.png"
    reference = _reference(path, (600, 800))  # portrait: 3:4 is asked for
    box = (120, 200, 260, 180)  # x, y, width, height
    async with harness.connect() as client:
        result = await client.call_tool(
            "edit_image",
            {
                "prompt": "make the blue disc a sunflower",
                "reference": str(path),
                "region": dict(zip(("x", "y", "width", "height"), box, strict=True)),
                "outputFormat": "png",
            },
        )
    assert not result.is_error, _text(result)
    data = result.structured_content
    assert data is not None
    assert harness.task(data["task_id"])["params"]["aspectRatio"] == "3:4"
    with Image.open(data["saved_path"]) as saved:
        assert saved.format == "PNG" and saved.size == reference.size
        edited = saved.convert("RGB")
    x, y, w, h = box
    outside = Image.new("L", reference.size, 255)
    outside.paste(0, (x, y, x + w, y + h))
    difference = ImageChops.difference(edited, reference).convert("L")
    # Outside the region: the reference's own pixels, every one of them.
    assert ImageChops.multiply(difference, outside).getbbox() is None
    # Inside, past the feather: the model's pixels (the sandbox's edit tints the whole picture).
    inner = difference.crop((x + FEATHER, y + FEATHER, x + w - FEATHER, y + h - FEATHER))
    unchanged = inner.histogram()[0]
    assert unchanged < 0.1 * inner.width * inner.height
    # Provenance: a region edit is a composite of the person's picture and the model's output.
    with Image.open(data["saved_path"]) as saved:
        assert "compositeWithTrainedAlgorithmicMedia" in str(saved.info.get("XML:com.adobe.xmp", ""))
