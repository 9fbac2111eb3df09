"""The MCP Apps viewer in a real headless Chromium, inside a test host built on the real
``@modelcontextprotocol/ext-apps`` AppBridge, talking to our server over Streamable HTTP with the
sandbox behind it.

One browser run for the module (``run.mjs`` acts and records: DOM facts, screenshots); these tests
judge it. Images are judged by the pixels in the screenshots, not by the DOM alone. A missing
node, npm package or chromium fails here with the command that installs it; nothing skips.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from rivya_mcp.manifest import DEFAULT_MODEL, get_manifest
from tests.browser._driver import BrowserToolsMissing, ensure_tools, run_host, viewer_stack

# Mean absolute difference per channel (0-255) between two RGB images of one size.
SAME_IMAGE = 0.5  # a screenshot of the decoded file vs the file: measured 0.007
# The view's own downscale (at 320 px) vs Pillow's: different filters, same picture.
SAME_PICTURE_SCALED = 4.0


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    try:
        node = ensure_tools()
    except BrowserToolsMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    workdir = tmp_path_factory.mktemp("viewer")
    shots = workdir / "shots"
    with viewer_stack(workdir) as (url, _settings):
        report = run_host(node, url, shots, "tests")
    report["dir"] = shots
    yield report


def scenario(run: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = run["scenarios"][name]
    assert found["ok"], f"browser scenario {name} failed: {found.get('error')}"
    return found


def mad(a: Image.Image, b: Image.Image) -> float:
    return float(sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3)


def rendered_image(run: dict[str, Any], found: dict[str, Any]) -> Image.Image:
    """The <img> as it appears on screen: its box in the page screenshot (iframe offset + rect)."""
    shot = Image.open(Path(run["dir"]) / found["shot"]).convert("RGB")
    frame, rect = found["iframe"], found["seen"]["rect"]
    left, top = round(frame["x"] + rect["x"]), round(frame["y"] + rect["y"])
    return shot.crop((left, top, left + round(rect["width"]), top + round(rect["height"])))


def preview_of(result: dict[str, Any]) -> Image.Image:
    block = next(c for c in result["content"] if c["type"] == "image")
    return Image.open(io.BytesIO(base64.b64decode(block["data"]))).convert("RGB")


def cost_label() -> str:
    return f"{get_manifest(DEFAULT_MODEL).base_credits} credits"


def test_generate_shows_the_full_resolution_image(run: dict[str, Any]) -> None:
    found = scenario(run, "generate")
    result = found["opened"]["result"]
    structured = result["structuredContent"]
    saved = Image.open(structured["saved_path"]).convert("RGB")
    on_screen = rendered_image(run, found)

    assert found["seen"]["source"] == "full"
    assert (found["seen"]["naturalWidth"], found["seen"]["naturalHeight"]) == saved.size
    # The pixels on screen are the saved file's, one to one ...
    assert on_screen.size == saved.size
    assert mad(on_screen, saved) < SAME_IMAGE
    # ... and not the preview blown up to the same size.
    blown_up = preview_of(result).resize(saved.size, Image.Resampling.BICUBIC)
    assert preview_of(result).width < saved.width
    assert mad(on_screen, blown_up) > mad(on_screen, saved) + SAME_IMAGE


def test_generate_shows_prompt_settings_credits_task_and_path(run: dict[str, Any]) -> None:
    found = scenario(run, "generate")
    structured = found["opened"]["result"]["structuredContent"]
    seen = found["seen"]
    assert seen["prompt"] == "A lighthouse on a cliff at dusk, viewer test"
    assert "A lighthouse on a cliff at dusk" in seen["alt"]
    facts = seen["facts"]
    assert facts["Model"] == get_manifest(DEFAULT_MODEL).display_name
    assert facts["Task"] == structured["task_id"]
    assert facts["Saved at"] == structured["saved_path"]
    assert facts["Credits"] == f"{structured['final_credits']} credits charged"
    # 16:9 is the manifest's default aspect ratio: nothing differs from the defaults.
    assert facts["Settings"] == "defaults"


def test_every_paid_action_states_its_cost_before_it_runs(run: dict[str, Any]) -> None:
    buttons = {b["text"]: b["label"] for b in scenario(run, "generate")["seen"]["buttons"]}
    paid = [text for text in buttons if text.startswith(("Run again", "Run with", "Edit"))]
    assert sorted(paid) == sorted(
        [f"Run again · {cost_label()}", f"Run with these settings · {cost_label()}", f"Edit · {cost_label()}"]
    )
    assert all(cost_label() in (buttons[text] or "") for text in paid)
    assert "Copy path" in buttons


def test_an_edit_from_the_viewer_by_keyboard_shows_a_second_image(run: dict[str, Any]) -> None:
    first = scenario(run, "generate")["opened"]["result"]["structuredContent"]
    found = scenario(run, "edit")
    seen = found["seen"]
    # Reached with Tab alone, run with Enter on the focused button.
    assert found["focused"] == "editGo"
    second_task = seen["facts"]["Task"]
    assert second_task != first["task_id"]
    assert seen["facts"]["Edit of"] == first["task_id"]
    assert seen["prompt"] == "make it night with a full moon"
    second = Image.open(seen["facts"]["Saved at"]).convert("RGB")
    first_image = Image.open(first["saved_path"]).convert("RGB")
    on_screen = rendered_image(run, found)
    assert on_screen.size == second.size
    assert mad(on_screen, second) < SAME_IMAGE
    assert mad(on_screen, first_image.resize(second.size)) > SAME_IMAGE * 4
    # The model is told what the person did in the view.
    told = found["modelContext"]
    assert told and second_task in told[-1]["content"][0]["text"]


def test_the_edit_text_stays_visible_while_the_edit_runs(run: dict[str, Any]) -> None:
    """Issue 23.18: while the edit runs, its text is still in the box and the line says what was asked."""
    found = scenario(run, "edit")
    running = found["running"]
    assert running["editValue"] == "make it night with a full moon"
    assert "make it night with a full moon" in (running["state"] or "")
    assert any(b["id"] == "editGo" and b["disabled"] for b in running["buttons"])  # not sent twice
    # Once its image is on screen (with the edit as its prompt), the box is empty for the next one.
    assert found["seen"]["editValue"] == "" and found["seen"]["prompt"] == "make it night with a full moon"


def test_html_in_a_prompt_is_shown_as_text_and_never_run(run: dict[str, Any]) -> None:
    found = scenario(run, "html")
    seen = found["seen"]
    assert seen["prompt"] == found["prompt"]  # every character as typed ...
    assert seen["promptElements"] == 0  # ... and no element made of it
    assert not seen["injected"]  # no <b id=inj>, no onerror handler ran
    assert found["prompt"] in seen["alt"]
    gallery = scenario(run, "gallery")
    captions = [tile["caption"] for tile in gallery["first"]["gallery"]]
    assert found["prompt"] in captions  # the gallery shows it as text too
    assert not gallery["first"]["injected"]


def _cost(credits: int) -> str:
    return f"{credits} credits"


def test_count_4_shows_a_grid_of_thumbnails_to_pick_from(run: dict[str, Any]) -> None:
    found = scenario(run, "grid")
    result = found["opened"]["result"]
    structured = result["structuredContent"]
    assert structured["count"] == 4 and structured["call_credits"] == 32
    assert [c["number"] for c in structured["candidates"]] == [1, 2, 3, 4]
    assert all(c["saved_path"] and c["status"] == "succeeded" for c in structured["candidates"])
    # One contact sheet, under the preview cap, and a link per image.
    images = [c for c in result["content"] if c["type"] == "image"]
    links = [c for c in result["content"] if c["type"] == "resource_link"]
    assert len(images) == 1 and len(images[0]["data"]) < 300_000 and len(links) == 4
    seen = found["seen"]
    assert seen["view"] == "gridView"
    assert [tile["badge"] for tile in seen["grid"]] == ["1", "2", "3", "4"]
    for tile in seen["grid"]:
        image = tile["image"]
        # A thumbnail read through the host (a data: URL), small: never the full image.
        assert image["data"] and image["complete"] and 0 < max(image["naturalWidth"], image["naturalHeight"]) <= 256
    assert "32 credits" in seen["gridNote"]
    assert any(b["text"] == f"Run again (4 images) · {_cost(32)}" for b in seen["buttons"])
    # Picked with the keyboard: image 3, full size, with what can be done with it.
    picked = found["picked"]
    assert picked["view"] == "single" and picked["source"] == "full"
    assert picked["facts"]["Task"] == found["gridTasks"][2]
    assert picked["back"] == "← Back to all 4 images"
    texts = [b["text"] for b in picked["buttons"]]
    assert f"Edit · {cost_label()}" in texts and "Copy path" in texts
    assert f"4 variations of this · {_cost(32)}" in texts
    saved = Image.open(picked["facts"]["Saved at"]).convert("RGB")
    assert (picked["naturalWidth"], picked["naturalHeight"]) == saved.size


def _changed_box(before: Image.Image, after: Image.Image) -> tuple[int, int, int, int] | None:
    return ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v else 0).getbbox()


def test_a_mask_painted_with_the_keyboard_edits_only_that_part(run: dict[str, Any]) -> None:
    found = scenario(run, "mask")
    # Nothing painted (after Clear): the view says so and sends nothing.
    assert "Paint the part to change first" in found["refused"]["note"]
    assert found["sentBefore"] == found["sentAtStart"]
    assert found["painting"]["painting"]
    [sent] = found["sent"][found["sentAtStart"] :]
    assert sent["arguments"]["mask"]["dataUri"] == "data:image/png;base64,"
    assert sent["arguments"]["reference"] == found["reference"]["facts"]["Task"]
    assert "aspectRatio" not in sent["arguments"]  # the reference's own shape is kept
    seen = found["seen"]
    assert seen["facts"]["Edit of"] == found["reference"]["facts"]["Task"]
    assert seen["prompt"] == "turn the lanterns green"
    before = Image.open(found["reference"]["facts"]["Saved at"]).convert("RGB")
    after = Image.open(seen["facts"]["Saved at"]).convert("RGB")
    assert after.size == before.size  # the reference's own size (a PNG, so exact below)
    box = _changed_box(before, after)
    assert box is not None  # the painted part changed ...
    width, height = before.size
    # ... and nothing else: the brush went right from the middle, so the left half is the
    # reference's to the pixel, and every changed pixel is near the stroke's row.
    assert box[0] >= width * 0.5 and box[1] >= height * 0.35 and box[3] <= height * 0.65, box


def test_variations_of_a_picked_image_state_their_cost_and_give_a_new_grid(run: dict[str, Any]) -> None:
    found = scenario(run, "variations")
    button = next(b for b in found["before"]["buttons"] if b["id"] == "variationsGo")
    assert button["text"] == f"4 variations of this · {_cost(32)}" and "32 credits" in (button["label"] or "")
    assert found["sent"]["arguments"]["count"] == 4
    assert found["sent"]["arguments"]["reference"] == found["before"]["facts"]["Task"]
    assert found["seen"]["view"] == "gridView" and len(found["seen"]["grid"]) == 4


def test_the_grid_and_mask_painting_at_320_px_in_the_dark(run: dict[str, Any]) -> None:
    found = scenario(run, "grid-narrow-dark")
    grid = scenario(run, "grid")
    candidates = found["opened"]["result"]["structuredContent"]["candidates"]
    # The same call again (same idempotency_key): the same four tasks, none created or paid again.
    assert [c["task_id"] for c in candidates] == grid["gridTasks"] and all(c["reused"] for c in candidates)
    for seen in (found["seen"], found["painting"]):
        assert seen["theme"] == "dark" and seen["clientWidth"] == 320 and seen["scrollWidth"] <= 320
        assert seen["inside"]
    assert len(found["seen"]["grid"]) == 4 and found["painting"]["painting"]
    assert found["iframe"]["width"] == 320


def test_the_gallery_pages_filters_and_opens_earlier_images_by_keyboard(run: dict[str, Any]) -> None:
    found = scenario(run, "gallery")
    first = found["first"]
    assert first["view"] == "galleryView" and first["theme"] == "dark"
    assert first["clientWidth"] == 320 and first["scrollWidth"] <= 320 and first["inside"]
    assert len(first["gallery"]) == 12 and first["galleryNote"].startswith("Images 1-12, newest first")
    assert all(
        t["image"]["data"] and max(t["image"]["naturalWidth"], t["image"]["naturalHeight"]) <= 256
        for t in first["gallery"]
    )
    assert found["second"]["galleryNote"].startswith("Images 13-")
    filtered = found["filtered"]
    assert [t["caption"] for t in filtered["gallery"]] == ["A lighthouse on a cliff at dusk, viewer test"]
    opened = found["openedOne"]
    assert opened["view"] == "single" and opened["source"] == "full"
    assert opened["facts"]["Task"] == scenario(run, "generate")["opened"]["result"]["structuredContent"]["task_id"]
    assert opened["back"] == "← Back to your recent images"
    assert found["back"]["view"] == "galleryView" and found["back"]["filter"] == "lighthouse"
    pages = [c["arguments"] for c in found["sent"]]
    assert {"status": "succeeded", "limit": 12, "offset": 12} in pages
    assert {"status": "succeeded", "limit": 12, "offset": 0, "query": "lighthouse"} in pages


RUNNING_LINE = re.compile(
    r"(Queued|Processing) · (\d+) s since it was created · 8 credits reserved, charged when it finishes"
)


def test_a_running_task_shows_its_state_then_the_image(run: dict[str, Any]) -> None:
    found = scenario(run, "running")
    returned = found["opened"]["result"]["structuredContent"]
    assert returned["done"] is False  # the tool call itself returned before the image existed
    during = found["during"]
    assert RUNNING_LINE.fullmatch(during["state"] or ""), during["state"]
    assert during["source"] is None
    after = found["after"]
    assert after["facts"]["Task"] == returned["task_id"] and after["facts"]["Status"] == "succeeded"
    assert after["source"] == "full" and after["state"] is None
    assert after["facts"]["Credits"] == "8 credits charged"


def test_while_a_task_runs_the_view_shows_reserved_credits_its_real_state_and_its_age(run: dict[str, Any]) -> None:
    """Issue 23.17: not "0 credits charged" while 8 are reserved; the status the task really has,
    not the first one seen; an age that keeps counting across the view's follow-up calls."""
    found = scenario(run, "running")
    samples = found["samples"]
    assert len(samples) >= 8, samples
    lines = [RUNNING_LINE.fullmatch(sample["state"] or "") for sample in samples]
    assert all(lines), [sample["state"] for sample in samples]
    for sample, line in zip(samples, lines, strict=True):
        assert line is not None
        assert sample["facts"]["Credits"] == "8 credits reserved, charged when it finishes"
        assert sample["facts"]["Status"] == line.group(1).lower()  # the facts agree with the line
    words = [line.group(1) for line in lines if line is not None]
    assert "Processing" in words  # the view saw the task move on from its first state ...
    assert words == sorted(words, key=["Queued", "Processing"].index)  # ... and never back
    ages = [int(line.group(2)) for line in lines if line is not None]
    assert ages == sorted(ages)
    span = (samples[-1]["at"] - samples[0]["at"]) / 1000
    # The task's own age, counting on across several follow-up get_task calls (not restarting).
    assert ages[-1] - ages[0] >= span - 1.5, (ages, span)
    assert ages[-1] >= 2
    assert len(found["followUps"]) >= 2
    assert all(call["arguments"]["wait_seconds"] <= 5 for call in found["followUps"])


def test_a_failed_task_shows_its_message_and_next_step(run: dict[str, Any]) -> None:
    seen = scenario(run, "failed")["seen"]
    assert seen["source"] is None and seen["naturalWidth"] == 0  # no image pretends to be a result
    problem = seen["problem"] or ""
    assert seen["facts"]["Status"] == "failed"
    assert f"Task {seen['facts']['Task']} failed:" in problem
    assert "The generation failed." in problem  # the sandbox's error message, as the API sent it
    assert "Next step:" in problem
    # A failed task can be retried from the view, and the retry states its cost; editing cannot.
    texts = [b["text"] for b in seen["buttons"]]
    assert f"Run again · {cost_label()}" in texts
    assert not any(text.startswith("Edit") for text in texts)


def _luminance(rgb: tuple[int, ...]) -> float:
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]


def test_dark_theme_from_the_host_and_a_live_switch_back(run: dict[str, Any]) -> None:
    found = scenario(run, "dark")
    assert found["seen"]["theme"] == "dark"
    shot = Image.open(Path(run["dir"]) / found["shot"]).convert("RGB")
    frame = found["iframe"]
    # The view's own background (its padding, left of the image), as rendered.
    background = shot.getpixel((round(frame["x"]) + 4, round(frame["y"]) + 4))
    assert isinstance(background, tuple)
    assert _luminance(background) < 40
    assert _luminance(tuple(int(v) for v in found["seen"]["color"][4:-1].split(","))) > 200
    # host-context-changed to light repaints it light.
    assert found["switched"]["theme"] == "light"
    assert found["switched"]["background"] == "rgb(255, 255, 255)"


def test_usable_at_320_px(run: dict[str, Any]) -> None:
    found = scenario(run, "narrow")
    seen = found["seen"]
    assert found["iframe"]["width"] == 320
    assert seen["clientWidth"] == 320 and seen["scrollWidth"] <= 320  # no sideways scrolling
    assert seen["inside"]  # every control within the width
    assert seen["rect"]["width"] <= 320
    saved = Image.open(seen["facts"]["Saved at"]).convert("RGB")
    on_screen = rendered_image(run, found)
    assert mad(on_screen, saved.resize(on_screen.size, Image.Resampling.LANCZOS)) < SAME_PICTURE_SCALED
    # The host sized the iframe to the view's reported height: nothing is cut off.
    assert found["iframe"]["height"] >= seen["appHeight"] - 1


def test_no_console_errors_or_csp_violations(run: dict[str, Any]) -> None:
    # The view runs under the CSP of its _meta.ui (connect-src 'none'); a blocked load would log.
    assert "connect-src 'none'" in scenario(run, "generate")["opened"]["csp"]
    assert run["consoleErrors"] == []
