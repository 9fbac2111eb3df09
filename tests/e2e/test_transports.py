"""The whole job through real MCP clients, once per transport: in-memory, stdio, SSE, Streamable HTTP,
and against both sandbox profiles (tests/e2e/conftest.py)."""

from __future__ import annotations

import base64
import io
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.types import BlobResourceContents, CallToolResult, ImageContent, ResourceLink, TextContent
from PIL import Image

from rivya_mcp.manifest import get_manifest, param_property, prompt_property
from tests.e2e.conftest import Harness

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MANIFEST = get_manifest("flux-kontext-max")
PREVIEW_LIMIT = 300_000
GET_TASK_WAIT = 15


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, _text(result)
    return result.structured_content


async def _assert_image_result(client: Any, result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, _text(result)
    data = _structured(result)
    assert data["status"] == "succeeded" and data["done"] is True
    kinds = [c.type for c in result.content]
    assert kinds == ["text", "image", "resource_link"]
    preview = next(c for c in result.content if isinstance(c, ImageContent))
    assert len(preview.data) < PREVIEW_LIMIT
    saved = Path(data["saved_path"])
    assert saved.is_absolute() and saved.is_file()
    with Image.open(saved) as full:
        assert full.size == (data["width"], data["height"])
    with Image.open(io.BytesIO(base64.b64decode(preview.data))) as small:
        assert max(small.size) <= 768 and max(small.size) <= max(full.size)
    link = next(c for c in result.content if isinstance(c, ResourceLink))
    assert str(link.uri) == data["resource_uri"]
    read = await client.read_resource(str(link.uri))
    blob = read.contents[0]
    assert isinstance(blob, BlobResourceContents)
    assert base64.b64decode(blob.blob) == saved.read_bytes()
    assert blob.mime_type == data["mime_type"]
    assert str(saved) in _text(result) and data["task_id"] in _text(result)
    return data


async def test_tools_and_schemas_follow_the_manifest(harness: Harness) -> None:
    async with harness.connect() as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"generate_image", "edit_image", "upload_reference", "get_task", "get_credits", "list_tasks"}
    for name, mode in (("generate_image", "generate"), ("edit_image", "edit")):
        schema = tools[name].input_schema
        props = schema["properties"]
        assert props["prompt"] == prompt_property(MANIFEST)
        for param in MANIFEST.params_for(mode):
            prop = props[param.key]
            assert prop == param_property(param), param.key
            if param.is_boolean:
                assert prop["type"] == "boolean"
            elif param.type == "select":
                assert prop["enum"] == list(param.options or ())
            elif param.type == "number":
                assert prop["minimum"] == param.min and prop["maximum"] == param.max
            if param.default is not None and not param.is_boolean:
                assert prop["default"] == param.default
        assert schema["additionalProperties"] is False
        assert {"wait_seconds", "idempotency_key"} <= set(props)
        assert props["wait_seconds"]["maximum"] <= 55
        assert f"{MANIFEST.base_credits} credits" in (tools[name].description or "")
        ann = tools[name].annotations
        assert ann is not None
        assert (ann.read_only_hint, ann.destructive_hint, ann.idempotent_hint, ann.open_world_hint) == (
            False,
            False,
            False,
            True,
        )
    edit, gen = tools["edit_image"].input_schema, tools["generate_image"].input_schema
    assert edit["properties"]["safetyTolerance"]["maximum"] < gen["properties"]["safetyTolerance"]["maximum"]
    assert "reference" in edit["required"] and "reference" not in gen["properties"]
    for reader in ("get_task", "get_credits", "list_tasks"):
        assert tools[reader].annotations is not None and tools[reader].annotations.read_only_hint is True
    assert tools["upload_reference"].annotations is not None
    assert tools["upload_reference"].annotations.read_only_hint is False
    assert tools["generate_image"].output_schema is not None


async def test_generate_streams_progress_and_returns_the_image(harness: Harness) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with harness.connect() as client:
        result = await client.call_tool(
            "generate_image",
            {"prompt": "A red fox in tall grass", "aspectRatio": "16:9", "outputFormat": "png"},
            progress_callback=on_progress,
        )
        data = await _assert_image_result(client, result)
    assert len(seen) >= 2, seen
    values = [p for p, _, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert all(m and data["task_id"] in m for _, _, m in seen)
    assert any("elapsed" in (m or "") for _, _, m in seen)
    assert data["width"] > data["height"]  # 16:9 at full resolution
    assert data["final_credits"] == MANIFEST.base_credits


def _reference_png(harness: Harness, name: str) -> Path:
    path = harness.workdir / "refs" / name
    Image.new("RGB", (320, 240), (40, 120, 200)).save(path, format="PNG")
    return path


async def test_edit_with_a_local_file(harness: Harness) -> None:
    path = _reference_png(harness, "edit-me.png")
    async with harness.connect() as client:
        result = await client.call_tool(
            "edit_image", {"prompt": "Make it a snowy night", "reference": str(path), "safetyTolerance": 1}
        )
        data = await _assert_image_result(client, result)
    task = harness.task(data["task_id"])
    assert task["mode"] == "edit" and len(task["references"]) == 1
    assert task["params"]["safetyTolerance"] == 1


async def test_upload_then_edit_by_file_id(harness: Harness) -> None:
    # Noise, so the PNG (~1 MB) spans many body chunks: the streamed, checked-as-read upload must
    # deliver exactly the file's bytes.
    path = harness.workdir / "refs" / "upload-me.png"
    Image.effect_noise((600, 600), 70).convert("RGB").save(path, format="PNG")
    async with harness.connect() as client:
        uploaded = await client.call_tool("upload_reference", {"source": str(path)})
        assert not uploaded.is_error, _text(uploaded)
        data = _structured(uploaded)
        file_id = data["file"]["id"]
        # Whatever the API returned, as it returned it: the variant's ids are bare UUIDs.
        assert file_id in [f["id"] for f in harness.sandbox.state.snapshot()["files"]]
        if harness.profile == "variant":
            assert str(uuid.UUID(file_id)) == file_id
        async with httpx2.AsyncClient() as http:
            assert (await http.get(data["file"]["url"])).content == path.read_bytes()
        assert data["reference_item"]["url"] == data["file"]["url"]
        assert data["reference_item"]["kind"] == "image"
        result = await client.call_tool("edit_image", {"prompt": "Add a rainbow", "reference": file_id})
        await _assert_image_result(client, result)


async def test_get_task_finishes_a_task_started_without_waiting(harness: Harness) -> None:
    async with harness.connect() as client:
        started = await client.call_tool("generate_image", {"prompt": "A lighthouse", "wait_seconds": 0})
        assert not started.is_error, _text(started)
        data = _structured(started)
        assert data["done"] is False and data["status"] in ("queued", "processing")
        assert "get_task" in (data["next_step"] or "") and data["task_id"] in _text(started)
        finished = await client.call_tool("get_task", {"task_id": data["task_id"], "wait_seconds": GET_TASK_WAIT})
        done = await _assert_image_result(client, finished)
    assert done["task_id"] == data["task_id"]


async def test_invalid_argument_is_an_error_and_costs_nothing(harness: Harness) -> None:
    before = harness.charges()
    async with harness.connect() as client:
        result = await client.call_tool(
            "generate_image", {"prompt": "A fox", "aspectRatio": "2:1", "safetyTolerance": 9}
        )
        edit = await client.call_tool("edit_image", {"prompt": "A fox", "reference": "file_x", "safetyTolerance": 5})
    assert result.is_error and edit.is_error
    text = _text(result)
    assert "aspectRatio" in text and "safetyTolerance" in text and "no credits" in text
    assert "safetyTolerance" in _text(edit)
    assert harness.charges() == before


async def test_generation_outliving_the_wait_is_finished_by_get_task(harness: Harness) -> None:
    async with harness.connect() as client:
        started = await client.call_tool(
            "generate_image", {"prompt": "A slow mountain [sandbox:seconds=1.2]", "wait_seconds": 0.3}
        )
        assert not started.is_error, _text(started)
        data = _structured(started)
        assert data["done"] is False and "get_task" in _text(started)
        finished = await client.call_tool("get_task", {"task_id": data["task_id"], "wait_seconds": GET_TASK_WAIT})
        await _assert_image_result(client, finished)


async def test_edit_with_every_other_reference_form(harness: Harness) -> None:
    """A URL, a data URI and a task id (a path and an uploaded file id are tested above)."""
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (200, 80, 40)).save(buffer, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    async with harness.connect() as client:
        base = await _assert_image_result(client, await client.call_tool("generate_image", {"prompt": "A red door"}))
        forms = {"task id": base["task_id"], "URL": base["source_url"], "data URI": data_uri}
        for form, reference in forms.items():
            result = await client.call_tool("edit_image", {"prompt": f"Paint it blue ({form})", "reference": reference})
            data = await _assert_image_result(client, result)
            task = harness.task(data["task_id"])
            assert task["mode"] == "edit" and len(task["references"]) == 1, form


async def test_an_unknown_bare_id_is_refused_before_any_charge(harness: Harness) -> None:
    before = harness.charges()
    async with harness.connect() as client:
        result = await client.call_tool("edit_image", {"prompt": "A fox", "reference": str(uuid.uuid4())})
    assert result.is_error and "neither a file id nor a task id" in _text(result)
    assert harness.charges() == before


async def test_a_create_answer_dropped_after_processing_is_charged_once(harness: Harness) -> None:
    # The sandbox creates and charges the task, then drops the answer; the client's retry under the
    # same Idempotency-Key must bring that task back rather than make a second one.
    harness.set_faults([{"path": "/api/v1/generations", "method": "POST", "drop": True, "phase": "after", "times": 1}])
    try:
        async with harness.connect() as client:
            result = await client.call_tool("generate_image", {"prompt": f"A lost letter ({harness.transport})"})
            data = await _assert_image_result(client, result)
        assert harness.fault_hits() == [1]
    finally:
        harness.set_faults([])
    charged = harness.charges_per_task()
    assert charged[data["task_id"]] == 1
    assert all(count == 1 for count in charged.values()), charged


async def test_a_rate_limited_create_waits_out_retry_after(harness: Harness) -> None:
    # Default: Retry-After in seconds; variant: an HTTP date. One second is the smallest wait.
    harness.set_faults([{"path": "/api/v1/generations", "method": "POST", "status": 429, "retry_after": 1, "times": 1}])
    try:
        async with harness.connect() as client:
            result = await client.call_tool("generate_image", {"prompt": f"A queue ({harness.transport})"})
            data = await _assert_image_result(client, result)
        assert harness.fault_hits() == [1]
    finally:
        harness.set_faults([])
    assert harness.charges_per_task()[data["task_id"]] == 1
