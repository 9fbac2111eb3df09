"""Region edits and variations for a client of the Tasks extension.

A region edit under a protocol task handle is composited like a blocking call's, by whoever saves
it (the follow-up here: the composition is in the journal, not in the call). A call of several
images (``count`` > 1) is one blocking call even then: one handle follows one Rivya task, so the
client gets the plain result, the grid of all its images, and no handle.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from rivya_mcp.sandbox import RunningSandbox
from tests.tasks.conftest import Requester, serve, tasks_settings
from tests.tasks.test_wire import settle


@pytest.fixture
def server_url(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[str]:
    with serve(tasks_settings(sandbox, tmp_path)) as server:
        yield f"{server.base_url}/mcp"


def test_a_region_edit_under_a_task_handle_is_composited(server_url: str, tmp_path: Path) -> None:
    reference = Image.effect_noise((400, 300), 64).convert("RGB")
    path = tmp_path / "ref.png"
    reference.save(path)
    # Over HTTP a local path is refused: the reference travels as a data URI.
    data_uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    requester = Requester(server_url)
    try:
        created = requester.tool(
            "edit_image",
            {
                "prompt": "a red door",
                "reference": data_uri,
                "region": {"x": 50, "y": 40, "width": 100, "height": 120},
                "outputFormat": "png",
            },
        )
        assert created["resultType"] == "task", created
        done = settle(requester, created["taskId"])
        assert done["status"] == "completed", done
        saved = done["result"]["structuredContent"]["saved_path"]
        many = requester.tool("generate_image", {"prompt": "three moons", "count": 3, "wait_seconds": 30})
    finally:
        requester.close()
    with Image.open(saved) as image:
        assert image.size == reference.size
        edited = image.convert("RGB")
    outside = Image.new("L", reference.size, 255)
    outside.paste(0, (50, 40, 150, 160))
    assert ImageChops.multiply(ImageChops.difference(edited, reference).convert("L"), outside).getbbox() is None
    assert many.get("resultType", "complete") == "complete" and "taskId" not in many
    assert many["structuredContent"]["count"] == 3 and len(many["structuredContent"]["candidates"]) == 3
