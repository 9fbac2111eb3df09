"""A reference id is whatever the API returned (issue 13, item 3), against the variant sandbox.

The variant hands out bare-UUID file ids, so nothing here can go by a prefix. Server A uploads or
generates; server B, with its own (empty) journal but the same API key, is given A's ids: it must
find them by asking the API (files first, then tasks) before any create. An id that neither the
journal nor the API knows is refused without a charge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent
from PIL import Image

from rivya_mcp.sandbox import RunningSandbox, start_sandbox
from rivya_mcp.server import build_server
from tests.server.conftest import FAST, TEST_KEY, settings_for

pytestmark = pytest.mark.anyio

OTHER_KEY = "rvya_sk_test_server_someone_else"


@pytest.fixture(scope="module")
def variant() -> Iterator[RunningSandbox]:
    with start_sandbox(FAST.updated({"profile": "variant"})) as running:
        yield running


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, _text(result)
    data: dict[str, Any] | None = result.structured_content
    assert data is not None
    return data


def _png(path: Path) -> Path:
    Image.new("RGB", (80, 60), (30, 60, 90)).save(path, format="PNG")
    return path


async def _call(sandbox: RunningSandbox, workdir: Path, tool: str, key: str = TEST_KEY, **args: Any) -> CallToolResult:
    async with Client(build_server(settings_for(sandbox, workdir, key=key))) as client:
        return await client.call_tool(tool, args)


def _tasks(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    return list(sandbox.state.snapshot()["tasks"])


async def test_a_file_uploaded_elsewhere_is_found_through_the_files_api(
    variant: RunningSandbox, tmp_path: Path
) -> None:
    uploaded = _data(await _call(variant, tmp_path / "a", "upload_reference", source=str(_png(tmp_path / "r.png"))))
    file_id = uploaded["file"]["id"]
    assert str(uuid.UUID(file_id)) == file_id
    edited = _data(await _call(variant, tmp_path / "b", "edit_image", prompt="Add snow", reference=file_id))
    task = next(t for t in _tasks(variant) if t["id"] == edited["task_id"])
    assert task["references"] == [{"source": "file", "id": file_id}]


async def test_a_task_created_elsewhere_is_found_through_the_generations_api(
    variant: RunningSandbox, tmp_path: Path
) -> None:
    base = _data(await _call(variant, tmp_path / "a", "generate_image", prompt="A barn", wait_seconds=20))
    edited = _data(await _call(variant, tmp_path / "b", "edit_image", prompt="Paint it red", reference=base["task_id"]))
    task = next(t for t in _tasks(variant) if t["id"] == edited["task_id"])
    assert task["mode"] == "edit" and len(task["references"]) == 1


@pytest.mark.parametrize("case", ["unknown UUID", "another account's file", "bare file name"])
async def test_an_id_nobody_knows_is_refused_before_any_create(
    variant: RunningSandbox, tmp_path: Path, case: str
) -> None:
    if case == "another account's file":
        other = await _call(
            variant, tmp_path / "o", "upload_reference", key=OTHER_KEY, source=str(_png(tmp_path / "o.png"))
        )
        reference = _data(other)["file"]["id"]
    elif case == "bare file name":
        reference = "cat.png"  # a relative name: looked up as an id first, then refused as a path
    else:
        reference = str(uuid.uuid4())
    before = _tasks(variant)
    result = await _call(variant, tmp_path / "b", "edit_image", prompt="Anything", reference=reference)
    assert result.is_error
    assert "neither a file id nor a task id" in _text(result)
    assert _text(result).lower().count("no credits were spent") == 1  # said once (issue 23 item 16)
    assert _tasks(variant) == before


async def test_a_reference_path_reaches_the_loader_with_its_white_space(
    variant: RunningSandbox, tmp_path: Path
) -> None:
    """Issue 23 item 11: the tools stripped the path before the loader saw it, so ``…/r.png `` read
    ``…/r.png``. Ids and URLs may still carry stray white space; a path is a name, kept as given."""
    _png(tmp_path / "r.png")
    refused = await _call(variant, tmp_path / "a", "upload_reference", source=f"{tmp_path / 'r.png'} ")
    assert refused.is_error and "ends with white space" in _text(refused), _text(refused)
    before = _tasks(variant)
    edit = await _call(variant, tmp_path / "b", "edit_image", prompt="Add snow", reference=f"{tmp_path / 'r.png'}\t")
    assert edit.is_error and "ends with white space" in _text(edit), _text(edit)
    assert _tasks(variant) == before
    uploaded = _data(await _call(variant, tmp_path / "c", "upload_reference", source=str(tmp_path / "r.png")))
    file_id = uploaded["file"]["id"]
    edited = _data(await _call(variant, tmp_path / "d", "edit_image", prompt="Add snow", reference=f" {file_id}\n"))
    assert edited["status"] == "succeeded"
