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


def test_a_running_task_shows_its_state_then_the_image(run: dict[str, Any]) -> None:
    found = scenario(run, "running")
    returned = found["opened"]["result"]["structuredContent"]
    assert returned["done"] is False  # the tool call itself returned before the image existed
    during = found["during"]
    assert re.fullmatch(r"(Queued|Processing|Checking) · \d+ s", during["state"] or ""), during["state"]
    assert during["source"] is None
    after = found["after"]
    assert after["facts"]["Task"] == returned["task_id"] and after["facts"]["Status"] == "succeeded"
    assert after["source"] == "full" and after["state"] is None


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
