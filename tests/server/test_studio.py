"""Variations, region edits, the gallery and provenance through the real server, client and journal
against a real sandbox on loopback (issue 26). The transports and both profiles are in tests/e2e."""

from __future__ import annotations

import base64
import io
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, MCPError
from mcp.types import BlobResourceContents, CallToolResult, ImageContent, ResourceLink, TextContent
from PIL import Image, ImageChops, ImageDraw

from rivya_mcp.imaging import COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA, TRAINED_ALGORITHMIC_MEDIA
from rivya_mcp.journal import TaskJournal
from rivya_mcp.manifest import get_manifest
from rivya_mcp.sandbox import RunningSandbox, account_id
from rivya_mcp.server import build_server
from rivya_mcp.tasks import MAX_COUNT, Limits, call_cost, save_atomically
from tests.imaging._c2pa import make_chain, read, sign
from tests.imaging._xmp_read import properties
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio

COST = get_manifest("flux-kontext-max").base_credits
CREATED = datetime(2026, 5, 11, 9, 30, 15, tzinfo=UTC)


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _key() -> str:
    return f"rvya_sk_studio_{uuid.uuid4().hex}"


def _account(sandbox: RunningSandbox, key: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(tasks, charges) the sandbox booked for one API key."""
    snapshot = sandbox.state.snapshot()
    account = account_id(key)
    tasks = [t for t in snapshot["tasks"] if t["account"] == account]
    charges = [e for e in snapshot["ledger"] if e["account"] == account and e["delta"] < 0]
    return tasks, charges


def _xmp(path: str | Path) -> dict[str, str]:
    with Image.open(path) as image:
        packet = image.info.get("XML:com.adobe.xmp") or image.info.get("xmp")
    assert packet, f"{path} carries no XMP"
    return properties(packet)


def _picture(path: Path, size: tuple[int, int], fmt: str = "PNG") -> Image.Image:
    image = Image.effect_noise(size, 64).convert("RGB")
    ImageDraw.Draw(image).rectangle((10, 10, size[0] // 3, size[1] // 3), fill=(200, 40, 40))
    image.save(path, format=fmt)
    return image


# --- cost -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "total", "said"), [(1, 8, "8 credits"), (4, 32, "32 credits (4 images × 8)")])
def test_a_calls_cost_is_count_times_the_price_of_an_image(count: int, total: int, said: str) -> None:
    cost = call_cost(Limits(max_prompt_length=100, max_upload_bytes=10, base_credits=8), count)
    assert (cost.total, str(cost)) == (total, said)


@pytest.mark.parametrize("count", [0, MAX_COUNT + 1])
def test_a_count_outside_1_to_4_has_no_cost(count: int) -> None:
    with pytest.raises(ValueError, match="count must be between 1 and 4"):
        call_cost(Limits(max_prompt_length=100, max_upload_bytes=10, base_credits=8), count)


async def test_the_tool_descriptions_state_count_times_the_credits(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("generate_image", "edit_image"):
        description = tools[name].description or ""
        assert f"count × {COST} credits" in description and f"up to {COST * MAX_COUNT}" in description
        count = tools[name].input_schema["properties"]["count"]
        assert (count["minimum"], count["maximum"], count["default"]) == (1, 4, 1)
    edit = tools["edit_image"].description or ""
    assert "may redraw the whole image" in edit and "only the masked part" in edit


# --- variations -------------------------------------------------------------------------------


async def test_a_partial_failure_returns_what_succeeded_and_says_what_failed(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    key = _key()
    sandbox.state.set_balance(account_id(key), 2 * COST)  # two of the four creates are refused
    async with Client(build_server(settings_for(sandbox, tmp_path, key=key))) as client:
        result = await client.call_tool("generate_image", {"prompt": "Four owls", "count": 4})
    assert not result.is_error, _text(result)
    data = result.structured_content
    assert data is not None
    made = [c for c in data["candidates"] if c["saved_path"]]
    refused = [c for c in data["candidates"] if c["status"] == "not_created"]
    assert len(made) == 2 and len(refused) == 2
    assert all(c["error"]["code"] == "insufficient_credits" for c in refused)
    text = _text(result)
    for candidate in refused:
        assert f"Image {candidate['number']}: not created" in text
    # The contact sheet shows the two that exist, with the numbers they have in the result.
    assert f"contact sheet of image(s) {', '.join(str(c['number']) for c in made)}" in text
    assert len([c for c in result.content if isinstance(c, ResourceLink)]) == 2
    tasks, charges = _account(sandbox, key)
    assert len(tasks) == 2 and len(charges) == 2


async def test_when_no_variation_can_be_created_the_call_fails_and_nothing_is_charged(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    key = _key()
    sandbox.state.set_balance(account_id(key), 0)
    async with Client(build_server(settings_for(sandbox, tmp_path, key=key))) as client:
        result = await client.call_tool("generate_image", {"prompt": "Four owls", "count": 3})
    assert result.is_error and "insufficient_credits" in _text(result)
    assert _account(sandbox, key) == ([], [])


async def test_a_larger_count_under_the_same_key_adds_only_the_missing_images(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    key = _key()
    async with Client(build_server(settings_for(sandbox, tmp_path, key=key))) as client:
        one = await client.call_tool("generate_image", {"prompt": "A heron", "idempotency_key": "heron"})
        four = await client.call_tool("generate_image", {"prompt": "A heron", "idempotency_key": "heron", "count": 4})
        bad = await client.call_tool("generate_image", {"prompt": "A heron", "count": 5})
    assert one.structured_content is not None and four.structured_content is not None
    candidates = four.structured_content["candidates"]
    # Image 1 is the call's own key: the single image made before, found again, not paid again.
    assert candidates[0]["task_id"] == one.structured_content["task_id"] and candidates[0]["reused"]
    assert [c["reused"] for c in candidates[1:]] == [False, False, False]
    tasks, charges = _account(sandbox, key)
    assert len(tasks) == 4 and len(charges) == 4
    assert {t["idempotency_key"] for t in tasks} == {"heron", "heron#2", "heron#3", "heron#4"}
    assert bad.is_error and "count" in _text(bad)


async def test_variations_of_a_long_key_stay_within_the_key_length(sandbox: RunningSandbox, tmp_path: Path) -> None:
    key, long_key = _key(), "k" * 128
    async with Client(build_server(settings_for(sandbox, tmp_path, key=key))) as client:
        result = await client.call_tool("generate_image", {"prompt": "A lark", "idempotency_key": long_key, "count": 2})
    assert not result.is_error, _text(result)
    keys = {t["idempotency_key"] for t in _account(sandbox, key)[0]}
    assert long_key in keys and len(keys) == 2 and all(len(k) <= 128 for k in keys)


# --- region edits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"region": {"x": 500, "y": 0, "width": 200, "height": 100}}, "reaches outside the reference image"),
        ({"region": {"x": 0, "y": 0, "width": 10, "height": 10}, "mask": "data:,"}, "Both mask and region"),
        ({"mask": "data:image/png;base64," + base64.b64encode(b"\x89PNG not really").decode()}, "mask"),
        ("black", "entirely black"),
    ],
)
async def test_a_region_edit_that_cannot_be_meant_is_refused_before_anything_is_sent(
    sandbox: RunningSandbox, tmp_path: Path, extra: dict[str, Any] | str, said: str
) -> None:
    key = _key()
    reference = tmp_path / "ref.png"
    _picture(reference, (600, 400))
    if extra == "black":
        black = io.BytesIO()
        Image.new("L", (60, 40), 0).save(black, format="PNG")
        extra = {"mask": "data:image/png;base64," + base64.b64encode(black.getvalue()).decode()}
    assert isinstance(extra, dict)
    async with Client(build_server(settings_for(sandbox, tmp_path, key=key))) as client:
        result = await client.call_tool("edit_image", {"prompt": "x", "reference": str(reference), **extra})
    assert result.is_error and said in _text(result), _text(result)
    assert "No credits were spent" in _text(result) or "no credits were spent" in _text(result)
    snapshot = sandbox.state.snapshot()
    assert _account(sandbox, key) == ([], [])
    assert not [f for f in snapshot["files"] if f["account"] == account_id(key)]  # not even uploaded


async def test_a_painted_mask_keeps_the_reference_outside_it_and_the_result_survives_a_restart(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """The journal keeps the reference and the mask: a second server (a restart) composites the
    result of a region edit the first one never saved."""
    key = _key()
    reference_path = tmp_path / "ref.png"
    reference = _picture(reference_path, (480, 640))
    mask = Image.new("L", (120, 160), 0)  # a quarter-size painting: stretched to the reference
    ImageDraw.Draw(mask).ellipse((30, 40, 90, 120), fill=255)
    painted = io.BytesIO()
    mask.save(painted, format="PNG")
    settings = settings_for(sandbox, tmp_path, key=key)
    arguments = {
        "prompt": "a lake here",
        "reference": str(reference_path),
        "mask": "data:image/png;base64," + base64.b64encode(painted.getvalue()).decode(),
        "outputFormat": "png",
        "wait_seconds": 0,
        "idempotency_key": "lake",
    }
    async with Client(build_server(settings)) as client:
        started = await client.call_tool("edit_image", arguments)
    assert started.structured_content is not None and not started.structured_content["done"]
    task_id = started.structured_content["task_id"]
    with TaskJournal(Path(settings.data_dir) / "journal.sqlite3") as journal:
        kept = journal.composition("lake")
    assert kept is not None and kept.reference == reference_path.read_bytes() and kept.output_format == "png"
    async with Client(build_server(settings)) as client:  # a new server on the same folders
        result = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 20})
    assert result.structured_content is not None and result.structured_content["saved_path"], _text(result)
    with Image.open(result.structured_content["saved_path"]) as saved:
        assert saved.size == reference.size
        edited = saved.convert("RGB")
    stretched = mask.resize(reference.size, Image.Resampling.BILINEAR)
    keep = stretched.point(lambda v: 255 if v == 0 else 0)
    difference = ImageChops.difference(edited, reference).convert("L")
    assert ImageChops.multiply(difference, keep).getbbox() is None
    assert difference.getbbox() is not None
    assert sandbox.state.snapshot()["tasks"][-1]["params"]["aspectRatio"] == "3:4"
    assert _xmp(result.structured_content["saved_path"])["Iptc4xmpExt:DigitalSourceType"] == (
        COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    )


async def test_a_region_edit_of_an_earlier_result_with_a_mask_given_by_file_id(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    key = _key()
    mask_path = tmp_path / "mask.png"
    mask = Image.new("L", (64, 36), 0)
    mask.paste(255, (0, 0, 32, 36))  # the left half may change
    mask.save(mask_path)
    async with Client(build_server(settings_for(sandbox, tmp_path, key=key))) as client:
        first = await client.call_tool("generate_image", {"prompt": "A meadow", "outputFormat": "png"})
        assert first.structured_content is not None
        uploaded = await client.call_tool("upload_reference", {"source": str(mask_path)})
        assert uploaded.structured_content is not None
        result = await client.call_tool(
            "edit_image",
            {
                "prompt": "add a deer",
                "reference": first.structured_content["task_id"],
                "mask": uploaded.structured_content["file"]["id"],
                "outputFormat": "png",
            },
        )
    assert not result.is_error, _text(result)
    data = result.structured_content
    assert data is not None
    with Image.open(first.structured_content["saved_path"]) as before, Image.open(data["saved_path"]) as after:
        assert after.size == before.size and after.format == "PNG"  # the reference's outputFormat
        width, height = before.size
        # The 64 px mask is stretched 21.5 times (bilinear): its edge blurs by up to one source pixel.
        right = (width // 2 + 22, 0, width, height)
        assert (
            ImageChops.difference(after.convert("RGB").crop(right), before.convert("RGB").crop(right)).getbbox() is None
        )
    # A region edit is a composite, whatever its reference.
    assert _xmp(data["saved_path"])["Iptc4xmpExt:DigitalSourceType"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA


async def test_a_refused_region_edit_keeps_nothing(sandbox: RunningSandbox, tmp_path: Path) -> None:
    key = _key()
    sandbox.state.set_balance(account_id(key), 0)
    reference = tmp_path / "ref.png"
    _picture(reference, (300, 200))
    settings = settings_for(sandbox, tmp_path, key=key)
    async with Client(build_server(settings)) as client:
        result = await client.call_tool(
            "edit_image",
            {
                "prompt": "x",
                "reference": str(reference),
                "region": {"x": 0, "y": 0, "width": 50, "height": 50},
                "idempotency_key": "refused-region",
            },
        )
    assert result.is_error and "insufficient_credits" in _text(result)
    with TaskJournal(Path(settings.data_dir) / "journal.sqlite3") as journal:
        assert journal.composition("refused-region") is None


# --- provenance -------------------------------------------------------------------------------


async def test_every_saved_image_names_its_digital_source_type_and_task(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    reference = tmp_path / "mine.jpg"
    _picture(reference, (320, 240), fmt="JPEG")
    async with Client(build_server(settings_for(sandbox, tmp_path, key=_key()))) as client:
        made = await client.call_tool("generate_image", {"prompt": "A secret plan for the party"})
        of_mine = await client.call_tool("edit_image", {"prompt": "brighter", "reference": str(reference)})
        assert made.structured_content is not None and of_mine.structured_content is not None
        of_result = await client.call_tool(
            "edit_image", {"prompt": "darker", "reference": made.structured_content["task_id"]}
        )
    assert of_result.structured_content is not None
    expected = [
        (made, TRAINED_ALGORITHMIC_MEDIA),
        (of_mine, COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA),  # the person's own photo, edited
        (of_result, TRAINED_ALGORITHMIC_MEDIA),  # every pixel came from the model
    ]
    for result, source_type in expected:
        data = result.structured_content
        assert data is not None
        found = _xmp(data["saved_path"])
        assert found["Iptc4xmpExt:DigitalSourceType"] == source_type
        assert found["Iptc4xmpExt:AISystemUsed"] == "Rivya flux-kontext-max"
        assert found["photoshop:TransmissionReference"] == data["task_id"]
        assert "Iptc4xmpExt:AIPromptInformation" not in found  # prompts stay private by default


async def test_the_prompt_is_written_only_when_asked_and_saving_again_gives_the_same_bytes(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, key=_key(), provenance_prompt=True)
    # The journal's clock starts in May 2026: the time written is the task's own (from the journal),
    # never the moment of saving.
    started = time.monotonic()
    journal = TaskJournal(
        tmp_path / "journal.sqlite3",
        now=lambda: CREATED + timedelta(seconds=time.monotonic() - started),
        upstream=settings.base_url,
        api_key=settings.api_key,
    )
    async with Client(build_server(settings, journal=journal)) as client:
        made = await client.call_tool("generate_image", {"prompt": "A secret plan for the party"})
        assert made.structured_content is not None
        saved = Path(made.structured_content["saved_path"])
        first = saved.read_bytes()
        saved.unlink()  # the person deleted it: get_task saves it again
        again = await client.call_tool("get_task", {"task_id": made.structured_content["task_id"]})
    assert again.structured_content is not None
    journal.close()
    found = _xmp(again.structured_content["saved_path"])
    assert found["Iptc4xmpExt:AIPromptInformation"] == "A secret plan for the party"
    assert found["photoshop:DateCreated"] == found["xmp:CreateDate"]
    assert found["photoshop:DateCreated"] in ("2026-05-11T09:30:15Z", "2026-05-11T09:30:16Z")
    # The task's own time, not the moment of saving: the same file, byte for byte.
    assert Path(again.structured_content["saved_path"]).read_bytes() == first


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
async def test_a_c2pa_signed_result_is_saved_as_downloaded_and_stays_valid(
    sandbox: RunningSandbox, tmp_path: Path, fmt: str
) -> None:
    chain = make_chain()
    mime = f"image/{fmt}"
    raw = io.BytesIO()
    Image.effect_noise((200, 150), 50).convert("RGB").save(raw, format=fmt.upper())
    signed = sign(raw.getvalue(), mime, chain)
    assert read(signed, mime, chain)[0] == "Trusted"
    name = f"signed-{fmt}"
    response = httpx2.put(f"{sandbox.base_url}/_sandbox/results/{name}", content=signed, timeout=10)
    response.raise_for_status()
    async with Client(build_server(settings_for(sandbox, tmp_path, key=_key()))) as client:
        result = await client.call_tool("generate_image", {"prompt": f"A signed picture [sandbox:result={name}]"})
        assert result.structured_content is not None, _text(result)
        link = next(c for c in result.content if isinstance(c, ResourceLink))
        served = (await client.read_resource(str(link.uri))).contents[0]
    saved = Path(result.structured_content["saved_path"])
    assert saved.read_bytes() == signed  # not one byte changed ...
    state, failures, _ = read(saved.read_bytes(), mime, chain)
    assert state == "Trusted", failures  # ... so the Content Credentials still verify
    assert isinstance(served, BlobResourceContents) and base64.b64decode(served.blob) == signed
    sidecar = saved.with_suffix(".xmp")
    found = properties(sidecar.read_text(encoding="utf-8"))
    assert found["Iptc4xmpExt:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert found["photoshop:TransmissionReference"] == result.structured_content["task_id"]


def test_an_image_is_never_saved_where_its_sidecar_would_be_anothers(tmp_path: Path) -> None:
    (tmp_path / "2026_task_x_fox.xmp").write_text("another image's XMP")
    with_sidecar = save_atomically(tmp_path, "2026_task_x_fox.png", b"png", sidecar="<xmp/>")
    plain = save_atomically(tmp_path, "2026_task_x_fox.jpg", b"jpg")
    assert with_sidecar.name == "2026_task_x_fox-2.png"
    assert (tmp_path / "2026_task_x_fox-2.xmp").read_text() == "<xmp/>"
    assert plain.name == "2026_task_x_fox-3.jpg"  # "-2" would look like the owner of -2.xmp
    assert (tmp_path / "2026_task_x_fox.xmp").read_text() == "another image's XMP"


# --- the gallery ------------------------------------------------------------------------------


async def test_list_tasks_pages_filters_and_shows_small_previews(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with Client(build_server(settings_for(sandbox, tmp_path, key=_key()))) as client:
        await client.call_tool("generate_image", {"prompt": "A 50% off <b>sale</b> poster", "count": 2})
        await client.call_tool("generate_image", {"prompt": "A quiet harbour", "count": 3})
        first = await client.call_tool("list_tasks", {"limit": 2, "previews": True})
        second = await client.call_tool("list_tasks", {"limit": 2, "offset": 4, "previews": True})
        percent = await client.call_tool("list_tasks", {"query": "50%"})
        literal = await client.call_tool("list_tasks", {"query": "_"})
        thumb = await client.read_resource(first.structured_content["tasks"][0]["thumbnail_uri"])  # type: ignore[index]
        full = await client.read_resource(first.structured_content["tasks"][0]["resource_uri"])  # type: ignore[index]
    data = first.structured_content
    assert data is not None and data["count"] == 2 and data["next_offset"] == 2
    assert [t["prompt"] for t in data["tasks"]] == ["A quiet harbour"] * 2  # newest first
    previews = [c for c in first.content if isinstance(c, ImageContent)]
    assert len(previews) == 2 and all(len(p.data) < 16_000 for p in previews)
    with Image.open(io.BytesIO(base64.b64decode(previews[0].data))) as small:
        assert max(small.size) <= 160
    assert len([c for c in first.content if isinstance(c, ResourceLink)]) == 2
    assert second.structured_content is not None and second.structured_content["next_offset"] is None
    assert [t["prompt"] for t in second.structured_content["tasks"]] == ["A 50% off <b>sale</b> poster"]
    assert percent.structured_content is not None and percent.structured_content["count"] == 2
    assert literal.structured_content is not None and literal.structured_content["count"] == 0  # "_" is no wildcard
    blob = thumb.contents[0]
    assert isinstance(blob, BlobResourceContents) and blob.mime_type == "image/jpeg"
    with Image.open(io.BytesIO(base64.b64decode(blob.blob))) as small:
        assert max(small.size) <= 256
    assert len(base64.b64decode(blob.blob)) < len(base64.b64decode(full.contents[0].blob)) / 10  # type: ignore[union-attr]


async def test_a_thumbnail_is_served_only_for_a_saved_image_in_the_output_folder(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    (tmp_path / "secret.png").write_bytes(b"not in the output folder")
    async with Client(build_server(settings_for(sandbox, tmp_path, key=_key()))) as client:
        made = await client.call_tool("generate_image", {"prompt": "A wren"})
        assert made.structured_content is not None
        served = await client.read_resource(made.structured_content["thumbnail_uri"])
        assert isinstance(served.contents[0], BlobResourceContents)  # a saved image's: served
        for name in ("..%2Fsecret.png", "secret.png", "missing.jpg"):
            with pytest.raises(MCPError, match=r"Unknown resource|No saved image named"):
                await client.read_resource(f"rivya://thumbnails/{name}")
