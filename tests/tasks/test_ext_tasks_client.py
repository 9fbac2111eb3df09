"""The TypeScript requester @modelcontextprotocol/ext-tasks 0.2.2 (with @modelcontextprotocol/client 2.4)
drives generate_image and edit_image over Streamable HTTP: completion, cancel, restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from rivya_mcp.sandbox import RunningSandbox
from tests.tasks._node import NodeDriver
from tests.tasks.conftest import serve, tasks_settings


@pytest.fixture(scope="module")
def node() -> Iterator[NodeDriver]:
    driver = NodeDriver()
    try:
        yield driver
    finally:
        driver.close()


def charges(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    ledger = httpx2.get(f"{sandbox.base_url}/_sandbox/state").json()["ledger"]
    return [e for e in ledger if e["delta"] < 0]


def set_processing(sandbox: RunningSandbox, seconds: float) -> None:
    httpx2.post(f"{sandbox.base_url}/_sandbox/config", json={"processing_seconds": seconds}).raise_for_status()


def test_generate_then_edit_by_task_id_complete_as_tasks(
    node: NodeDriver, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    before = len(charges(sandbox))
    with serve(tasks_settings(sandbox, tmp_path)) as server:
        url = f"{server.base_url}/mcp"
        generated = node.send(
            op="call", url=url, tool="generate_image", args={"prompt": "a lighthouse", "aspectRatio": "1:1"}
        )
        assert generated["era"] == "modern"
        assert generated["kind"] == "task" and generated["taskId"]
        assert generated["status"] == "completed", generated
        result = generated["result"]
        assert result.get("isError") is not True
        assert {"image", "resource_link"} <= {c["type"] for c in result["content"]}
        rivya_id = result["structuredContent"]["task_id"]
        assert Path(result["structuredContent"]["saved_path"]).is_file()

        edited = node.send(
            op="call", url=url, tool="edit_image", args={"prompt": "make it night", "reference": rivya_id}
        )
        assert edited["kind"] == "task" and edited["status"] == "completed", edited
        assert edited["result"]["structuredContent"]["status"] == "succeeded"
        assert edited["result"]["structuredContent"]["task_id"] != rivya_id
    assert len(charges(sandbox)) == before + 2


def test_a_tool_that_is_not_a_task_tool_answers_immediately(
    node: NodeDriver, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    with serve(tasks_settings(sandbox, tmp_path)) as server:
        credits = node.send(op="call", url=f"{server.base_url}/mcp", tool="get_credits", args={})
    assert credits["kind"] == "immediate" and credits["status"] == "completed"
    assert "current_credits" in credits["result"]["structuredContent"]


def test_cancel_through_the_library(node: NodeDriver, sandbox: RunningSandbox, tmp_path: Path) -> None:
    set_processing(sandbox, 30)
    try:
        with serve(tasks_settings(sandbox, tmp_path)) as server:
            cancelled = node.send(
                op="cancel", url=f"{server.base_url}/mcp", tool="generate_image", args={"prompt": "a glacier"}
            )
    finally:
        set_processing(sandbox, 0.4)
    assert cancelled["kind"] == "task"
    assert cancelled["status"] == "cancelled", cancelled
    assert cancelled["snapshot"]["status"] == "cancelled"
    assert "may still finish and is paid" in cancelled["snapshot"]["statusMessage"]


def test_a_restart_between_create_and_completion(node: NodeDriver, sandbox: RunningSandbox, tmp_path: Path) -> None:
    """The handle outlives the server: a new one on the same journal resolves it; one charge."""
    settings = tasks_settings(sandbox, tmp_path)
    before = len(charges(sandbox))
    set_processing(sandbox, 3)
    try:
        with serve(settings) as first:
            started = node.send(
                op="start", url=f"{first.base_url}/mcp", tool="generate_image", args={"prompt": "a comet"}
            )
    finally:
        set_processing(sandbox, 0.4)
    assert started["kind"] == "task" and started["reference"]["taskId"] == started["taskId"]
    state = httpx2.get(f"{sandbox.base_url}/_sandbox/state").json()
    assert [t["status"] for t in state["tasks"] if t["prompt"] == "a comet"] != ["succeeded"]  # not done at the stop

    with serve(settings) as second:
        resumed = node.send(op="resume", url=f"{second.base_url}/mcp", reference=started["reference"])
    assert resumed["status"] == "completed", resumed
    structured = resumed["result"]["structuredContent"]
    assert structured["status"] == "succeeded" and Path(structured["saved_path"]).is_file()
    assert len(charges(sandbox)) == before + 1
