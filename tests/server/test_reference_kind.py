"""An edit's reference item says what it is (``kind: "image"``) and its type (sniffed from its bytes)
by what the server knows itself, never only by what the Files API echoes (issue 22 item 3).

rivya-api.md §3.2 requires ``kind`` in every ``referenceMediaItems`` entry, but the file object of
§3.6 is not documented to carry it: the variant profile's has no ``kind`` at all, and here its
file lookup also leaves out the type. The sandbox refuses an item without ``kind``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent
from PIL import Image

from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.server import build_server
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def variant() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(queued_seconds=0.05, processing_seconds=0.3, profile="variant")) as running:
        yield running


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _png_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (240, 200, 20)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _items(sandbox: RunningSandbox, task_id: str) -> list[dict[str, Any]]:
    task = next(t for t in sandbox.state.snapshot()["tasks"] if t["id"] == task_id)
    items: list[dict[str, Any]] = task["params"]["referenceMediaItems"]
    return items


async def test_items_carry_kind_and_the_sniffed_type_whatever_the_file_object_says(
    variant: RunningSandbox, tmp_path: Path
) -> None:
    async with Client(build_server(settings_for(variant, tmp_path))) as client:
        direct = await client.call_tool("edit_image", {"prompt": "Bluer", "reference": _png_uri(), "wait_seconds": 5})
        assert not direct.is_error, _text(direct)
        uploaded = await client.call_tool("upload_reference", {"source": _png_uri()})
        assert not uploaded.is_error, _text(uploaded)
        file_id = (uploaded.structured_content or {})["file"]["id"]
        assert (uploaded.structured_content or {})["reference_item"]["kind"] == "image"
        # From now on the Files API's answer states neither the kind nor the type of the file.
        rule = {"path": "/api/v1/files/", "method": "GET", "phase": "after",
                "merge": {"kind": None, "mime_type": None, "mimeType": None}}  # fmt: skip
        httpx2.post(f"{variant.base_url}/_sandbox/faults", json={"rules": [rule]}).raise_for_status()
        try:
            by_id = await client.call_tool("edit_image", {"prompt": "Greener", "reference": file_id, "wait_seconds": 5})
        finally:
            httpx2.delete(f"{variant.base_url}/_sandbox/faults")
        assert not by_id.is_error, _text(by_id)
    for result in (direct, by_id):
        [item] = _items(variant, (result.structured_content or {})["task_id"])
        assert (item["kind"], item["mimeType"]) == ("image", "image/png"), item
