"""An upstream validation_failed on an edit's safetyTolerance reads clearly (issue 13 item 7)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.types import TextContent
from PIL import Image

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server, safety_refusal_hint
from tests.server.conftest import settings_for

REFUSAL = "params.safetyTolerance: must be at most 1 when a reference image is given"


@pytest.mark.parametrize(
    ("mode", "params", "code", "message", "explained"),
    [
        ("edit", {"safetyTolerance": 2}, "validation_failed", REFUSAL, True),
        ("edit", {}, "validation_failed", "SAFETYTOLERANCE out of range", True),
        ("generate", {"safetyTolerance": 2}, "validation_failed", REFUSAL, False),  # not an edit
        ("edit", {"safetyTolerance": 2}, "validation_failed", "prompt: required", False),  # about something else
        ("edit", {"safetyTolerance": 2}, "insufficient_credits", REFUSAL, False),
        ("edit", {"safetyTolerance": 2}, "validation_failed", None, False),
    ],
)
def test_which_refusals_are_explained(
    mode: str, params: dict[str, Any], code: str, message: str | None, explained: bool
) -> None:
    hint = safety_refusal_hint(mode, params, code, message)
    assert (hint is not None) is explained
    if hint is not None:
        assert "inferred" in hint and "Black Forest Labs" in hint


@pytest.mark.anyio
async def test_an_upstream_refusal_says_the_cap_is_inferred_and_what_to_send(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    reference = tmp_path / "ref.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, format="PNG")
    reference.write_bytes(buffer.getvalue())
    rule = {"path": "/api/v1/generations", "method": "POST", "status": 400, "message": REFUSAL, "times": 1}
    async with httpx2.AsyncClient(base_url=sandbox.base_url) as control:
        assert (await control.post("/_sandbox/faults", json={"rules": [rule]})).status_code == 200
        try:
            tasks_before = len(sandbox.state.snapshot()["tasks"])
            async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
                args = {"prompt": "Add snow", "reference": str(reference), "safetyTolerance": 2, "wait_seconds": 10}
                refused = await client.call_tool("edit_image", args)
                tasks_after_refusal = len(sandbox.state.snapshot()["tasks"])
                accepted = await client.call_tool("edit_image", args)  # the same call once Rivya accepts it
        finally:
            await control.delete("/_sandbox/faults")
    text = "\n".join(c.text for c in refused.content if isinstance(c, TextContent))
    assert refused.is_error
    assert "validation_failed" in text and REFUSAL in text and "safetyTolerance=2 was sent" in text
    assert "inferred" in text and "lower safetyTolerance" in text and "will not help" in text
    assert tasks_after_refusal == tasks_before  # refused: no task, nothing charged
    assert not accepted.is_error and (accepted.structured_content or {})["status"] == "succeeded"
